"""The report's SVG charts: well-formed, escaped, exact in their figures, stable byte for byte,
on a nice axis, and printable by WeasyPrint."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p402.reporting.charts import (
    _fold,
    _nice_scale,
    bar_chart,
    coverage_chart,
    daily_chart,
    share_chart,
)
from p402.reporting.filters import money
from p402.reporting.pdf import render_pdf

NS = "{http://www.w3.org/2000/svg}"
GOLDEN = Path(__file__).parent / "data" / "charts"
NASTY = 'A & B <x> "q"'
HUGE = Decimal("12345678.90")
NO_SPEND = "No spend in this period"
COORDINATES = re.compile(r'\b(?:x|y|x1|y1|x2|y2|width|height|font-size|stroke-width)="([^"]*)"')

BARS = [
    ("Engineering", Decimal("18234.55")),
    ("Data Science", Decimal("9120.10")),
    ("Unattributed", Decimal("4410.00")),
    ("Marketing", Decimal("512.30")),
]
DAYS = [date(2026, 10, 1) + timedelta(days=i) for i in range(31)]
SERIES = [
    ("OpenAI", [Decimal(300 + 7 * (i % 5)) + Decimal("0.25") for i in range(31)]),
    ("Anthropic", [Decimal(120 + 11 * (i % 3)) for i in range(31)]),
    ("Mistral", [Decimal(0) if i % 7 == 5 else Decimal("14.10") for i in range(31)]),
]
MODELS = [
    ("gpt-4o", Decimal("14210.40")),
    ("claude-3-5-sonnet", Decimal("8120.11")),
    ("o1-mini", Decimal("960.37")),
]

CHARTS: dict[str, Callable[[], str]] = {
    "bar": lambda: bar_chart(BARS, title="Spend by department", highlight="Unattributed"),
    "daily": lambda: daily_chart(DAYS, SERIES, title="Daily spend by provider"),
    "coverage": lambda: coverage_chart(
        Decimal("31956.94"), Decimal("4410.00"), title="Attribution coverage"
    ),
    "share": lambda: share_chart(MODELS, title="Model mix"),
    "empty": lambda: bar_chart([], title="Spend by department"),
}


def xml(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 -- our own output, built in the test itself


def parse(svg: str) -> ET.Element:
    """The chart's root, after the checks every chart must pass."""
    root = xml(svg)
    assert root.tag == f"{NS}svg" and root.get("role") == "img"
    width, height = root.get("width", ""), root.get("height", "")
    assert width.endswith("mm") and height.endswith("mm")
    assert root.get("viewBox") == f"0 0 {width[:-2]} {height[:-2]}"
    title = root.find(f"{NS}title")
    assert title is not None and title.text and title.text == root.get("aria-label")
    for element in root.iter():
        assert not {"class", "style", "id", "href", "{http://www.w3.org/1999/xlink}href"} & set(
            element.attrib
        )
        assert element.tag.removeprefix(NS) in {"svg", "title", "rect", "line", "text"}
        if element.tag == f"{NS}text":
            assert element.get("font-family") == "DejaVu Sans" and element.get("fill")
        if element.tag == f"{NS}rect":
            assert Decimal(element.get("width", "")) > 0 and Decimal(element.get("height", "")) > 0
    for number in COORDINATES.findall(svg):
        assert re.fullmatch(r"-?\d+(\.\d{1,2})?(mm)?", number), number
    return root


def texts(root: ET.Element) -> list[str]:
    return [element.text or "" for element in root.iter(f"{NS}text")]


def title(root: ET.Element) -> str:
    return root.get("aria-label", "")


def fills(root: ET.Element) -> list[str]:
    return [element.get("fill", "") for element in root.iter(f"{NS}rect")]


