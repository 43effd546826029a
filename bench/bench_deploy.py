"""The bot as it is deployed, measured from outside: ack, answers, relay, a killed worker, RSS.

    python -m bench.bench_deploy [--quick] [--databases sqlite,postgresql] --json out.json

This process is the load generator and WeCom (the simulator on an ephemeral loopback port);
the bot is `wecrm serve` in child processes: `--role web` for the ack path, `--role all` for
answers, `--role worker` for the relay and the kill test (web + worker, as at scale). The
baselines are measured in the same run: a bare aiohttp endpoint started the same way, and a
bare client sending the same messages to the same slow simulator.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import select

from bench import bare_sender
from bench.common import fresh_pg_database, percentile
from bench.company import Company, clear_queues, rep_id, seed_customers
from bench.deploy import Server, bot_env, run_cli, start_bare, start_bot
from bench.load import Post, ReplyLog, answered, build_posts, drive, wait_answered
from bot.simulator import WeComSimulator
from crm_store.models.messaging import INBOX_PROCESSING, InboxMessage
from crm_store.queues import outbox
from crm_store.session import create_engine, session_factory

REDIS_URL = os.environ.get("WECRM_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
WECOM_LATENCY = 0.05
Figures = dict[str, Any]


@dataclass(frozen=True)
class Plan:
    """Sizes and repeats: the full run stays within minutes, --quick within about two."""

    reps: int
    customers: int
    ack_messages: int
    e2e_rounds: int
    repeats: int
    relay_messages: int
    kill_stream_seconds: float
    rss_million: bool
    window: float

    @classmethod
    def of(cls, quick: bool) -> Plan:
        if quick:
            return cls(300, 20_000, 1000, 1, 2, 1000, 8.0, False, 30.0)
        return cls(600, 100_000, 2000, 1, 3, 3000, 10.0, True, 45.0)


@dataclass
class Backend:
    name: str
    url: str
    redis: str | None
    log_dir: Path
    figures: Figures = field(default_factory=dict)


def spread(values: list[float]) -> dict[str, float]:
    """Median of the repeats, with their min and max (the machine is shared)."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


@asynccontextmanager
async def wecom(company: Company) -> AsyncIterator[tuple[WeComSimulator, ReplyLog, str]]:
    sim = company.simulator()
    log = ReplyLog(sim)
    log.attach()
    async with sim.serve() as root:
        try:
            yield sim, log, f"{root}/cgi-bin/"
        finally:
            await sim.close()


async def prepare(backend: Backend, company: Company) -> None:
    """Migrate, sync the directory from the simulator, write the customers."""
    async with wecom(company) as (_sim, _log, api_base):
        env = bot_env(backend.url, api_base, backend.redis)
        await run_cli(["db", "upgrade"], env)
        await run_cli(["sync-directory"], env)
    started = time.perf_counter()
    await seed_customers(backend.url, company)
    print(f"  seeded {company.customers:,} customers in {time.perf_counter() - started:.0f} s")


def _ms(samples: list[float], p: float) -> float:
    return percentile(samples, p) * 1000


