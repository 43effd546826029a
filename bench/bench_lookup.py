"""Benchmark CustomerIndex against a raw rapidfuzz scan over the same names, in one run.

    python -m bench.bench_lookup --sizes 10000,100000 --out docs/bench_lookup.md

For each size: generate customers (bench/corpus.py), build the index (wall time, RSS
growth), then time ~300 mixed queries through `CustomerIndex.search` and through
`rapidfuzz.process.extract(query, names, limit=5)`, for an admin (everything) and for a rep who
may see 2,000 customers (`allowed`). Prints a markdown table; writes it only where --out says.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rapidfuzz import process

from bench.corpus import QUERY_KINDS, generate_customers, generate_queries
from crm_store.search.index import CustomerIndex

REP_SCOPE = 2_000


@dataclass
class Row:
    size: int
    build_s: float
    rss_mb: float
    peak_mb: float
    index_ms: tuple[float, float]
    raw_ms: tuple[float, float]
    rep_ms: tuple[float, float]
    raw_rep_ms: tuple[float, float]
    top1: float
    top5: float
    queries: int
    raw_queries: int


def rss_mb() -> float:
    """Current resident set size; falls back to the peak where /proc is missing."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return peak_mb()


def peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def percentiles(samples: Sequence[float]) -> tuple[float, float]:
    """(p50, p99) in milliseconds."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p99 * 1000


def timed(fn: Callable[[str], object], queries: Sequence[str]) -> list[float]:
    samples = []
    for query in queries:
        start = time.perf_counter()
        fn(query)
        samples.append(time.perf_counter() - start)
    return samples


def run_size(size: int, n_queries: int, raw_queries: int, seed: int) -> Row:
    print(f"[{size:,}] generating customers and queries", file=sys.stderr)
    customers = generate_customers(size, seed=seed)
    per_kind = -(-n_queries // len(QUERY_KINDS))
    rng = random.Random(seed)
    asked = generate_queries(customers, per_kind, seed=seed + 1)
    rng.shuffle(asked)
    asked = asked[:n_queries]
    names = [c.name for c in customers]
    texts = [q for q, _, _ in asked]

    print(f"[{size:,}] building", file=sys.stderr)
    gc.collect()
    rss_before, peak_before = rss_mb(), peak_mb()
    start = time.perf_counter()
    index = CustomerIndex.build(customers)
    build_s = time.perf_counter() - start
    gc.collect()
    rss_growth = rss_mb() - rss_before
    peak_growth = max(0.0, peak_mb() - peak_before)
    gc.freeze()  # steady state: no collector pauses from the generated corpus in the timings

    scope = frozenset(c.id for c in rng.sample(customers, min(REP_SCOPE, size)))
    scope_names = [c.name for c in customers if c.id in scope]

    print(f"[{size:,}] timing {len(texts)} queries", file=sys.stderr)
    for query in texts[:20]:
        index.search(query)
    index_samples = timed(index.search, texts)
    rep_samples = timed(lambda q: index.search(q, allowed=scope, owner_id="rep001"), texts)
    for query in texts:
        leaked = [h for h in index.search(query, allowed=scope) if h.id not in scope]
        if leaked:
            raise AssertionError(f"out-of-scope hit for {query!r}: {leaked}")

    top1 = top5 = 0
    for query, _, expected in asked:
        ids = [h.id for h in index.search(query)]
        top1 += bool(ids) and ids[0] == expected
        top5 += expected in ids

    raw_texts = texts[:raw_queries]
    print(f"[{size:,}] timing raw rapidfuzz on {len(raw_texts)} queries", file=sys.stderr)
    raw_samples = timed(lambda q: process.extract(q, names, limit=5), raw_texts)
    raw_rep_samples = timed(lambda q: process.extract(q, scope_names, limit=5), texts)
    gc.unfreeze()
    return Row(
        size=size,
        build_s=build_s,
        rss_mb=rss_growth,
        peak_mb=peak_growth,
        index_ms=percentiles(index_samples),
        raw_ms=percentiles(raw_samples),
        rep_ms=percentiles(rep_samples),
        raw_rep_ms=percentiles(raw_rep_samples),
        top1=top1 / len(asked),
        top5=top5 / len(asked),
        queries=len(texts),
        raw_queries=len(raw_texts),
    )


def row_line(r: Row) -> str:
    return (
        f"| {r.size:,} | {r.build_s:.1f} | {r.rss_mb:.0f} | {r.peak_mb:.0f} "
        f"| {r.index_ms[0]:.2f} | {r.index_ms[1]:.2f} | {r.raw_ms[0]:.2f} "
        f"| {r.raw_ms[1]:.2f} | {r.index_ms[1] / r.raw_ms[1]:.3f} "
        f"| {r.rep_ms[0]:.2f} | {r.rep_ms[1]:.2f} | {r.raw_rep_ms[1]:.2f} "
        f"| {r.top1:.1%} | {r.top5:.1%} |"
    )


def render(rows: Sequence[Row]) -> str:
    lines = [
        "# Customer lookup benchmark",
        "",
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
        "corpus and queries from bench/corpus.py (every query kind mixed). "
        "Latencies in ms; *raw* is `rapidfuzz.process.extract(query, names, limit=5)` over the "
        f"same names in the same run; *rep* searches with `allowed` = {REP_SCOPE:,} customer ids "
        "(raw rep scans only those names).",
        "",
        "| customers | build s | RSS Δ MB | peak Δ MB | index p50 | index p99 | raw p50 "
        "| raw p99 | p99 index/raw | rep p50 | rep p99 | raw rep p99 | top-1 | top-5 |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines.extend(map(row_line, rows))
    notes = [r for r in rows if r.raw_queries < r.queries]
    lines.append("")
    lines.extend(
        f"At {r.size:,}, raw rapidfuzz was timed on the first {r.raw_queries} of the "
        f"{r.queries} queries (--raw-queries)."
        for r in notes
    )
    return "\n".join(lines).rstrip() + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated sizes")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument(
        "--raw-queries", type=int, default=None, help="time raw rapidfuzz on fewer queries"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = parser.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    rows = []
    for size in sizes:
        rows.append(run_size(size, args.queries, args.raw_queries or args.queries, args.seed))
        print(row_line(rows[-1]), file=sys.stderr)
    table = render(rows)
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
