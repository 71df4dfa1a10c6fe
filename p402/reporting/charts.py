"""Inline SVG charts for the PDF report: spend bars, daily spend, coverage and model mix.

The SVG is written by hand rather than by a charting library, on purpose. The report needs four
simple kinds of chart; the audit bundle must be reproducible, so the same figures must give the
same bytes (matplotlib writes dates and random ids into its SVG, and is a heavy import for a
CLI); and the text must be vector text in the report's own font, "DejaVu Sans". Each function
returns one ``<svg>`` element with no ids, scripts, classes or external references, sized in
millimetres for the 178 mm body of an A4 page. Mark it safe (``markupsafe.Markup``) when placing
it in the autoescaped report template.

No float touches the money path: every length is computed as a Decimal from the Decimal amounts
and ints (one user unit is one millimetre), rounded half-up to 0.01 and printed in plain
notation, so the output never depends on float formatting. Text widths are estimated from the
advance widths of DejaVu Sans, which is what keeps labels from running into each other.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import NamedTuple

from p402.money import CENT, ROUNDING
from p402.reporting.filters import money, percent

__all__ = ["PALETTE", "bar_chart", "coverage_chart", "daily_chart", "share_chart"]

NAVY, BLUE, TEAL, AMBER = "#0f2a4a", "#3c7dc4", "#2a9d8f", "#c77700"
INK, MUTED, RULE, PANEL, AMBER_INK = "#1d2530", "#5b6472", "#d5dbe3", "#f6f8fb", "#8a4b00"
PALETTE = (NAVY, BLUE, TEAL, AMBER, "#8a93a0", "#9fc2e7", "#94cfc6", "#e8b86b")
"""Series colours, in order; a ninth series starts again from the first."""
OTHER = "#b9c2ce"
_DARK = frozenset({NAVY, BLUE, TEAL, AMBER, "#8a93a0"})  # white text reads on these
FONT = "DejaVu Sans"
NO_SPEND = "No spend in this period"
MAX_SEGMENTS = 8

_D = Decimal
_LABEL, _SMALL = _D("2.8"), _D("2.5")  # font sizes in mm: 7.9 pt and 7.1 pt
_SWATCH, _ROW = _D("2.8"), _D("5")
_GAP = _D(2)
_MAX_INTERVALS = 5
_AXIS = f'stroke="{MUTED}" stroke-width="0.35"'
_GRIDLINE = f'stroke="{RULE}" stroke-width="0.25"'
_GUIDE = f'stroke="{RULE}" stroke-width="0.3"'
_SEPARATOR = ' stroke="#ffffff" stroke-width="0.3"'
_TICK = f'stroke="{MUTED}" stroke-width="0.25"'
_MAX_LABEL_CHARS = 30
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TICK_STRIDES = (1, 2, 5, 10, 15, 31)  # 31: first of each month only
# Advance widths of DejaVu Sans for U+0020..U+007E, in 1/2048 em (from the font's hmtx table).
_ADVANCE = (
    651, 821, 942, 1716, 1303, 1946, 1597, 563, 799, 799, 1024, 1716, 651, 739, 651, 690,
    1303, 1303, 1303, 1303, 1303, 1303, 1303, 1303, 1303, 1303, 690, 690, 1716, 1716, 1716, 1087,
    2048, 1401, 1405, 1430, 1577, 1294, 1178, 1587, 1540, 604, 604, 1343, 1141, 1767, 1532, 1612,
    1235, 1612, 1423, 1300, 1251, 1499, 1401, 2025, 1403, 1251, 1403, 799, 690, 799, 1716, 1024,
    1024, 1255, 1300, 1126, 1300, 1260, 721, 1300, 1298, 569, 569, 1186, 569, 1995, 1298, 1253,
    1300, 1300, 842, 1067, 803, 1298, 1212, 1675, 1212, 1212, 1075, 1303, 690, 1303, 1716,
)  # fmt: skip
_WIDE_ADVANCE = {"\u2026": 2048, "\u2014": 2048, "\u2013": 1024, "\u00a0": 651, "\u00b7": 651}
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class _Box(NamedTuple):
    """The plotting area of a chart, in mm."""

    x: Decimal
    y: Decimal
    w: Decimal
    h: Decimal


# --- primitives --------------------------------------------------------------------------------


def _n(value: Decimal) -> str:
    """A coordinate in plain notation with at most two decimals (``12.5``, ``0``)."""
    text = format(value.quantize(CENT, rounding=ROUND_HALF_UP), "f")
    text = text.rstrip("0").rstrip(".") if "." in text else text
    return "0" if text == "-0" else text


def _q(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _esc(text: str) -> str:
    return html.escape(_NOT_XML.sub("", text), quote=True)


def _width(text: str, size: Decimal) -> Decimal:
    """The estimated advance width of *text* at font size *size*, in mm."""
    units = 0
    for char in text:
        code = ord(char)
        if 32 <= code <= 126:
            units += _ADVANCE[code - 32]
        elif char in _WIDE_ADVANCE:
            units += _WIDE_ADVANCE[char]
        else:  # generous, so that an estimate errs towards more room
            units += 2048 if unicodedata.east_asian_width(char) in "WF" else 1500
    return size * units / 2048


def _fit(text: str, room: Decimal, size: Decimal = _LABEL) -> str:
    """*text* on one line, cut with an ellipsis past 30 characters or past *room* mm."""
    text = " ".join(_NOT_XML.sub("", text).split())
    if len(text) <= _MAX_LABEL_CHARS and _width(text, size) <= room:
        return text
    cut = min(len(text), _MAX_LABEL_CHARS - 1)
    while cut > 1 and _width(text[:cut].rstrip() + "\u2026", size) > room:
        cut -= 1
    return text[:cut].rstrip() + "\u2026"


def _text(
    x: Decimal,
    y: Decimal,
    content: str,
    *,
    size: Decimal = _LABEL,
    fill: str = INK,
    anchor: str = "start",
) -> str:
    """Text whose middle (of a capital or digit) sits at height *y*."""
    baseline = y + size * _D("0.36")  # half the cap height of DejaVu Sans
    align = "" if anchor == "start" else f' text-anchor="{anchor}"'
    return (
        f'<text x="{_n(x)}" y="{_n(baseline)}" font-family="{FONT}" font-size="{_n(size)}" '
        f'fill="{fill}"{align}>{_esc(content)}</text>'
    )


def _rect(x: Decimal, y: Decimal, w: Decimal, h: Decimal, fill: str, *, extra: str = "") -> str:
    if _q(w) <= 0 or _q(h) <= 0:
        return ""
    return f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(w)}" height="{_n(h)}" fill="{fill}"{extra}/>'


def _line(x1: Decimal, y1: Decimal, x2: Decimal, y2: Decimal, style: str) -> str:
    return f'<line x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}" {style}/>'


def _svg(width: Decimal, height: Decimal, label: str, body: Iterable[str]) -> str:
    w, h = _n(width), _n(height)
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}mm" height="{h}mm" viewBox="0 0 {w} {h}" '
            f'role="img" aria-label="{_esc(label)}" font-family="{FONT}">',
            f"<title>{_esc(label)}</title>",
            *(part for part in body if part),
            "</svg>",
        ]
    )


def _empty(title: str, width: Decimal) -> str:
    height = _D(12)
    body = [
        _rect(_D(0), _D(0), width, height, PANEL, extra=f' stroke="{RULE}" stroke-width="0.3"'),
        _text(width / 2, height / 2, NO_SPEND, fill=MUTED, anchor="middle"),
    ]
    return _svg(width, height, f"{title}: {NO_SPEND.lower()}.", body)


def _note(x: Decimal, y: Decimal, content: str, anchor: str) -> str:
    """Small grey text, as on an axis."""
    return _text(x, y, content, size=_SMALL, fill=MUTED, anchor=anchor)


def _money(amount: Decimal) -> str:
    return money(amount.quantize(CENT, rounding=ROUNDING))


def _colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


# --- shared arithmetic -------------------------------------------------------------------------


def _boundaries(values: Sequence[Decimal], length: Decimal) -> list[Decimal]:
    """Where each part of a stacked length ends, so that adjacent parts meet exactly."""
    total, running, ends = sum(values, _D(0)), _D(0), []
    for value in values:
        running += value
        ends.append(_q(length * running / total))
    return ends


def _tenths(values: Sequence[Decimal]) -> list[int]:
    """Shares of the total in tenths of a percent, adding up to exactly 1000 (largest remainder)."""
    total = sum(values, _D(0))
    floors = [int((value * 1000 / total).to_integral_value(ROUND_FLOOR)) for value in values]
    remainders = [value * 1000 - floor * total for value, floor in zip(values, floors, strict=True)]
    order = sorted(range(len(values)), key=lambda i: (-remainders[i], i))
    for i in order[: 1000 - sum(floors)]:
        floors[i] += 1
    return floors


def _share(tenths: int) -> str:
    return percent(_D(tenths) / 1000)


def _nice_scale(maximum: Decimal) -> tuple[Decimal, int]:
    """The smallest 1, 2 or 5 x 10^k step (a cent at least) reaching *maximum* in <= 5 steps.

    Returns:
        The step and the number of steps: the axis runs to ``step * count >= maximum``.
    """
    exponent = max(maximum.adjusted() - 1, -2)
    while True:
        for mantissa in (1, 2, 5):
            step = _D(mantissa).scaleb(exponent)
            count = int((maximum / step).to_integral_value(ROUND_CEILING))
            if count <= _MAX_INTERVALS:
                return step, max(count, 1)
        exponent += 1


# --- bar chart ---------------------------------------------------------------------------------


def bar_chart(
    items: Sequence[tuple[str, Decimal]],
    *,
    title: str,
    highlight: str | None = None,
    width_mm: int = 178,
    bar_height_mm: int = 6,
) -> str:
    """Horizontal bars, one per item in the order given (largest first, by the caller).

    Args:
        items: labels and cent amounts. Zero and negative amounts keep their label and amount
            but draw no bar.
        title: what the chart shows; the accessible title starts with it.
        highlight: the label drawn in amber (``"Unattributed"``), if any.
        width_mm: the chart's width.
        bar_height_mm: each bar's height; rows are this plus 2.4 mm apart.

    Returns:
        One ``<svg>`` element, ``len(items) * (bar_height_mm + 2.4) - 2.4`` mm high.
    """
    width, bar = _D(width_mm), _D(bar_height_mm)
    if not items:
        return _empty(title, width)
    amounts = [_money(value) for _, value in items]
    label_room = min(
        max(_width(_fit(label, width), _LABEL) for label, _ in items), width * _D("0.38")
    )
    amount_room = max(_width(text, _LABEL) for text in amounts)
    start = _q(label_room + _GAP)
    span = width - start - amount_room - _GAP
    top = max(*(value for _, value in items), _D(0))
    pitch = bar + _D("2.4")
    body = [_line(start, _D(0), start, pitch * len(items) - _D("2.4"), _GUIDE)]
    for row, ((label, value), amount) in enumerate(zip(items, amounts, strict=True)):
        length = span * value / top if top > 0 and value > 0 else _D(0)
        colour, ink = (AMBER, AMBER_INK) if label == highlight else (BLUE, INK)
        y = pitch * row
        body += [
            _text(start - _GAP, y + bar / 2, _fit(label, label_room), fill=ink, anchor="end"),
            _rect(start, y, _q(length), bar, colour),
            _text(start + _q(length) + _D("1.5"), y + bar / 2, amount, fill=ink),
        ]
    words = ", ".join(
        f"{label} {amount}" for (label, _), amount in zip(items, amounts, strict=True)
    )
    return _svg(width, pitch * len(items) - _D("2.4"), f"{title}: {words}.", body)


# --- daily chart -------------------------------------------------------------------------------


def _day(day: date) -> str:
    return f"{_MONTHS[day.month - 1]} {day.day}"  # never strftime: %b follows the locale


def _day_ticks(days: Sequence[date], room: Decimal) -> list[int]:
    """Indexes of the days to label: round days of the month, about 14 mm apart at least."""
    most = max(int(room / 14), 1)
    stride = next((s for s in _TICK_STRIDES if -(-len(days) // s) <= most), _TICK_STRIDES[-1])
    closest = max(1, (stride * 3 + 4) // 5)
    ticks: list[int] = []
    for index, day in enumerate(days):
        if not (index == 0 or day.day == 1 or (stride < 28 and day.day % stride == 0)):
            continue
        if ticks and index - ticks[-1] < closest:
            if day.day == 1:  # the first of a month wins over a tick just before it
                ticks[-1] = index
            continue
        ticks.append(index)
    return ticks


def _flow_legend(names: Sequence[str], width: Decimal) -> tuple[list[str], Decimal]:
    """Swatches and names left to right, wrapping onto a new row; returns parts and height."""
    parts, x, y = [], _D(0), _D(0)
    for index, name in enumerate(names):
        text = _fit(name, width - _SWATCH - _GAP)
        item = _SWATCH + _D("1.5") + _width(text, _LABEL) + _D(6)
        if x > 0 and x + item > width:
            x, y = _D(0), y + _ROW
        parts += [
            _rect(x, y + _D("0.6"), _SWATCH, _SWATCH, _colour(index)),
            _text(x + _SWATCH + _D("1.5"), y + _D(2), text),
        ]
        x += item
    return parts, y + _ROW


def _axis_label(value: Decimal, step: Decimal) -> str:
    return f"${int(value):,}" if step >= 1 else _money(value)


def _grid(box: _Box, step: Decimal, count: int) -> list[str]:
    parts = []
    for k in range(count + 1):
        y = _q(box.y + box.h - box.h * k / count)
        parts.append(_line(box.x, y, box.x + box.w, y, _AXIS if k == 0 else _GRIDLINE))
        parts.append(_note(box.x - _D("1.5"), y, _axis_label(step * k, step), "end"))
    return parts


def _columns(values: Sequence[Sequence[Decimal]], box: _Box, top: Decimal) -> list[str]:
    """One stacked column per day, the first series at the bottom."""
    slot = box.w / len(values[0])
    column = _q(min(slot * _D("0.72"), _D(8)))
    bottom, parts = box.y + box.h, []
    for day in range(len(values[0])):
        x = box.x + slot * day + (slot - column) / 2
        heights = [max(series[day], _D(0)) for series in values]
        if sum(heights) <= 0:
            continue
        running, low = _D(0), _q(bottom)
        for index, height in enumerate(heights):
            running += height
            high = _q(bottom - box.h * running / top)
            parts.append(_rect(x, high, column, low - high, _colour(index)))
            low = high
    return parts


def _x_axis(days: Sequence[date], box: _Box) -> list[str]:
    slot, bottom, parts = box.w / len(days), box.y + box.h, []
    for index in _day_ticks(days, box.w):
        x = box.x + slot * index + slot / 2
        parts.append(_line(x, bottom, x, bottom + _D(1), _TICK))
        parts.append(_note(x, bottom + _D("3.6"), _day(days[index]), "middle"))
    return parts


def daily_chart(
    days: Sequence[date],
    series: Sequence[tuple[str, Sequence[Decimal]]],
    *,
    title: str,
    width_mm: int = 178,
    height_mm: int = 70,
) -> str:
    """Stacked columns of daily spend by series (provider), with a legend above.

    Args:
        days: every day of the period, in order.
        series: names and one cent amount per day each (zeros for days without spend). The
            first series is stacked at the bottom; negative amounts are drawn as zero.
        title: what the chart shows; the accessible title starts with it.
        width_mm: the chart's width.
        height_mm: the chart's height, legend and day labels included.

    Returns:
        One ``<svg>`` element; "No spend in this period" when there is nothing to draw.

    Raises:
        ValueError: a series does not have one amount per day.
    """
    width, height = _D(width_mm), _D(height_mm)
    if any(len(values) != len(days) for _, values in series):
        raise ValueError("every series needs exactly one amount per day")
    values = [values for _, values in series]
    totals = [sum((max(v[d], _D(0)) for v in values), _D(0)) for d in range(len(days))]
    if not totals or max(totals) <= 0:
        return _empty(title, width)
    step, count = _nice_scale(max(totals))
    legend, legend_height = _flow_legend([name for name, _ in series], width)
    left = _q(max(_width(_axis_label(step * k, step), _SMALL) for k in range(count + 1)) + _GAP)
    box = _Box(left, legend_height + _D(2), width - left - _D(4), height - legend_height - _D(8))
    body = [*legend, *_grid(box, step, count), *_columns(values, box, step * count)]
    body += [*_x_axis(days, box), _line(box.x, box.y + box.h, box.x + box.w, box.y + box.h, _AXIS)]
    spent = ", ".join(f"{name} {_money(sum(v, _D(0)))}" for name, v in series)
    words = f"{_money(sum(totals, _D(0)))} over {len(days)} days, {days[0]} to {days[-1]}; {spent}"
    return _svg(width, height, f"{title}: {words}.", body)


# --- 100 % bars: coverage and model mix --------------------------------------------------------


class _Part(NamedTuple):
    name: str
    amount: Decimal
    colour: str


def _stacked(
    parts: Sequence[_Part], width: Decimal, height: Decimal
) -> tuple[list[str], list[int]]:
    """A 100 % bar of the positive parts, shares printed inside the segments wide enough."""
    drawn = [max(part.amount, _D(0)) for part in parts]
    tenths, ends = _tenths(drawn), _boundaries(drawn, width)
    body, start = [], _D(0)
    for part, share, end in zip(parts, tenths, ends, strict=True):
        body.append(_rect(start, _D(0), end - start, height, part.colour, extra=_SEPARATOR))
        label, ink = _share(share), "#ffffff" if part.colour in _DARK else INK
        if _width(label, _SMALL) + _D(3) <= end - start:  # else the legend alone says it
            body.append(
                _text((start + end) / 2, height / 2, label, size=_SMALL, fill=ink, anchor="middle")
            )
        start = end
    return body, tenths


def _table_legend(
    parts: Sequence[_Part], tenths: Sequence[int], width: Decimal, top: Decimal
) -> list[str]:
    """Swatch, name, amount and share per part, in two columns filled top to bottom."""
    rows = -(-len(parts) // 2)
    column = (width - _D(6)) / 2
    amounts = [_money(part.amount) for part in parts]
    amount_room = max(_width(text, _LABEL) for text in amounts)
    share_room = _width("100.0 %", _LABEL)
    name_room = column - _SWATCH - _D("1.5") - amount_room - share_room - _D(6)
    body = []
    for index, (part, amount, share) in enumerate(zip(parts, amounts, tenths, strict=True)):
        x = (column + _D(6)) * (index // rows)
        y = top + _ROW * (index % rows)
        body += [
            _rect(x, y + _D("0.6"), _SWATCH, _SWATCH, part.colour),
            _text(x + _SWATCH + _D("1.5"), y + _D(2), _fit(part.name, name_room)),
            _text(x + column - share_room - _D(3), y + _D(2), amount, anchor="end"),
            _text(x + column, y + _D(2), _share(share), fill=MUTED, anchor="end"),
        ]
    return body


def _hundred_percent(parts: Sequence[_Part], title: str, width: Decimal) -> str:
    if sum(max(part.amount, _D(0)) for part in parts) <= 0:
        return _empty(title, width)
    bar = _D(8)
    body, tenths = _stacked(parts, width, bar)
    legend_top = bar + _D(3)
    body += _table_legend(parts, tenths, width, legend_top)
    height = legend_top + _ROW * -(-len(parts) // 2) - _D("1.4")
    words = ", ".join(
        f"{p.name} {_money(p.amount)} ({_share(t)})" for p, t in zip(parts, tenths, strict=True)
    )
    return _svg(width, height, f"{title}: {words}.", body)


def coverage_chart(
    attributed: Decimal, unattributed: Decimal, *, title: str, width_mm: int = 178
) -> str:
    """One 100 % bar: attributed spend in navy, unattributed in amber, with amounts and shares.

    Args:
        attributed: cent amount with an owner on record.
        unattributed: cent amount without one.
        title: what the chart shows; the accessible title starts with it.
        width_mm: the chart's width.

    Returns:
        One ``<svg>`` element 14.6 mm high, or "No spend in this period" for a zero total.
    """
    parts = [_Part("Attributed", attributed, NAVY), _Part("Unattributed", unattributed, AMBER)]
    return _hundred_percent(parts, title, _D(width_mm))


def _fold(
    items: Sequence[tuple[str, Decimal]], limit: int = MAX_SEGMENTS
) -> list[tuple[str, Decimal]]:
    """At most *limit* items: the largest ``limit - 1`` in their given order, then "Other".

    "Other" is the exact sum of the items folded into it; ties keep the earlier item.
    """
    if len(items) <= limit:
        return list(items)
    order = sorted(range(len(items)), key=lambda i: (-items[i][1], i))
    kept, folded = sorted(order[: limit - 1]), order[limit - 1 :]
    return [items[i] for i in kept] + [("Other", sum((items[i][1] for i in folded), _D(0)))]


def share_chart(items: Sequence[tuple[str, Decimal]], *, title: str, width_mm: int = 178) -> str:
    """Model mix: one 100 % stacked bar and a legend of each item's amount and share.

    Args:
        items: labels and cent amounts, in the order to draw them. Past eight items, the seven
            largest stay and the rest fold into "Other" (see :func:`_fold`). Negative amounts are
            drawn as zero.
        title: what the chart shows; the accessible title starts with it.
        width_mm: the chart's width.

    Returns:
        One ``<svg>`` element, ``11 + 5 * ceil(segments / 2) - 1.4`` mm high, or "No spend in
        this period" for a zero total.
    """
    parts = [_Part(name, amount, _colour(i)) for i, (name, amount) in enumerate(_fold(items))]
    if len(items) > MAX_SEGMENTS:
        parts[-1] = parts[-1]._replace(colour=OTHER)
    return _hundred_percent(parts, title, _D(width_mm))
