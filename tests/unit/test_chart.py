"""The chart is a real PNG whose Chinese labels are real glyphs, not missing-glyph boxes."""

from __future__ import annotations

import io
import warnings
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ft2font import FT2Font
from PIL import Image

from crm_store import kpi
from handlers.manager.chart import cjk_font, render_chart

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LABELS = "商机漏斗每人跟进次数方案报价谈判审核张三钱七"
MISSING = "\U0010fffd"  # a private-use code point no font draws: the missing-glyph box


def _raster(text: str) -> np.ndarray:
    """`text` drawn alone in the CJK font, as a grey-level array."""
    figure = Figure(figsize=(1, 1), dpi=64)
    canvas = FigureCanvasAgg(figure)
    font = font_manager.FontProperties(fname=str(cjk_font()), size=40)
    figure.text(0.5, 0.5, text, fontproperties=font, ha="center", va="center")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # matplotlib warns about the missing glyph, as it should
        canvas.draw()  # type: ignore[no-untyped-call]
    rgba = np.asarray(canvas.buffer_rgba())  # type: ignore[no-untyped-call]
    grey: np.ndarray = rgba[:, :, :3].mean(axis=2)
    return grey


def test_the_font_has_every_label_glyph() -> None:
    font = FT2Font(str(cjk_font()))
    assert all(font.get_char_index(ord(ch)) != 0 for ch in LABELS)
    assert font.get_char_index(ord(MISSING)) == 0


def test_each_label_renders_unlike_the_missing_glyph_box() -> None:
    box = _raster(MISSING)
    assert (box < 128).any()  # the box itself is drawn: the comparison means something
    for ch in LABELS:
        pixels = _raster(ch)
        assert (pixels < 128).any(), ch
        assert not np.array_equal(pixels, box), f"{ch} rendered as the missing-glyph box"


def test_the_chart_is_a_valid_png() -> None:
    window = kpi.day_window(date(2026, 11, 20), ZoneInfo("Asia/Shanghai"))
    digest = kpi.Digest(
        window=window,
        now=datetime(2026, 11, 20, 10, tzinfo=UTC),
        team=(
            kpi.RepNumbers("zhangsan", "张三", followups=3, stage_moves=1),
            kpi.RepNumbers("qianqi", "钱七", followups=1),
        ),
        pipeline=(
            kpi.StageLine("方案报价", 5, Decimal("793"), -2, Decimal("-2")),
            kpi.StageLine("谈判审核", 1, Decimal("300000"), 1, Decimal("300000")),
        ),
        service=kpi.ServiceNumbers(),
        at_risk=(),
        at_risk_total=0,
        subtree=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing glyph warns: it must not happen here
        png = render_chart(digest, title="日报 11月20日（周五）")
    assert png.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(png))
    image.verify()
    assert image.size == (1000, 550)
