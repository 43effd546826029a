"""Gateway benchmark: callback ack latency against a bare aiohttp endpoint, and end-to-end rate.

The servers under test run in their own process (the load generator would otherwise share the
event loop with them); the baseline is measured in the same run, so the ratio is what counts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.common import BENCH_CREDS, fresh_pg_database, machine, summary_ms, today
from bot.demo import run_demo
from bot.simulator.callbacks import CallbackSender
from crm_store.clock import SystemClock
from crm_store.migrate import upgrade

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sender() -> CallbackSender:
    return CallbackSender(
        token=str(BENCH_CREDS["WECOM_TOKEN"]),
        encoding_aes_key=str(BENCH_CREDS["WECOM_AES_KEY"]),
        corp_id=str(BENCH_CREDS["WECOM_CORP_ID"]),
        agent_id=int(BENCH_CREDS["WECOM_AGENT_ID"]),
        clock=SystemClock(),
    )


async def _measure_ack(
    url: str, posts: list[tuple[dict[str, str], bytes]], concurrency: int
) -> tuple[list[float], float]:
    """Per-request latencies (s) and overall throughput (req/s) at a fixed concurrency."""
    latencies: list[float] = []
    queue = list(reversed(posts))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def one_client() -> None:
            while queue:
                params, body = queue.pop()
                started = time.perf_counter()
                async with http.post(url, params=params, data=body) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"callback answered {resp.status}")
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return latencies, len(latencies) / elapsed


def _start_target(mode: str, db: str = "") -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.gateway_target",
            "--mode",
            mode,
            "--port",
            str(port),
            "--db",
            db,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError(f"{mode} target did not start")
    return proc, f"http://127.0.0.1:{port}/wecom/callback"


def ack_benchmark(requests: int, levels: list[int], databases: dict[str, str]) -> list[str]:
    sender = _sender()
    targets = [("bare aiohttp (baseline)", "bare", "")] + [
        (f"/wecom/callback on {name}", "bot", url) for name, url in databases.items()
    ]
    rows: list[tuple[str, int, float, float, float]] = []
    msg_id = 10_000_000
    for label, mode, db in targets:
        if db:
            upgrade(db)
        proc, url = _start_target(mode, db)
        try:
            for concurrency in levels:
                posts = []
                for i in range(requests + 200):
                    msg_id += 1
                    xml = sender.message_xml(
                        f"user{i % 500}", "text", msg_id=msg_id, Content="帮助"
                    )
                    posts.append(sender.build_post(xml))
                asyncio.run(_measure_ack(url, posts[:200], concurrency))  # warm-up
                latencies, rate = asyncio.run(_measure_ack(url, posts[200:], concurrency))
                p50, p99, _ = summary_ms(latencies)
                rows.append((label, concurrency, p50, p99, rate))
        finally:
            proc.terminate()
            proc.wait()
    base = {c: (p99, rate) for label, c, _p50, p99, rate in rows if label.startswith("bare")}
    lines = [
        f"Ack latency: {requests} encrypted callbacks per concurrency level, server in its own "
        "process (decrypt + parse + one committed inbox INSERT, vs. a bare 200).",
        "",
        "| endpoint | concurrent | p50 ms | p99 ms | req/s | p99 vs bare | throughput vs bare |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, concurrency, p50, p99, rate in rows:
        base_p99, base_rate = base[concurrency]
        lines.append(
            f"| {label} | {concurrency} | {p50:.2f} | {p99:.2f} | {rate:.0f} | "
            f"{p99 / base_p99:.1f}x | {rate / base_rate:.2f}x |"
        )
    return lines


async def _end_to_end(db: str, messages: int, users: int, concurrency: int) -> tuple[float, int]:
    async with run_demo(db, port=0) as demo:
        for i in range(users):
            demo.sim.add_user(f"bench{i}", f"压测{i}", [1])
        sender = demo.sim.sender
        url = f"{demo.bot_url}/wecom/callback"
        posts = [
            sender.build_post(
                sender.message_xml(
                    f"bench{i % users}", "text", msg_id=50_000_000 + i, Content="帮助"
                )
            )
            for i in range(messages)
        ]
        before = sum(len(m.delivered_to) for m in demo.sim.sent_messages)
        started = time.perf_counter()
        await _measure_ack(url, posts, concurrency)
        deadline = started + 300
        while time.perf_counter() < deadline:
            delivered = sum(len(m.delivered_to) for m in demo.sim.sent_messages) - before
            if delivered >= messages:
                break
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        return elapsed, delivered


def end_to_end_benchmark(messages: int, users: int, databases: dict[str, str]) -> list[str]:
    lines = [
        "",
        f"End to end: {messages} `帮助` messages from {users} people (under WeCom's 30/min per "
        "person), from the encrypted POST until the simulator has delivered every reply "
        "(worker + relay in one `--role all` process, simulator in the same process).",
        "",
        "| database | answered | seconds | messages/s |",
        "|---|---:|---:|---:|",
    ]
    for name, db in databases.items():
        upgrade(db)
        elapsed, delivered = asyncio.run(_end_to_end(db, messages, users, concurrency=16))
        lines.append(f"| {name} | {delivered} | {elapsed:.1f} | {delivered / elapsed:.0f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--levels", default="1,4,16", help="concurrency levels")
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="wecrm-bench-"))
    os.environ.setdefault("WECRM_LOG_LEVEL", "WARNING")
    databases = {
        "SQLite": f"sqlite:///{tmp / 'ack.db'}",
        "PostgreSQL": fresh_pg_database("wecrm_bench_ack"),
    }
    lines = [f"## Gateway ({today()})", "", f"Machine: {machine()}", ""]
    levels = [int(level) for level in args.levels.split(",")]
    lines += ack_benchmark(args.requests, levels, databases)
    e2e_dbs = {
        "SQLite": f"sqlite:///{tmp / 'e2e.db'}",
        "PostgreSQL": fresh_pg_database("wecrm_bench_e2e"),
    }
    lines += end_to_end_benchmark(
        args.messages, users=max(50, args.messages // 5), databases=e2e_dbs
    )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