@pytest.mark.parametrize("name", sorted(CHARTS))
def test_chart_matches_golden_file(name: str) -> None:
    svg = CHARTS[name]()
    parse(svg)
    golden = GOLDEN / f"{name}.svg"
    if os.environ.get("P402_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(svg + "\n", encoding="utf-8")
    assert svg + "\n" == golden.read_text(encoding="utf-8"), (
        "run with P402_UPDATE_GOLDEN=1 and review the diff"
    )


@pytest.mark.parametrize("name", sorted(CHARTS))
def test_same_input_same_bytes(name: str) -> None:
    assert CHARTS[name]() == CHARTS[name]()


def test_bar_chart_labels_amounts_and_highlight() -> None:
    root = parse(CHARTS["bar"]())
    shown = texts(root)
    for label, amount in BARS:
        assert label in shown and money(amount) in shown
    assert fills(root).count("#c77700") == 1 and fills(root).count("#3c7dc4") == 3
    assert title(root).startswith("Spend by department: Engineering $18,234.55, Data Science")


def test_daily_chart_axes_and_legend() -> None:
    root = parse(CHARTS["daily"]())
    shown = texts(root)
    assert shown[:3] == ["OpenAI", "Anthropic", "Mistral"]
    assert {"Oct 1", "Oct 5", "Oct 10", "Oct 15", "Oct 20", "Oct 25", "Oct 30"} <= set(shown)
    assert {"$0", "$100", "$200", "$300", "$400", "$500"} <= set(shown)
    total = sum((sum(values, Decimal(0)) for _, values in SERIES), Decimal(0))
    assert f"{money(total)} over 31 days, 2026-10-01 to 2026-10-31" in title(root)
    assert set(fills(root)) == {"#0f2a4a", "#3c7dc4", "#2a9d8f"}
    assert (
        fills(root).count("#2a9d8f") == 1 + 31 - 4
    )  # the swatch; Mistral's zero days draw nothing


def test_coverage_chart_shares_and_amounts() -> None:
    root = parse(CHARTS["coverage"]())
    shown = texts(root)
    assert {"Attributed", "Unattributed", "$31,956.94", "$4,410.00", "87.9 %", "12.1 %"} <= set(
        shown
    )
    assert fills(root)[:2] == ["#0f2a4a", "#c77700"]


def test_share_chart_legend() -> None:
    root = parse(CHARTS["share"]())
    shown = texts(root)
    assert {
        "gpt-4o",
        "$14,210.40",
        "61.0 %",
        "claude-3-5-sonnet",
        "$8,120.11",
        "34.9 %",
        "4.1 %",
    } <= set(shown)


def test_text_is_escaped() -> None:
    labelled = [
        bar_chart([(NASTY, Decimal("5.00"))], title=NASTY, highlight=NASTY),
        daily_chart(DAYS, [(NASTY, [Decimal("1.00")] * len(DAYS))], title=NASTY),
        share_chart([(NASTY, Decimal("3.00"))], title=NASTY),
    ]
    for svg in [*labelled, coverage_chart(Decimal("1.00"), Decimal("2.00"), title=NASTY)]:
        assert "<x>" not in svg and title(parse(svg)).startswith(f"{NASTY}: ")
    for svg in labelled:
        assert NASTY in texts(parse(svg))


def test_control_characters_are_dropped() -> None:
    root = parse(bar_chart([("bad\x00\x1b label\nhere", Decimal("1.00"))], title="t\x07"))
    assert "bad label here" in texts(root)


@pytest.mark.parametrize(
    "svg",
    [
        bar_chart([], title="t"),
        share_chart([], title="t"),
        share_chart([("a", Decimal(0)), ("b", Decimal(0))], title="t"),
        coverage_chart(Decimal(0), Decimal(0), title="t"),
        daily_chart([], [], title="t"),
        daily_chart(DAYS, [], title="t"),
        daily_chart(
            DAYS, [("OpenAI", [Decimal(0)] * 31), ("Anthropic", [Decimal(0)] * 31)], title="t"
        ),
    ],
)
def test_nothing_to_draw_says_so(svg: str) -> None:
    root = parse(svg)
    assert texts(root) == [NO_SPEND] and title(root) == "t: no spend in this period."


def test_bar_chart_zero_and_negative_keep_label_and_amount() -> None:
    root = parse(bar_chart([("Zero", Decimal(0)), ("Credit", Decimal("-12.50"))], title="t"))
    assert texts(root) == ["Zero", "$0.00", "Credit", "-$12.50"] and fills(root) == []
    root = parse(bar_chart([("Big", Decimal("10.00")), ("Credit", Decimal("-12.50"))], title="t"))
    assert "-$12.50" in texts(root) and len(fills(root)) == 1


def test_negative_amounts_draw_as_zero_in_stacked_charts() -> None:
    root = parse(share_chart([("a", Decimal("10.00")), ("refund", Decimal("-4.00"))], title="t"))
    assert {"$10.00", "-$4.00", "100.0 %", "0.0 %"} <= set(texts(root))
    root = parse(coverage_chart(Decimal("-1.00"), Decimal("3.00"), title="t"))
    assert "-$1.00" in texts(root)
    parse(daily_chart(DAYS[:2], [("a", [Decimal("-5.00"), Decimal("2.00")])], title="t"))


def test_one_item_and_one_day() -> None:
    assert "$7.00" in texts(parse(bar_chart([("Only", Decimal("7.00"))], title="t")))
    assert "100.0 %" in texts(parse(share_chart([("Only", Decimal("7.00"))], title="t")))
    root = parse(daily_chart([date(2026, 10, 3)], [("OpenAI", [Decimal("7.00")])], title="t"))
    assert "Oct 3" in texts(root) and "$7.00 over 1 days" in title(root)


def test_long_labels_are_cut_with_an_ellipsis() -> None:
    label = "Customer Support automation pipeline for EMEA and APAC"
    root = parse(bar_chart([(label, Decimal("1.00"))], title="t"))
    shown = texts(root)[0]
    assert shown.endswith("\u2026") and len(shown) <= 30 and label.startswith(shown[:-1])
    assert label in title(root)  # the accessible title keeps it whole
    legend = texts(parse(share_chart([(label, Decimal("1.00")), ("b", HUGE)], title="t")))
    (name,) = [text for text in legend if text.startswith("Customer")]  # cut shorter: less room
    assert name.endswith("\u2026") and len(name) < len(shown)


def test_forty_items_fold_into_other_with_the_exact_sum() -> None:
    items = [(f"model-{i:02d}", Decimal((i * 7919) % 10007) + Decimal(i) / 100) for i in range(40)]
    by_size = sorted(items, key=lambda item: item[1])
    other = sum((amount for _, amount in by_size[:33]), Decimal(0))
    folded = _fold(items)
    assert len(folded) == 8 and folded[-1] == ("Other", other)
    assert [item for item in items if item in by_size[33:]] == folded[:7]  # the given order
    root = parse(share_chart(items, title="Model mix"))
    shown = texts(root)
    assert "Other" in shown and money(other) in shown and fills(root).count("#b9c2ce") == 2
    assert sum(Decimal(text[:-2]) for text in shown[-3 * 8 :][2::3]) == 100


def test_huge_amounts() -> None:
    assert "$12,345,678.90" in texts(
        parse(bar_chart([("Big", HUGE), ("Small", Decimal("0.01"))], title="t"))
    )
    assert "$12,345,678.90" in texts(parse(coverage_chart(HUGE, Decimal("0.01"), title="t")))
    assert "$12,345,678.90" in texts(parse(share_chart([("Big", HUGE)], title="t")))
    root = parse(daily_chart(DAYS[:3], [("Big", [HUGE, Decimal(0), HUGE])], title="t"))
    assert {"$0", "$5,000,000", "$10,000,000", "$15,000,000"} <= set(texts(root))
    assert "$24,691,357.80 over 3 days" in title(root)


def test_daily_chart_needs_one_amount_per_day() -> None:
    with pytest.raises(ValueError, match="one amount per day"):
        daily_chart(DAYS, [("OpenAI", [Decimal(1)] * 30)], title="t")


def test_quarter_ticks_are_round_days_and_month_starts() -> None:
    days = [date(2026, 7, 1) + timedelta(days=i) for i in range(92)]
    root = parse(daily_chart(days, [("a", [Decimal(1)] * 92)], title="t"))
    ticks = [text for text in texts(root) if text[:3] in {"Jul", "Aug", "Sep"}]
    assert ticks == [
        "Jul 1",
        "Jul 10",
        "Jul 20",
        "Aug 1",
        "Aug 10",
        "Aug 20",
        "Sep 1",
        "Sep 10",
        "Sep 20",
        "Sep 30",
    ]


def dollars(text: str) -> Decimal:
    return Decimal(text.removeprefix("$").replace(",", ""))


cents = st.integers(min_value=0, max_value=10**11).map(lambda c: Decimal(c).scaleb(-2))


@given(
    st.integers(1, 40).flatmap(
        lambda days: st.lists(st.lists(cents, min_size=days, max_size=days), min_size=1, max_size=4)
    )
)
def test_axis_is_nice_and_reaches_the_tallest_day(values: list[list[Decimal]]) -> None:
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(len(values[0]))]
    tallest = max(sum(day, Decimal(0)) for day in zip(*values, strict=True))
    root = parse(daily_chart(days, [(f"s{i}", v) for i, v in enumerate(values)], title="t"))
    if tallest == 0:
        assert texts(root) == [NO_SPEND]
        return
    ticks = [dollars(t.text or "") for t in root.iter(f"{NS}text") if t.get("text-anchor") == "end"]
    step = ticks[1] - ticks[0]
    assert ticks[0] == 0 and ticks[-1] >= tallest and 2 <= len(ticks) <= 6
    assert len(ticks) >= 4 or step == Decimal("0.01")  # 3 to 5 intervals, unless cents cap it
    assert all(tick % step == 0 and tick == step * k for k, tick in enumerate(ticks))
    assert step.normalize().as_tuple().digits in {(1,), (2,), (5,)} and step >= Decimal("0.01")


