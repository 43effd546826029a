"""The relay's baseline: a bare aiohttp client sending the same messages to the same WeCom.

    python -m bench.bare_sender --api-base URL --users a,b --count N --concurrency C

Gets a token once, then POSTs message/send with C in flight and prints messages per second.
It runs in its own process, as the relay does, so it competes with nobody's event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import aiohttp

from bench.common import BENCH_CREDS


async def send_all(api_base: str, users: list[str], count: int, concurrency: int) -> float:
    async with aiohttp.ClientSession() as http:
        params = {
            "corpid": BENCH_CREDS["WECOM_CORP_ID"],
            "corpsecret": BENCH_CREDS["WECOM_SECRET"],
        }
        async with http.get(f"{api_base}gettoken", params=params) as resp:
            token = (await resp.json())["access_token"]
        pending = list(range(count))
        times: list[float] = []

        async def lane() -> None:
            while pending:
                i = pending.pop()
                user = users[i % len(users)]
                body = {
                    "touser": user,
                    "msgtype": "text",
                    "agentid": int(BENCH_CREDS["WECOM_AGENT_ID"]),
                    "text": {"content": f"基线 {i}"},
                }
                url = f"{api_base}message/send"
                async with http.post(url, params={"access_token": token}, json=body) as resp:
                    answer = await resp.json()
                if answer.get("errcode") != 0:
                    raise RuntimeError(f"message/send answered {answer}")
                times.append(time.perf_counter())

        started = time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(concurrency)))
        return len(times) / (time.perf_counter() - started)


async def run_in_process(api_base: str, users: list[str], count: int, concurrency: int) -> float:
    """Start this module as a child process and return the rate it printed."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.bare_sender",
        "--api-base",
        api_base,
        "--users",
        ",".join(users),
        "--count",
        str(count),
        "--concurrency",
        str(concurrency),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"bare sender failed ({process.returncode})")
    return float(out.decode().strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api-base", required=True)
    parser.add_argument("--users", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    rate = asyncio.run(
        send_all(args.api_base, args.users.split(","), args.count, args.concurrency)
    )
    print(f"{rate:.1f}")


if __name__ == "__main__":
    main()
