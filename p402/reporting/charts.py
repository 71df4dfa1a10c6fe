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
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

from p402.money import CENT, ROUNDING
from p402.reporting.filters import money, percent

__all__ = ["PALETTE", "bar_chart", "coverage_chart", "daily_chart", "share_chart"]

NAVY, BLUE, TEAL, AMBER = "#0f2a4a", "#3c7dc4", "#2a9d8f", "#c77700"
INK, MUTED, RULE, PANEL = "#1d2530", "#5b6472", "#d5dbe3", "#f6f8fb"
AMBER_INK, OTHER, WHITE = "#8a4b00", "#b9c2ce", "#ffffff"
PALETTE = (NAVY, BLUE, TEAL, AMBER, "#8a93a0", "#9fc2e7", "#94cfc6", "#e8b86b")
"""Series colours in order; a ninth series starts again from the first."""
FONT = "DejaVu Sans"
NO_SPEND = "No spend in this period"
MAX_SEGMENTS = 8
"""The most segments :func:`share_chart` draws; the smallest items beyond fold into "Other"."""

_D = Decimal
_LABEL, _SMALL = _D("2.8"), _D("2.5")  # font sizes in mm: 7.9 pt and 7.1 pt
_SWATCH, _ROW, _GAP, _PAD = _D("2.8"), _D(5), _D(2), _D("1.5")
_DARK = frozenset(PALETTE[:5])  # white text reads on these; dark ink on the rest
_AXIS = f'stroke="{MUTED}" stroke-width="0.35"'
_GRIDLINE = f'stroke="{RULE}" stroke-width="0.25"'
_TICK = f'stroke="{MUTED}" stroke-width="0.25"'
_FRAME = f' stroke="{RULE}" stroke-width="0.3"'
_SEPARATOR = f' stroke="{WHITE}" stroke-width="0.3"'
_MAX_INTERVALS, _MAX_LABEL_CHARS = 5, 30
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TICK_STRIDES = (1, 2, 5, 10, 15, 31)  # in days; 31 labels only the first of each month
# Advance widths of DejaVu Sans for U+0020..U+007E, in 1/2048 em (from the font's hmtx table).
_ADVANCE = (
    651, 821, 942, 1716, 1303, 1946, 1597, 563, 799, 799, 1024, 1716, 651, 739, 651, 690,
    1303, 1303, 1303, 1303, 1303, 1303, 1303, 1303, 1303, 1303, 690, 690, 1716, 1716, 1716, 1087,
    2048, 1401, 1405, 1430, 1577, 1294, 1178, 1587, 1540, 604, 604, 1343, 1141, 1767, 1532, 1612,
    1235, 1612, 1423, 1300, 1251, 1499, 1401, 2025, 1403, 1251, 1403, 799, 690, 799, 1716, 1024,
    1024, 1255, 1300, 1126, 1300, 1260, 721, 1300, 1298, 569, 569, 1186, 569, 1995, 1298, 1253,
    1300, 1300, 842, 1067, 803, 1298, 1212, 1675, 1212, 1212, 1075, 1303, 690, 1303, 1716,
)  # fmt: skip
_OTHER_ADVANCE = {"\u2026": 2048, "\u2014": 2048, "\u2013": 1024, "\u00a0": 651, "\u00b7": 651}
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class _Box(NamedTuple):
    """A plotting area, in mm."""

    x: Decimal
    y: Decimal
    w: Decimal
    h: Decimal


class _Part(NamedTuple):
    """One segment of a 100 % bar."""

    name: str
    amount: Decimal
    colour: str