@given(cents.filter(lambda c: c > 0))
def test_nice_scale_is_the_smallest_that_fits(maximum: Decimal) -> None:
    step, count = _nice_scale(maximum)
    assert step * count >= maximum > step * (count - 1) and 1 <= count <= 5
    smaller = {Decimal(1): Decimal("0.5"), Decimal(2): Decimal(1), Decimal(5): Decimal(2)}
    finer = smaller[step.scaleb(-step.adjusted()).normalize()].scaleb(step.adjusted())
    assert finer < Decimal("0.01") or maximum > finer * 5


@given(st.lists(cents, min_size=1, max_size=12).filter(lambda v: sum(v) > 0))
def test_shares_add_up_to_a_hundred(amounts: list[Decimal]) -> None:
    root = parse(share_chart([(f"m{i}", a) for i, a in enumerate(amounts)], title="t"))
    legend = texts(root)[-3 * min(len(amounts), 8) :]  # name, amount, share per segment
    assert sum(Decimal(text[:-2]) for text in legend[2::3]) == 100
    assert sum(dollars(text) for text in legend[1::3]) == sum(amounts, Decimal(0))


def test_weasyprint_renders_the_charts(tmp_path: Path) -> None:
    """All four charts in one page: WeasyPrint prints them as vector text, and poppler draws them."""
    from pypdf import PdfReader

    body = "".join(f"<h3>{name}</h3>{CHARTS[name]()}" for name in sorted(CHARTS))
    page = "@page { size: A4; margin: 22mm 16mm 20mm 16mm } body { margin: 0 }"
    html = f'<!DOCTYPE html><html><head><meta charset="utf-8"><style>{page}</style></head><body>{body}</body></html>'
    # The project's one WeasyPrint adapter: HTML(string=html).write_pdf() (v70 has no write_png).
    pdf = render_pdf(html)
    assert pdf.startswith(b"%PDF")
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "$18,234.55" in text and "Oct 15" in text and "Unattributed" in text  # vector text
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        return
    (tmp_path / "charts.pdf").write_bytes(pdf)
    command = [pdftoppm, "-png", "-r", "72", str(tmp_path / "charts.pdf"), str(tmp_path / "page")]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    assert all(png.stat().st_size > 0 for png in tmp_path.glob("page*.png"))
    assert list(tmp_path.glob("page*.png"))
