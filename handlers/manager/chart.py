"""The digest as a picture: the pipeline by stage and the follow-ups per person, as a PNG.

Drawn with matplotlib's Agg canvas (no pyplot, no display, safe in any thread) in a CJK font
found on the machine; scripts/bootstrap.sh installs one (fonts-noto-cjk) when none is there.
Without one the chart is refused with a clear error rather than drawn in missing-glyph boxes.
Sending the picture (media/upload) belongs to the relay; this module only makes the bytes.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from crm_store import kpi
from handlers.common.format import money

# Families that cover Simplified Chinese, best first (Debian: fonts-noto-cjk, fonts-wqy-*).
CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "Noto Sans SC",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Source Han Sans SC",
    "Droid Sans Fallback",
)
_FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts")
_NAME_HINTS = ("notosanscjk", "wqy-microhei", "wqy-zenhei", "sourcehansans", "droidsansfallback")
MAX_PEOPLE = 15  # the chart names the most active; the markdown names everyone


class NoCjkFont(RuntimeError):
    """No font with Chinese glyphs is installed: run scripts/bootstrap.sh (fonts-noto-cjk)."""


@lru_cache(maxsize=1)
def cjk_font() -> Path:
    """The file of an installed CJK font: by family name first, then by well-known file names."""
    for family in CJK_FAMILIES:
        try:
            found = font_manager.findfont(
                font_manager.FontProperties(family=family), fallback_to_default=False
            )
        except ValueError:
            continue
        return Path(found)
    for folder in _FONT_DIRS:
        for path in sorted(Path(folder).rglob("*")) if Path(folder).is_dir() else ():
            squashed = path.name.lower().replace("_", "").replace(" ", "")
            if path.suffix.lower() in {".ttc", ".ttf", ".otf"} and any(
                hint in squashed for hint in _NAME_HINTS
            ):
                return path
    raise NoCjkFont(
        "no CJK font found (looked for " + ", ".join(CJK_FAMILIES) + "): install "
        "fonts-noto-cjk or fonts-wqy-microhei, e.g. by running scripts/bootstrap.sh"
    )


def _font() -> font_manager.FontProperties:
    return font_manager.FontProperties(fname=str(cjk_font()))


def render_chart(digest: kpi.Digest, *, title: str) -> bytes:
    """A 2-panel PNG: open deals per stage (with amounts) and follow-ups per person."""
    font = _font()
    figure = Figure(figsize=(10, 5.5), dpi=100)
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2)
    figure.suptitle(title, fontproperties=font, fontsize=15)

    stages = list(reversed(digest.pipeline))
    left.barh([s.stage for s in stages], [s.count for s in stages], color="#3b7dd8")
    left.set_title("商机漏斗（个数）", fontproperties=font)
    for index, stage in enumerate(stages):
        left.text(stage.count, index, f" {money(stage.amount)}", va="center", fontproperties=font)
    people = sorted(digest.team, key=lambda r: (-r.followups, -r.stage_moves, r.name))
    people = list(reversed(people[:MAX_PEOPLE]))
    right.barh([r.name for r in people], [r.followups for r in people], color="#2fa36b")
    right.set_title("每人跟进次数", fontproperties=font)
    for axes in (left, right):
        for label in axes.get_yticklabels():
            label.set_fontproperties(font)
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