def _q(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _n(value: Decimal) -> str:
    """A coordinate in plain notation with at most two decimals (``12.5``, ``0``)."""
    text = format(_q(value), "f")
    text = text.rstrip("0").rstrip(".") if "." in text else text
    return "0" if text == "-0" else text


def _esc(text: str) -> str:
    return html.escape(_NOT_XML.sub("", text), quote=True)


def _money(amount: Decimal) -> str:
    return money(amount.quantize(CENT, rounding=ROUNDING))


def _colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _width(text: str, size: Decimal) -> Decimal:
    """The estimated advance width of *text* at font size *size*, in mm."""
    units = 0
    for char in text:
        if " " <= char <= "~":
            units += _ADVANCE[ord(char) - 32]
        elif char in _OTHER_ADVANCE:
            units += _OTHER_ADVANCE[char]
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
    """Text whose middle (of a capital or a digit) sits at height *y*."""
    baseline = y + size * _D("0.36")  # half the cap height of DejaVu Sans
    align = "" if anchor == "start" else f' text-anchor="{anchor}"'
    return (
        f'<text x="{_n(x)}" y="{_n(baseline)}" font-family="{FONT}" font-size="{_n(size)}" '
        f'fill="{fill}"{align}>{_esc(content)}</text>'
    )


def _note(x: Decimal, y: Decimal, content: str, anchor: str) -> str:
    """Small grey text, as on an axis."""
    return _text(x, y, content, size=_SMALL, fill=MUTED, anchor=anchor)


def _rect(x: Decimal, y: Decimal, w: Decimal, h: Decimal, fill: str, *, extra: str = "") -> str:
    if _q(w) <= 0 or _q(h) <= 0:
        return ""
    return f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(w)}" height="{_n(h)}" fill="{fill}"{extra}/>'


def _line(x1: Decimal, y1: Decimal, x2: Decimal, y2: Decimal, style: str) -> str:
    return f'<line x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}" {style}/>'


def _svg(width: Decimal, height: Decimal, label: str, body: Iterable[str]) -> str:
    w, h, said = _n(width), _n(height), _esc(" ".join(label.split()))
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}mm" height="{h}mm" viewBox="0 0 {w} {h}" '
        f'role="img" aria-label="{said}" font-family="{FONT}">'
    )
    return "\n".join([head, f"<title>{said}</title>", *(part for part in body if part), "</svg>"])


def _empty(title: str, width: Decimal) -> str:
    height = _D(12)
    edge = _D("0.15")  # half the stroke, which would otherwise fall outside the viewBox
    panel = _rect(edge, edge, width - 2 * edge, height - 2 * edge, PANEL, extra=_FRAME)
    body = [panel, _text(width / 2, height / 2, NO_SPEND, fill=MUTED, anchor="middle")]
    return _svg(width, height, f"{title}: {NO_SPEND.lower()}.", body)


def _tenths(values: Sequence[Decimal]) -> list[int]:
    """Shares of the total in tenths of a percent, adding up to exactly 1000 (largest remainder)."""
    total = sum(values, _D(0))
    split = [divmod(value * 1000, total) for value in values]  # exact: both are whole
    shares = [int(whole) for whole, _ in split]
    order = sorted(range(len(values)), key=lambda i: (-split[i][1], i))
    for i in order[: 1000 - sum(shares)]:
        shares[i] += 1
    return shares


def _share(tenths: int) -> str:
    return percent(_D(tenths) / 1000)


