"""docs/COMMANDS.md is what the routers register, every command with its aliases and roles."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from handlers.dispatch import dispatcher

ROOT = Path(__file__).resolve().parents[2]


def test_the_command_reference_is_current() -> None:
    check = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "commands_doc.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    text = (ROOT / "docs" / "COMMANDS.md").read_text(encoding="utf-8")
    for cmd in dispatcher().commands:
        assert f"| `{cmd.name}` |" in text
        for alias in cmd.aliases:
            assert f"`{alias}`" in text