async def ack_phase(backend: Backend, company: Company, plan: Plan, levels: list[int]) -> None:
    """Ack latency and throughput of `--role web` against the bare endpoint, per level."""
    results: dict[str, dict[str, list[float]]] = {}
    async with wecom(company) as (sim, _log, api_base):
        for label in ("bare", "bot"):
            if label == "bare":
                server = await start_bare(backend.log_dir)
            else:
                server = await start_bot(
                    "web",
                    database_url=backend.url,
                    api_base=api_base,
                    redis_url=backend.redis,
                    log_dir=backend.log_dir,
                )
            try:
                url = f"{server.url}/wecom/callback"
                for level in levels:
                    for _ in range(plan.repeats):
                        rounds = -(-plan.ack_messages // (6 * len(company.scripts)))
                        posts = build_posts(sim.sender, company.scripts, rounds)
                        await drive(url, posts[:200], level)  # warm-up
                        run = await drive(url, posts[200 : 200 + plan.ack_messages], level)
                        if run.errors:
                            raise RuntimeError(f"{label}: {run.errors} callbacks failed")
                        key = f"{label}@{level}"
                        entry = results.setdefault(key, {"rate": [], "p50": [], "p99": []})
                        entry["rate"].append(run.ack_rate)
                        entry["p50"].append(_ms(run.acks, 50))
                        entry["p99"].append(_ms(run.acks, 99))
            finally:
                await server.stop()
    await clear_queues(backend.url)
    backend.figures["ack"] = {
        key: {name: spread(vals) for name, vals in entry.items()} for key, entry in results.items()
    }


async def _answer_run(
    server: Server,
    sim: WeComSimulator,
    log: ReplyLog,
    posts: list[Post],
    concurrency: int,
    window: float = 240.0,
) -> tuple[Figures, list[float]]:
    """Offer `posts`, then count answers for at most `window` s (a saturated bot keeps a
    backlog the whole time, so answered/elapsed is its rate); the caller clears the rest."""
    before = {u: log.count(u) for u in {p.user for p in posts}}
    expected = {u: before[u] + sum(p.user == u for p in posts) for u in before}
    rss: list[float] = []

    async def sample_rss() -> None:
        while True:
            rss.append(server.rss_mb())
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample_rss())
    try:
        run = await drive(f"{server.url}/wecom/callback", posts, concurrency)
        await wait_answered(log, expected, patience=window)
    finally:
        sampler.cancel()
    got = answered(log, run, before)
    figures = {
        "messages": got.messages,
        "answered": got.answered,
        "seconds": got.seconds,
        "rate": got.rate,
        "bad": got.bad,
        "extra": got.extra,
        "answer_p50_ms": _ms(got.latencies, 50),
        "answer_p99_ms": _ms(got.latencies, 99),
        "ack_p99_ms": _ms(run.acks, 99),
        "errors": run.errors,
    }
    return figures, rss


async def answers_phase(backend: Backend, company: Company, plan: Plan) -> None:
    """Answered messages per second for the realistic mix, one `--role all` process."""
    runs: list[Figures] = []
    async with wecom(company) as (sim, log, api_base):
        server = await start_bot(
            "all",
            database_url=backend.url,
            api_base=api_base,
            redis_url=backend.redis,
            log_dir=backend.log_dir,
        )
        try:
            warm = build_posts(sim.sender, company.scripts[:16])
            await _answer_run(server, sim, log, [p for p in warm if p.kind == "help"], 16, 30)
            rss_all: list[float] = []
            for _ in range(plan.repeats):
                posts = build_posts(sim.sender, company.scripts, plan.e2e_rounds)
                figures, rss = await _answer_run(server, sim, log, posts, 16, plan.window)
                runs.append(figures)
                await clear_queues(backend.url)
                rss_all += rss
            backend.figures["rss_mb"] = {"max": max(rss_all), "peak": server.peak_rss_mb()}
        finally:
            await server.stop()
    backend.figures["answers"] = {
        "runs": runs,
        "rate": spread([r["rate"] for r in runs]),
        "mix": sorted({kind for s in company.scripts[:1] for kind, _ in s.messages}),
        "per_person": len(company.scripts[0].messages),
        "people": len(company.scripts),
    }


async def lookup_phase(backend: Backend, company: Company, plan: Plan) -> None:
    """16 lookups in flight through chat; lookup time and loop lateness taken inside the bot."""
    queries = company.lookup_queries
    runs = []
    async with wecom(company) as (sim, log, api_base):
        server = await start_bot(
            "all",
            database_url=backend.url,
            api_base=api_base,
            redis_url=backend.redis,
            log_dir=backend.log_dir,
            probe=True,
        )
        try:
            async with aiohttp.ClientSession() as http:
                warm = [_post(sim, u, f"查 {q}", "lookup") for u, q in queries[:32]]
                await _answer_run(server, sim, log, warm, 16, 30)
                for _ in range(plan.repeats):
                    async with http.post(f"{server.url}/bench/probe/reset") as resp:
                        resp.raise_for_status()
                    posts = [_post(sim, u, f"查 {q}", "lookup") for u, q in queries]
                    figures, _ = await _answer_run(server, sim, log, posts, 16, plan.window)
                    await clear_queues(backend.url)
                    async with http.get(f"{server.url}/bench/probe") as resp:
                        probe = await resp.json()
                    figures.update(
                        lookups=len(probe["lookups"]),
                        lookup_p50_ms=_ms(probe["lookups"], 50),
                        lookup_p99_ms=_ms(probe["lookups"], 99),
                        worst_stall_ms=probe["worst_stall_ms"],
                        stalls_over_5ms=probe["stalls_over_5ms"],
                    )
                    runs.append(figures)
        finally:
            await server.stop()
    backend.figures["lookup"] = {
        "runs": runs,
        "p99": spread([r["lookup_p99_ms"] for r in runs]),
        "stall": spread([r["worst_stall_ms"] for r in runs]),
        "customers": company.customers,
    }