def _nice_scale(maximum: Decimal) -> tuple[Decimal, int]:
    """The smallest step of 1, 2 or 5 x 10^k (a cent at least) that reaches *maximum* > 0 in at
    most five steps, and the number of steps: the axis runs to ``step * count >= maximum``."""
    exponent = max(maximum.adjusted() - 1, -2)
    while True:
        for mantissa in (1, 2, 5):
            step = _D(mantissa).scaleb(exponent)
            whole, rest = divmod(maximum, step)
            if (count := int(whole) + (rest > 0)) <= _MAX_INTERVALS:
                return step, max(count, 1)
        exponent += 1


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
        items: labels and cent amounts. A zero or negative amount keeps its label and amount but
            draws no bar. Labels past 30 characters are cut with an ellipsis.
        title: what the chart shows; the accessible title starts with it.
        highlight: the label drawn in amber (``"Unattributed"``), if any.
        width_mm: the chart's width.
        bar_height_mm: each bar's height; bars are 2.4 mm apart.

    Returns:
        One ``<svg>``, ``len(items) * (bar_height_mm + 2.4) - 2.4`` mm high.
    """
    width, bar, spacing = _D(width_mm), _D(bar_height_mm), _D("2.4")
    if not items:
        return _empty(title, width)
    amounts = [_money(value) for _, value in items]
    labels = min(max(_width(_fit(label, width), _LABEL) for label, _ in items), width * _D("0.38"))
    start = _q(labels + _GAP)
    span = width - start - max(_width(text, _LABEL) for text in amounts) - _GAP
    top, height = max(*(value for _, value in items), _D(0)), (bar + spacing) * len(items) - spacing
    body = [_line(start, _D(0), start, height, _GRIDLINE)]
    for row, ((label, value), amount) in enumerate(zip(items, amounts, strict=True)):
        length = _q(span * value / top) if top > 0 and value > 0 else _D(0)
        colour, ink = (AMBER, AMBER_INK) if label == highlight else (BLUE, INK)
        y, middle = (bar + spacing) * row, (bar + spacing) * row + bar / 2
        body += [
            _text(start - _GAP, middle, _fit(label, labels), fill=ink, anchor="end"),
            _rect(start, y, length, bar, colour),
            _text(start + length + _PAD, middle, amount, fill=ink),
        ]
    said = (f"{label} {amount}" for (label, _), amount in zip(items, amounts, strict=True))
    return _svg(width, height, f"{title}: {', '.join(said)}.", body)


def _day(day: date) -> str:
    return f"{_MONTHS[day.month - 1]} {day.day}"  # not strftime("%b"), which follows the locale


def _day_ticks(days: Sequence[date], room: Decimal) -> list[int]:
    """Indexes of the days to label: round days of the month, about 14 mm apart at least."""
    most = max(int(room / 14), 1)
    stride = next((s for s in _TICK_STRIDES if -(-len(days) // s) <= most), _TICK_STRIDES[-1])
    closest, ticks = max(1, (stride * 3 + 4) // 5), list[int]()
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
    """Swatches and names left to right, wrapping onto new rows; the parts and their height."""
    parts, x, y = [], _D(0), _D(0)
    for index, name in enumerate(names):
        text = _fit(name, width - _SWATCH - _PAD)
        item = _SWATCH + _PAD + _width(text, _LABEL) + _D(6)
        if x > 0 and x + item > width:
            x, y = _D(0), y + _ROW
        parts += [
            _rect(x, y + _D("0.6"), _SWATCH, _SWATCH, _colour(index)),
            _text(x + _SWATCH + _PAD, y + _D(2), text),
        ]
        x += item
    return parts, y + _ROW


def _axis_label(value: Decimal, step: Decimal) -> str:
    return f"${int(value):,}" if step >= 1 else _money(value)


def _y_axis(box: _Box, step: Decimal, count: int) -> list[str]:
    parts = []
    for k in range(count + 1):
        y = _q(box.y + box.h - box.h * k / count)
        if k:  # the axis itself is drawn over the columns
            parts.append(_line(box.x, y, box.x + box.w, y, _GRIDLINE))
        parts.append(_note(box.x - _PAD, y, _axis_label(step * k, step), "end"))
    return parts


def _x_axis(days: Sequence[date], box: _Box) -> list[str]:
    slot, bottom, parts = box.w / len(days), box.y + box.h, []
    for index in _day_ticks(days, box.w):
        x = box.x + slot * index + slot / 2
        parts.append(_line(x, bottom, x, bottom + _D(1), _TICK))
        parts.append(_note(x, bottom + _D("3.6"), _day(days[index]), "middle"))
    return parts


def _columns(values: Sequence[Sequence[Decimal]], box: _Box, top: Decimal) -> list[str]:
    """One stacked column per day, the first series at the bottom; negatives count as zero."""
    slot, bottom, parts = box.w / len(values[0]), box.y + box.h, []
    column = _q(min(slot * _D("0.72"), _D(8)))
    for day in range(len(values[0])):
        x, running, low = box.x + slot * day + (slot - column) / 2, _D(0), _q(bottom)
        for index, series in enumerate(values):
            running += max(series[day], _D(0))
            high = _q(bottom - box.h * running / top)  # from the running sum: segments meet
            parts.append(_rect(x, high, column, low - high, _colour(index)))
            low = high
    return parts


def daily_chart(
    days: Sequence[date],
    series: Sequence[tuple[str, Sequence[Decimal]]],
    *,
    title: str,
    width_mm: int = 178,
    height_mm: int = 70,
) -> str:
    """Stacked columns of daily spend by series (provider), under a legend of the series.

    Args:
        days: every day of the period, in order.
        series: names, each with one cent amount per day (zero for a day without spend). The
            first series is stacked at the bottom; a negative amount is drawn as zero.
        title: what the chart shows; the accessible title starts with it.
        width_mm: the chart's width.
        height_mm: the chart's height, legend and day labels included.

    Returns:
        One ``<svg>``, or a small "No spend in this period" panel when nothing is above zero.

    Raises:
        ValueError: a series does not have exactly one amount per day.
    """
    width, height = _D(width_mm), _D(height_mm)
    if any(len(values) != len(days) for _, values in series):
        raise ValueError("every series needs exactly one amount per day")
    values = [values for _, values in series]
    totals = [sum((max(v[day], _D(0)) for v in values), _D(0)) for day in range(len(days))]
    if not totals or max(totals) <= 0:
        return _empty(title, width)
    step, count = _nice_scale(max(totals))
    legend, legend_height = _flow_legend([name for name, _ in series], width)
    left = _q(max(_width(_axis_label(step * k, step), _SMALL) for k in range(count + 1)) + _GAP)
    box = _Box(left, legend_height + _GAP, width - left - _D(4), height - legend_height - _D(8))
    body = [*legend, *_y_axis(box, step, count), *_columns(values, box, step * count)]
    body += [*_x_axis(days, box), _line(box.x, box.y + box.h, box.x + box.w, box.y + box.h, _AXIS)]
    spent = [sum(v, _D(0)) for v in values]
    each = ", ".join(
        f"{name} {_money(amount)}" for (name, _), amount in zip(series, spent, strict=True)
    )
    words = f"{_money(sum(spent, _D(0)))} over {len(days)} days, {days[0]} to {days[-1]}; {each}"
    return _svg(width, height, f"{title}: {words}.", body)


def _stacked(parts: list[_Part], tenths: list[int], width: Decimal, height: Decimal) -> list[str]:
    """A 100 % bar of the parts (negatives as zero), each share inside its segment if it fits."""
    body, total, running, start = [], sum(max(part.amount, _D(0)) for part in parts), _D(0), _D(0)
    for part, share in zip(parts, tenths, strict=True):
        running += max(part.amount, _D(0))
        end = _q(width * running / total)  # from the running sum, so segments meet exactly
        body.append(_rect(start, _D(0), end - start, height, part.colour, extra=_SEPARATOR))
        label, ink = _share(share), WHITE if part.colour in _DARK else INK
        if _width(label, _SMALL) + _D(3) <= end - start:
            body.append(
                _text((start + end) / 2, height / 2, label, size=_SMALL, fill=ink, anchor="middle")
            )
        start = end
    return body


def _table_legend(
    parts: list[_Part], tenths: list[int], width: Decimal, top: Decimal
) -> tuple[list[str], int]:
    """Swatch, name, amount and share of each part, and the number of rows: two columns filled
    top to bottom, or one if two would leave a name less than 28 mm."""
    amounts = [_money(part.amount) for part in parts]
    share_room = _width("100.0 %", _LABEL)
    fixed = _SWATCH + _PAD + max(_width(a, _LABEL) for a in amounts) + share_room + _D(6)
    columns = 2 if len(parts) > 1 and (width - _D(6)) / 2 - fixed >= 28 else 1
    rows, column = -(-len(parts) // columns), (width - _D(6) * (columns - 1)) / columns
    body = []
    for index, (part, amount, share) in enumerate(zip(parts, amounts, tenths, strict=True)):
        x, y = (column + _D(6)) * (index // rows), top + _ROW * (index % rows) + _GAP
        body += [
            _rect(x, y - _D("1.4"), _SWATCH, _SWATCH, part.colour),
            _text(x + _SWATCH + _PAD, y, _fit(part.name, column - fixed)),
            _text(x + column - share_room - _D(3), y, amount, anchor="end"),
            _text(x + column, y, _share(share), fill=MUTED, anchor="end"),
        ]
    return body, rows


def _hundred_percent(parts: list[_Part], title: str, width: Decimal) -> str:
    if sum(max(part.amount, _D(0)) for part in parts) <= 0:
        return _empty(title, width)
    tenths, bar = _tenths([max(part.amount, _D(0)) for part in parts]), _D(8)
    legend, rows = _table_legend(parts, tenths, width, bar + _D(3))
    body, height = (
        _stacked(parts, tenths, width, bar) + legend,
        bar + _D(3) + _ROW * rows - _D("1.2"),
    )
    pairs = zip(parts, tenths, strict=True)
    said = (f"{part.name} {_money(part.amount)} ({_share(share)})" for part, share in pairs)
    return _svg(width, height, f"{title}: {', '.join(said)}.", body)


def coverage_chart(
    attributed: Decimal, unattributed: Decimal, *, title: str, width_mm: int = 178
) -> str:
    """One 100 % bar, attributed spend in navy and unattributed in amber, amounts and shares below.

    Args:
        attributed: cent amount with an owner on record.
        unattributed: cent amount without one.
        title: what the chart shows; the accessible title starts with it.
        width_mm: the chart's width.

    Returns:
        One ``<svg>`` 14.8 mm high (19.8 mm when too narrow, under about 150 mm, for the legend's
        two columns), or a small "No spend in this period" panel for a zero total.
    """
    parts = [_Part("Attributed", attributed, NAVY), _Part("Unattributed", unattributed, AMBER)]
    return _hundred_percent(parts, title, _D(width_mm))


def _fold(items: Sequence[tuple[str, Decimal]]) -> list[tuple[str, Decimal]]:
    """At most eight items: the seven largest in their given order (the earlier wins a tie), then
    "Other", the exact sum of the rest."""
    if len(items) <= MAX_SEGMENTS:
        return list(items)
    order = sorted(range(len(items)), key=lambda i: (-items[i][1], i))
    kept, rest = sorted(order[: MAX_SEGMENTS - 1]), order[MAX_SEGMENTS - 1 :]
    return [items[i] for i in kept] + [("Other", sum((items[i][1] for i in rest), _D(0)))]


def share_chart(items: Sequence[tuple[str, Decimal]], *, title: str, width_mm: int = 178) -> str:
    """Model mix: one 100 % stacked bar, and a legend of each item's amount and share.

    Args:
        items: labels and cent amounts, drawn in the order given. Past eight items, the seven
            largest stay and the rest fold into a grey "Other". A negative amount counts as zero.
        title: what the chart shows; the accessible title starts with it.
        width_mm: the chart's width.

    Returns:
        One ``<svg>`` ``9.8 + 5 * rows`` mm high, the legend taking ``ceil(segments / 2)`` rows
        (``segments`` when narrow), or a small "No spend in this period" panel for a zero total.
    """
    parts = [_Part(name, amount, _colour(i)) for i, (name, amount) in enumerate(_fold(items))]
    if len(items) > MAX_SEGMENTS:
        parts[-1] = parts[-1]._replace(colour=OTHER)
    return _hundred_percent(parts, title, _D(width_mm))
