"""Processes as a deployment runs them: `wecrm serve` (any role) and the bare baseline server.

The load generator never shares an event loop with what it measures: each server here is a
child process on an ephemeral loopback port, started, watched through /proc and stopped (or
killed with SIGKILL) by pid.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import aiohttp

from bench.common import BENCH_CREDS

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """An ephemeral loopback port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wecrm_command() -> list[str]:
    """The installed `wecrm` script beside this interpreter (the console entry point)."""
    script = Path(sys.executable).with_name("wecrm")
    if not script.exists():
        raise RuntimeError(f"{script} is missing: run `bash scripts/bootstrap.sh` first")
    return [str(script)]


def bot_env(database_url: str, api_base: str, redis_url: str | None) -> dict[str, str]:
    """The environment a deployment would set: credentials, database, WeCom base, Redis."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECOM_", "WECRM_"))}
    env.update({k: str(v) for k, v in BENCH_CREDS.items()})
    env.update(
        WECOM_API_BASE=api_base,
        WECRM_DATABASE_URL=database_url,
        WECRM_REDIS_URL=redis_url or "",
        WECRM_LOG_LEVEL="WARNING",
    )
    return env


@dataclass
class Server:
    """One child process serving HTTP on `port`."""

    name: str
    process: asyncio.subprocess.Process
    port: int
    log_path: Path
    rss_samples: list[float] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_mb(self) -> float:
        """Resident set size now, from /proc/<pid>/status (VmRSS)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no VmRSS for pid {self.pid}")

    def peak_rss_mb(self) -> float:
        """The high-water mark of the resident set (VmHWM)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no VmHWM for pid {self.pid}")

    def kill9(self) -> None:
        """What the OOM killer or a lost machine does: no shutdown, no cleanup."""
        os.kill(self.pid, signal.SIGKILL)

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 15)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _log_file(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("wb")


async def start_process(
    name: str, argv: list[str], port: int, env: dict[str, str], log_dir: Path
) -> Server:
    """Start `argv` and wait until GET /healthz answers 200 (or the process dies)."""
    log_path = log_dir / f"{name}-{port}.log"
    with _log_file(log_path) as log:
        process = await asyncio.create_subprocess_exec(
            *argv, cwd=ROOT, env=env, stdout=log, stderr=asyncio.subprocess.STDOUT
        )
    server = Server(name, process, port, log_path)
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                break
            try:
                async with http.get(f"{server.url}/healthz") as resp:
                    if resp.status == 200:
                        return server
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)  # polling a child's start-up: real time is the point
    await server.stop()
    raise RuntimeError(f"{name} did not come up on :{port}:\n{server.log_tail()}")


async def start_bot(
    role: str,
    *,
    database_url: str,
    api_base: str,
    redis_url: str | None,
    log_dir: Path,
    probe: bool = False,
) -> Server:
    """`wecrm serve --role <role>` in its own process; with a probe, the same command wrapped
    by bench.probe, which times lookups and the event loop inside that process."""
    port = free_port()
    serve = ["serve", "--host", "127.0.0.1", "--port", str(port), "--role", role]
    env = bot_env(database_url, api_base, redis_url)
    argv = [sys.executable, "-m", "bench.probe", *serve] if probe else wecrm_command() + serve
    return await start_process(f"wecrm-{role}", argv, port, env, log_dir)


async def start_bare(log_dir: Path) -> Server:
    """The baseline: a bare aiohttp endpoint at /wecom/callback, started the same way."""
    port = free_port()
    argv = [sys.executable, "-m", "bench.gateway_target", "--mode", "bare", "--port", str(port)]
    return await start_process("bare-aiohttp", argv, port, dict(os.environ), log_dir)


async def run_cli(args: list[str], env: dict[str, str]) -> str:
    """Run a `wecrm` admin command (db upgrade, sync-directory) and return its output."""
    process = await asyncio.create_subprocess_exec(
        *wecrm_command(),
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    text = out.decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"wecrm {' '.join(args)} failed ({process.returncode}):\n{text}")
    return text
