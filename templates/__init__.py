"""The words the bot says, as Jinja templates: `render("help/overview", commands=...)`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATE_DIR = Path(__file__).parent


@lru_cache(maxsize=1)
def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        undefined=StrictUndefined,
        autoescape=False,  # WeCom text and markdown, not HTML
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


def render(name: str, /, **variables: Any) -> str:
    """Render `templates/<name>.md.j2` (or `.txt.j2`); a missing variable is an error, not ''."""
    env = environment()
    for suffix in (".md.j2", ".txt.j2"):
        path = TEMPLATE_DIR / f"{name}{suffix}"
        if path.exists():
            return env.get_template(f"{name}{suffix}").render(**variables).strip()
    raise LookupError(f"no template named {name!r}")


def kind_of(name: str) -> str:
    """'markdown' for .md.j2 templates, 'text' for .txt.j2 ones."""
    return "markdown" if (TEMPLATE_DIR / f"{name}.md.j2").exists() else "text"