def _post(sim: WeComSimulator, user: str, text: str, kind: str) -> Post:
    params, body = sim.sender.build_post(sim.sender.message_xml(user, "text", Content=text))
    return Post(user, kind, text, params, body)


async def _fill_outbox(url: str, users: list[str], count: int, tag: str) -> None:
    engine = create_engine(url)
    sessions = session_factory(engine)
    now = datetime.now(UTC)
    async with sessions.begin() as session:
        for i in range(count):
            user = users[i % len(users)]
            await outbox.enqueue(
                session,
                dedup_key=f"bench-relay:{tag}:{i}",
                to_user=user,
                msgtype="text",
                payload={"touser": user, "msgtype": "text", "text": {"content": f"提醒 {i}"}},
                now=now,
            )
    await engine.dispose()


async def relay_phase(backend: Backend, company: Company, plan: Plan) -> None:
    """Replies/s of the relay (`--role worker`) with 50 ms added to every message/send."""
    users = [rep_id(r) for r in range(company.reps)]
    per_user = max(1, -(-plan.relay_messages // len(users)))
    users = users[: -(-plan.relay_messages // per_user)]
    rates, bare_rates = [], []
    for attempt in range(plan.repeats):
        await clear_queues(backend.url)
        await _fill_outbox(backend.url, users, plan.relay_messages, f"{time.time()}:{attempt}")
        async with wecom(company) as (sim, log, api_base):
            sim.delay_next("message/send", WECOM_LATENCY, times=10**9)
            server = await start_bot(
                "worker",
                database_url=backend.url,
                api_base=api_base,
                redis_url=backend.redis,
                log_dir=backend.log_dir,
            )
            try:
                expected = {u: log.count(u) + per_user for u in users}
                await wait_answered(log, expected, patience=180)
            finally:
                await server.stop()
            times = sorted(t for u in users for t, _ in log.arrivals.get(u, []))
            if len(times) > 1:
                rates.append((len(times) - 1) / (times[-1] - times[0]))
            bare_rates.append(
                await bare_sender.run_in_process(
                    api_base, users, plan.relay_messages, concurrency=64
                )
            )
    await clear_queues(backend.url)
    backend.figures["relay"] = {
        "messages": plan.relay_messages,
        "latency_ms": WECOM_LATENCY * 1000,
        "rate": spread(rates),
        "bare_rate": spread(bare_rates),
    }


async def _processing_users(url: str, pid: int) -> list[str]:
    engine = create_engine(url)
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(InboxMessage.user_id).where(
                InboxMessage.status == INBOX_PROCESSING,
                InboxMessage.lease_owner.like(f"%-{pid}"),
            )
        )
        users = sorted({r[0] for r in rows})
    await engine.dispose()
    return users


async def kill_phase(backend: Backend, company: Company, plan: Plan) -> None:
    """kill -9 the worker mid-stream, start another, time the affected people's next reply."""
    await clear_queues(backend.url)
    async with wecom(company) as (sim, log, api_base):

        def start(role: str) -> Coroutine[Any, Any, Server]:
            return start_bot(
                role,
                database_url=backend.url,
                api_base=api_base,
                redis_url=backend.redis,
                log_dir=backend.log_dir,
            )

        web_server = await start("web")
        worker = await start("worker")
        replacement: Server | None = None
        try:
            posts = build_posts(sim.sender, company.scripts, rounds=3)
            before = {u: log.count(u) for u in {p.user for p in posts}}
            stop = asyncio.Event()
            url = f"{web_server.url}/wecom/callback"
            stream = asyncio.create_task(drive(url, posts, 8, stop))
            await asyncio.sleep(plan.kill_stream_seconds / 2)  # let the worker get busy
            affected: list[str] = []
            for _ in range(200):
                affected = await _processing_users(backend.url, worker.pid)
                if affected:
                    break
            worker.kill9()
            killed_at = time.perf_counter()
            await worker.process.wait()
            seen = {u: log.count(u) for u in affected}
            replacement = await start("worker")
            restarted = time.perf_counter() - killed_at
            await asyncio.sleep(plan.kill_stream_seconds / 2)
            stop.set()
            run = await stream
            expected = {u: before[u] + len(t) for u, t in run.sent_at.items()}
            await wait_answered(log, {u: seen[u] + 1 for u in affected}, patience=150)
            again = [
                log.arrivals[u][seen[u]][0] - killed_at for u in affected if log.count(u) > seen[u]
            ]
            complete = await wait_answered(log, expected, patience=150)
            lost = sum(max(0, expected[u] - log.count(u)) for u in expected)
            dupes = sum(max(0, log.count(u) - expected[u]) for u in expected)
        finally:
            for server in (web_server, worker, replacement):
                if server is not None:
                    await server.stop()
    await clear_queues(backend.url)
    backend.figures["kill"] = {
        "affected": len(affected),
        "answered_again": len(again),
        "worst_s": max(again) if again else float("nan"),
        "best_s": min(again) if again else float("nan"),
        "restart_s": restarted,
        "complete": complete,
        "lost": lost,
        "errors": run.errors,
        "duplicates": dupes,
    }


async def rss_million(backend: Backend, company: Company, log_dir: Path) -> None:
    """RSS of one `--role all` process over 1,000,000 customers, its index loaded."""
    big = Company(company.reps, 1_000_000, seed=company.seed)
    url = f"sqlite:///{log_dir / 'million.db'}"
    million = Backend(backend.name, url, None, log_dir)
    await prepare(million, big)
    async with wecom(big) as (sim, log, api_base):
        server = await start_bot(
            "all", database_url=url, api_base=api_base, redis_url=None, log_dir=log_dir
        )
        try:
            user, query = big.lookup_queries[0]
            started = time.perf_counter()
            post = _post(sim, user, f"查 {query}", "lookup")
            figures, rss = await _answer_run(server, sim, log, [post], 1)
            backend.figures["rss_million_mb"] = {
                "max": max([*rss, server.rss_mb()]),
                "peak": server.peak_rss_mb(),
                "first_answer_s": time.perf_counter() - started,
                "answered": figures["answered"],
            }
        finally:
            await server.stop()


Phase = Callable[[Backend, Company, Plan], Coroutine[Any, Any, None]]


async def run_backend(backend: Backend, plan: Plan, phases: list[str]) -> None:
    company = Company(plan.reps, plan.customers)
    print(f"== {backend.name}: preparing", flush=True)
    await prepare(backend, company)
    table: dict[str, Phase] = {
        "ack": lambda b, c, p: ack_phase(b, c, p, [16, 64]),
        "answers": answers_phase,
        "lookup": lookup_phase,
        "relay": relay_phase,
        "kill": kill_phase,
    }
    for name in phases:
        print(f"== {backend.name}: {name}", flush=True)
        started = time.perf_counter()
        try:
            await table[name](backend, company, plan)
        except Exception as exc:  # one broken phase must not hide the others' figures
            backend.figures.setdefault("failed", {})[name] = f"{type(exc).__name__}: {exc}"
            print(f"   {name} failed: {exc}", file=sys.stderr, flush=True)
        print(f"   {name}: {time.perf_counter() - started:.0f} s", flush=True)
    if plan.rss_million and backend.name == "SQLite":
        print(f"== {backend.name}: RSS at 1,000,000 customers", flush=True)
        await rss_million(backend, company, backend.log_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--phases", default="ack,answers,lookup,relay,kill")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    plan = Plan.of(args.quick)
    tmp = Path(tempfile.mkdtemp(prefix="wecrm-deploy-"))
    out: dict[str, Any] = {"plan": plan.__dict__, "backends": {}}
    for name in args.databases.split(","):
        log_dir = tmp / name
        log_dir.mkdir()
        if name == "sqlite":
            backend = Backend("SQLite", f"sqlite:///{log_dir / 'bench.db'}", None, log_dir)
        else:
            url = fresh_pg_database("wecrm_bench_deploy")
            backend = Backend("PostgreSQL", url, REDIS_URL, log_dir)
        asyncio.run(run_backend(backend, plan, args.phases.split(",")))
        out["backends"][backend.name] = backend.figures
        args.json.write_text(json.dumps(out, indent=1, ensure_ascii=False), encoding="utf-8")
    print(f"logs in {tmp}")


if __name__ == "__main__":
    main()
