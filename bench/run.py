"""`make bench`: run every benchmark and write docs/BENCHMARKS.md (machine and date included)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import machine, today

ROOT = Path(__file__).resolve().parents[1]
BENCHES = [
    ("bench.bench_gateway", []),
    ("bench.bench_lookup", ["--sizes", "10000,100000,1000000"]),
    ("bench.bench_lookup_service", ["--customers", "100000"]),
    ("bench.bench_import", ["--rows", "100000"]),
]


def main() -> None:
    sections = [
        f"# Benchmarks\n\nRun: {today()} with `make bench`.\nMachine: {machine()}\n"
        "\nEvery figure is compared with a baseline measured in the same run; the "
        "machine is shared and noisy, so read ratios rather than absolute numbers.\n"
    ]
    for module, args in BENCHES:
        with tempfile.NamedTemporaryFile(suffix=".md", delete=False) as handle:
            out = Path(handle.name)
        print(f"== {module}", flush=True)
        done = subprocess.run(
            [sys.executable, "-m", module, *args, "--out", str(out)], cwd=ROOT, check=False
        )
        if done.returncode != 0:
            sections.append(f"## {module}\n\nFailed with exit code {done.returncode}.\n")
            continue
        sections.append(out.read_text(encoding="utf-8"))
    target = ROOT / "docs" / "BENCHMARKS.md"
    target.parent.mkdir(exist_ok=True)
    target.write_text("\n".join(sections), encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
