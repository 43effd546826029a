"""Markdown for docs/BENCHMARKS.md from bench_deploy's JSON: the figures and the goals table."""

from __future__ import annotations

import math
from typing import Any

Spread = dict[str, float]


def _s(spread: Spread | None, fmt: str = ".0f") -> str:
    """'median (min–max)'; a single value when the repeats agree."""
    if not spread:
        return "—"
    med, low, high = spread["median"], spread["min"], spread["max"]
    if math.isnan(med):
        return "—"
    if format(low, fmt) == format(high, fmt):
        return format(med, fmt)
    return f"{med:{fmt}} ({low:{fmt}}–{high:{fmt}})"


def _verdict(value: float | None, goal: float, higher_is_better: bool) -> str:
    if value is None or math.isnan(value):
        return "not measured"
    met = value >= goal if higher_is_better else value <= goal
    if met:
        return "**met**"
    if higher_is_better:
        return f"not met: {value / goal:.0%} of the goal"
    return f"not met: {value / goal:.1f}× the limit"


def _median(node: dict[str, Any] | None, *path: str) -> float | None:
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    if isinstance(node, dict):
        return float(node["median"])
    return float(node) if isinstance(node, int | float) else None


def goals_section(deploy: dict[str, Any], _sections: list[str] | None = None) -> str:
    backends: dict[str, Any] = deploy.get("backends", {})
    rows = ["## Goals", "", "| goal | target | measured | verdict |", "|---|---|---|---|"]
    for name, figures in backends.items():
        for level in (16, 64):
            bot = _median(figures, "ack", f"bot@{level}", "rate")
            bare = _median(figures, "ack", f"bare@{level}", "rate")
            ratio = bot / bare if bot is not None and bare else None
            shown = f"{ratio:.0%} ({bot:.0f} vs {bare:.0f} req/s)" if ratio is not None else "—"
            rows.append(
                f"| ack throughput vs bare aiohttp, {level} in flight, {name} | ≥ 40% | "
                f"{shown} | {_verdict(ratio, 0.40, True)} |"
            )
    for name, figures in backends.items():
        for level in (16, 64):
            p99 = _median(figures, "ack", f"bot@{level}", "p99")
            shown = f"{p99:.1f} ms" if p99 is not None else "—"
            verdict = _verdict(p99, 50, False) if level == 64 else "(reported)"
            rows.append(
                f"| ack p99, {level} in flight, {name} | ≤ 50 ms at 64 | {shown} | {verdict} |"
            )
    for name, figures in backends.items():
        goal = 500 if name == "SQLite" else 1000
        rate = _median(figures, "answers", "rate")
        shown = f"{rate:.1f} msg/s" if rate is not None else "—"
        rows.append(
            f"| answered msg/s end to end, realistic mix, {name} | ≥ {goal:,} | {shown} | "
            f"{_verdict(rate, goal, True)} |"
        )
    for name, figures in backends.items():
        rate = _median(figures, "relay", "rate")
        bare = _median(figures, "relay", "bare_rate")
        shown = f"{rate:.0f}/s (bare client {bare:.0f}/s)" if rate and bare else "—"
        rows.append(
            f"| relay replies/s, 50 ms WeCom latency, {name} | ≥ 500 | {shown} | "
            f"{_verdict(rate, 500, True)} |"
        )
    for name, figures in backends.items():
        kill = figures.get("kill") or {}
        worst = kill.get("worst_s")
        shown = (
            f"{worst:.1f} s ({kill.get('answered_again')}/{kill.get('affected')} affected)"
            if worst is not None and not math.isnan(worst)
            else "—"
        )
        rows.append(
            f"| a killed worker's user answered again, {name} | ≤ 15 s | {shown} | "
            f"{_verdict(worst, 15, False)} |"
        )
    for name, figures in backends.items():
        lookup = figures.get("lookup") or {}
        p99 = _median(lookup, "p99")
        stall = _median(lookup, "stall")
        size = lookup.get("customers", 0)
        rows.append(
            f"| lookup p99 in the bot, 16 in flight, {size:,} customers, {name} | ≤ 20 ms "
            f"(100k) | {_s(lookup.get('p99'), '.1f')} ms | {_verdict(p99, 20, False)} |"
        )
        rows.append(
            f"| worst event-loop stall during that burst, {name} | ≤ 5 ms | "
            f"{_s(lookup.get('stall'), '.1f')} ms | {_verdict(stall, 5, False)} |"
        )
    plan = deploy.get("plan", {})
    for name, figures in backends.items():
        rss = (figures.get("rss_mb") or {}).get("peak")
        if rss is not None:
            rows.append(
                f"| RSS of one `--role all` process, {plan.get('customers', 0):,} customers, "
                f"{name} | ≤ 300 MB (100k) | {rss:.0f} MB peak | {_verdict(rss, 300, False)} |"
            )
        million = (figures.get("rss_million_mb") or {}).get("peak")
        if million is not None:
            rows.append(
                f"| RSS of one `--role all` process, 1,000,000 customers, {name} | ≤ 1 GB | "
                f"{million:.0f} MB peak | {_verdict(million, 1024, False)} |"
            )
    return "\n".join(rows) + "\n"


