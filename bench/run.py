"""`make bench`: run every benchmark and write docs/BENCHMARKS.md (machine, date, goals).

    python -m bench.run [--quick] [--out docs/BENCHMARKS.md]

Each benchmark runs as its own process; the deployment benchmark (bench.bench_deploy) starts
the bot itself. A benchmark that fails is reported as failed; the others still run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import machine, today
from bench.report import deployment_section, goals_section

ROOT = Path(__file__).resolve().parents[1]


def _benches(quick: bool) -> list[tuple[str, list[str]]]:
    if quick:
        return [
            ("bench.bench_lookup", ["--sizes", "10000,100000", "--queries", "150"]),
            ("bench.bench_lookup_service", ["--customers", "100000"]),
            ("bench.bench_import", ["--rows", "20000"]),
            ("bench.bench_sla", ["--tickets", "20000"]),
            ("bench.bench_ticket_open", ["--customers", "2000", "--samples", "30"]),
        ]
    return [
        ("bench.bench_lookup", ["--sizes", "10000,100000,1000000", "--raw-queries", "30"]),
        ("bench.bench_lookup_service", ["--customers", "100000"]),
        ("bench.bench_import", ["--rows", "100000"]),
        ("bench.bench_sla", ["--tickets", "100000"]),
        ("bench.bench_ticket_open", ["--customers", "5000", "--samples", "100"]),
    ]


def _run(module: str, args: list[str]) -> tuple[int, float]:
    print(f"== {module} {' '.join(args)}", flush=True)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, check=False)
    return done.returncode, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, about 10 minutes")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "BENCHMARKS.md")
    parser.add_argument("--deploy-json", type=Path, help="reuse a bench_deploy result")
    parser.add_argument(
        "--only-deploy", action="store_true", help="skip the in-process lookup/import benches"
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="wecrm-bench-"))
    deploy_json = args.deploy_json
    durations: list[str] = []
    if deploy_json is None:
        deploy_json = tmp / "deploy.json"
        code, seconds = _run(
            "bench.bench_deploy",
            [*(["--quick"] if args.quick else []), "--json", str(deploy_json)],
        )
        durations.append(f"bench_deploy {seconds:.0f} s (exit {code})")
    deploy: dict[str, Any] = (
        json.loads(deploy_json.read_text(encoding="utf-8")) if deploy_json.exists() else {}
    )
    sections = []
    for module, bench_args in [] if args.only_deploy else _benches(args.quick):
        out = tmp / f"{module}.md"
        code, seconds = _run(module, [*bench_args, "--out", str(out)])
        durations.append(f"{module.split('.')[-1]} {seconds:.0f} s (exit {code})")
        if code == 0 and out.exists():
            sections.append(out.read_text(encoding="utf-8"))
        else:
            sections.append(f"## {module}\n\nFailed with exit code {code}.\n")
    head = [
        "# Benchmarks",
        "",
        f"**Preliminary.** Run {today()} with `make bench{' QUICK=1' if args.quick else ''}`"
        f" (`python -m bench.run{' --quick' if args.quick else ''}`).",
        "",
        f"Machine: {machine()}.",
        "",
        "The machine was shared with other engineers' test runs while this ran: every figure "
        "stands beside a baseline measured in the same run, repeated figures show the median "
        "and the spread (min–max) of the repeats, and the ratios mean more than the absolute "
        "numbers. Durations: " + "; ".join(durations) + ".",
        "",
    ]
    text = "\n".join(head) + "\n" + goals_section(deploy, sections) + "\n"
    text += deployment_section(deploy) + "\n" + "\n".join(sections)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
