"""Grids as colour heatmaps: rounds down, questions (or people) across, one coloured cell
per value, a legend under it. ``lineup patch`` prints them, ``--svg`` saves the same picture,
and the game's swap screens show them. Values are fractions of the gap: 0 white-ish (no
effect), +1 deep blue (all of the answer comes back), -1 deep red (it goes the other way)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.color import Color
from rich.console import Group
from rich.style import Style
from rich.table import Table
from rich.text import Text

LEGEND_STEPS = (-1.0, -0.5, -0.2, 0.0, 0.2, 0.5, 1.0)


def colour(value: float) -> Color:
    """A diverging scale: red below 0, grey-white at 0, blue above; clipped to [-1, 1]."""
    v = max(-1.0, min(1.0, float(value)))
    base = (235, 235, 235)
    end = (33, 102, 172) if v >= 0 else (178, 24, 43)
    t = abs(v) ** 0.8
    return Color.from_rgb(*(round(b + (e - b) * t) for b, e in zip(base, end, strict=True)))


def cell(value: float, *, numbers: bool, width: int) -> Text:
    """One coloured cell; with ``numbers`` it also shows the value (two decimals)."""
    bg = colour(value)
    ink = "white" if abs(value) > 0.55 else "black"
    body = f"{value:+.2f}"[: width] if numbers else ""
    out = Text(body.center(width), style=Style(bgcolor=bg, color=ink))
    out.append(" ")  # a gap between cells, so neighbours of one colour stay apart
    return out


def heatmap(values: Sequence[Sequence[float]], *, columns: Sequence[str], title: str = "",
            row_label: str = "round", column_label: str = "question",
            numbers: bool = False, rows: Sequence[int] | None = None) -> Table:
    """A table of coloured cells: ``values[row][col]``, rows numbered from 0 (or by
    ``rows``: the layer each row is)."""
    width = max(5 if numbers else 3, *(len(c) for c in columns))
    table = Table(title=Text(title) if title else None, title_justify="left", box=None,
                  padding=(0, 0), show_edge=False, pad_edge=False)
    table.add_column(Text(f"{row_label} \\ {column_label}"), justify="right", no_wrap=True)
    for name in columns:
        table.add_column(Text(str(name)), justify="left", width=width + 1, no_wrap=True)
    names = list(rows) if rows else list(range(len(values)))
    for r, row in zip(names, values, strict=True):
        table.add_row(Text(f"{r}  "), *(cell(v, numbers=numbers, width=width) for v in row))
    return table


def legend(what: str = "share of the gap brought back") -> Text:
    """The colour scale, with its meaning."""
    out = Text(f"{what}: ")
    for step in LEGEND_STEPS:
        out.append(f"{step:+.1f}".center(6), style=Style(
            bgcolor=colour(step), color="white" if abs(step) > 0.55 else "black"))
    return out


def picture(values: Sequence[Sequence[float]], *, columns: Sequence[str], title: str,
            reading: str, legend_text: str, column_label: str = "question",
            numbers: bool = False, rows: Sequence[int] | None = None,
            row_label: str = "round") -> Group:
    """A heatmap with its legend and a one-line reading: what ``lineup patch`` prints (the
    game's screens label rows ``layer``: a puzzle's rounds are ranges of layers)."""
    return Group(heatmap(values, columns=columns, title=title, column_label=column_label,
                         numbers=numbers, rows=rows, row_label=row_label), legend(legend_text),
                 Text(reading))