def deployment_section(deploy: dict[str, Any]) -> str:
    plan = deploy.get("plan", {})
    backends: dict[str, Any] = deploy.get("backends", {})
    out = [
        "## The bot deployed (bench/bench_deploy.py)",
        "",
        f"A company of {plan.get('reps', 0)} sales reps (directory in the simulator, then "
        f"`wecrm sync-directory`) and {plan.get('customers', 0):,} customers. The bot is "
        "`wecrm serve` in child processes on loopback; this process is WeCom (the simulator) "
        "and the load generator. SQLite runs without Redis (the embedded default); "
        "PostgreSQL runs with Redis. Repeats: "
        f"{plan.get('repeats', 0)}; figures are median (min–max).",
        "",
        "### Ack path: `--role web` vs a bare aiohttp endpoint",
        "",
        "Encrypted callbacks with N in flight (people's messages in order, one at a time per "
        f"person), {plan.get('ack_messages', 0):,} per repeat after a 200-message warm-up.",
        "",
        "| database | in flight | bare req/s | bot req/s | ratio | bare p99 ms | bot p50 ms | "
        "bot p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, figures in backends.items():
        ack = figures.get("ack", {})
        for level in (16, 64):
            bare, bot = ack.get(f"bare@{level}"), ack.get(f"bot@{level}")
            if not bare or not bot:
                continue
            ratio = bot["rate"]["median"] / bare["rate"]["median"]
            out.append(
                f"| {name} | {level} | {_s(bare['rate'])} | {_s(bot['rate'])} | {ratio:.0%} | "
                f"{_s(bare['p99'], '.1f')} | {_s(bot['p50'], '.1f')} | {_s(bot['p99'], '.1f')} |"
            )
    out += [
        "",
        "### Answered end to end: one `--role all` process, realistic mix",
        "",
        "Every rep types, in order: `查 <query>` (fragment, pinyin, initials, typo… from "
        "bench/corpus.py, for one of their own customers), `查 <brand>` that matches two of "
        "their customers, `2` (the choice), `跟进 <客户> <内容与下一步>`, another `查`, and "
        "`帮助`. 16 in flight. A message counts as answered when the simulator's message/send "
        "receives its reply; *bad* counts replies saying not found / bad choice / error. "
        "Each repeat offers the whole mix and counts answers for at most "
        f"{plan.get('window', 0):.0f} s "
        "(the bot is saturated the whole time, so answered / elapsed is its rate); the rest "
        "is cleared before the next repeat.",
        "",
        "| database | offered | answered | s | answered msg/s | bad | answer p50 s | "
        "ack p99 ms (worker busy) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, figures in backends.items():
        for run in (figures.get("answers") or {}).get("runs", []):
            out.append(
                f"| {name} | {run['messages']} | {run['answered']} | {run['seconds']:.1f} | "
                f"{run['rate']:.1f} | {run['bad']} | {run['answer_p50_ms'] / 1000:.1f} | "
                f"{run['ack_p99_ms']:.0f} |"
            )
    out += [
        "",
        "### Lookups in the bot (bench/probe.py inside `wecrm serve --role all`)",
        "",
        "Only `查 <query>` messages, 16 in flight. The probe times `CustomerSearch.search` "
        "(index and the database read of the hits) inside the bot and ticks every 1 ms in "
        "its event loop to record the worst lateness.",
        "",
        "| database | lookups | p50 ms | p99 ms | worst stall ms | stalls > 5 ms | "
        "answered msg/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, figures in backends.items():
        for run in (figures.get("lookup") or {}).get("runs", []):
            out.append(
                f"| {name} | {run['lookups']} | {run['lookup_p50_ms']:.1f} | "
                f"{run['lookup_p99_ms']:.1f} | {run['worst_stall_ms']:.1f} | "
                f"{run['stalls_over_5ms']} | {run['rate']:.1f} |"
            )
    out += [
        "",
        "### Relay: `--role worker` with 50 ms added to every message/send",
        "",
        "The outbox is filled directly, then a worker process starts; the rate is taken "
        "between the first and the last message/send the simulator answered. Baseline: "
        "bench/bare_sender.py, a bare aiohttp client in its own process, sending the same "
        "number of messages to the same slow simulator with 64 in flight.",
        "",
        "| database | messages | relay msg/s | bare client msg/s |",
        "|---|---:|---:|---:|",
    ]
    for name, figures in backends.items():
        relay = figures.get("relay")
        if relay:
            out.append(
                f"| {name} | {relay['messages']} | {_s(relay['rate'])} | "
                f"{_s(relay['bare_rate'])} |"
            )
    out += [
        "",
        "### A killed worker: `--role web` + `--role worker`, kill -9 mid-stream",
        "",
        "People stream the mix with 8 in flight; the worker is killed with SIGKILL while it "
        "holds claimed messages (the affected people), a new worker is started at once, and "
        "we time from the kill until each affected person's next reply. *lost*/*duplicates* "
        "compare every person's replies with their acknowledged messages after the backlog "
        "drained.",
        "",
        "| database | affected | answered again | first s | worst s | new worker up s | "
        "drained | lost | duplicates |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for name, figures in backends.items():
        kill = figures.get("kill")
        if kill:
            out.append(
                f"| {name} | {kill['affected']} | {kill['answered_again']} | "
                f"{kill['best_s']:.1f} | {kill['worst_s']:.1f} | {kill['restart_s']:.1f} | "
                f"{'yes' if kill['complete'] else 'no'} | {kill['lost']} | {kill['duplicates']} |"
            )
    out += ["", "### Memory", ""]
    for name, figures in backends.items():
        rss = figures.get("rss_mb")
        if rss:
            out.append(
                f"- {name}: `--role all` over {plan.get('customers', 0):,} customers during the "
                f"mix: VmRSS max {rss['max']:.0f} MB, VmHWM {rss['peak']:.0f} MB."
            )
        million = figures.get("rss_million_mb")
        if million:
            out.append(
                f"- {name}: `--role all` over 1,000,000 customers after its first answer "
                f"({million['first_answer_s']:.0f} s after start, index loaded): VmRSS "
                f"{million['max']:.0f} MB, VmHWM {million['peak']:.0f} MB."
            )
    for name, figures in backends.items():
        for phase, error in (figures.get("failed") or {}).items():
            out.append(f"- {name}: phase *{phase}* failed: {error}")
    return "\n".join(out) + "\n"
