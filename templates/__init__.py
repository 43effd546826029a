"""The words the bot says, as Jinja templates: `render("help/overview", commands=...)`.

Markdown templates (`*.md.j2`) escape every value they print: a rep's `[点我](http://evil)` or
`<font>` must reach a colleague as inert text. WeCom's markdown has no escape character
(PROTOCOL.md §4.6), so each special becomes its full-width twin, which reads the same. A value
the code built as markdown itself opts out with `|safe` in the template, or `trusted(...)`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

__all__ = ["escape_markdown", "kind_of", "render", "trusted"]

TEMPLATE_DIR = Path(__file__).parent
_EVERYWHERE = str.maketrans(
    {"[": "［", "]": "］", "(": "（", ")": "）", "*": "＊", "_": "＿", "`": "｀", "<": "＜"}
)
_LINE_START = re.compile(r"^([ \t]*)([#>])", re.MULTILINE)  # headings and quotes
_LINE_START_TWIN = {"#": "＃", ">": "＞"}


def escape_markdown(text: str) -> str:
    """User text made inert in WeCom markdown: no links, bold, code, quotes, headings, tags."""
    text = text.translate(_EVERYWHERE)
    return _LINE_START.sub(lambda m: m.group(1) + _LINE_START_TWIN[m.group(2)], text)


def trusted(markdown: str) -> Markup:
    """Markdown the code built itself, printed as is by a markdown template."""
    return Markup(markdown)


def _finalize(value: Any) -> Any:
    """Every `{{ ... }}` of a markdown template passes here; only trusted values skip it."""
    if isinstance(value, Markup) or value is None or isinstance(value, int | float):
        return value
    return escape_markdown(str(value))


def _environment(*, markdown: bool) -> Environment:
    return Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        undefined=StrictUndefined,
        autoescape=False,  # WeCom text and markdown, not HTML
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        finalize=_finalize if markdown else None,
    )


@lru_cache(maxsize=2)
def environment(markdown: bool = False) -> Environment:
    """One environment for text templates, one that escapes for markdown templates."""
    return _environment(markdown=markdown)


def render(name: str, /, **variables: Any) -> str:
    """Render `templates/<name>.md.j2` (or `.txt.j2`); a missing variable is an error, not ''."""
    for suffix in (".md.j2", ".txt.j2"):
        path = TEMPLATE_DIR / f"{name}{suffix}"
        if path.exists():
            env = environment(suffix == ".md.j2")
            return env.get_template(f"{name}{suffix}").render(**variables).strip()
    raise LookupError(f"no template named {name!r}")


def kind_of(name: str) -> str:
    """'markdown' for .md.j2 templates, 'text' for .txt.j2 ones."""
    return "markdown" if (TEMPLATE_DIR / f"{name}.md.j2").exists() else "text"
