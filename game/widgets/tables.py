"""Filling the tools' tables: attention, logit lens, swap. Every cell and column label is a
``rich.text.Text`` (a ``str`` cell would be read as markup), and words have their control
characters made visible. Numbers sit in cells, so every view reads in monochrome."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from game.format import UNK, visible


def short(token: str, width: int = 7) -> str:
    word = visible(str(token).replace("\n", "⏎")).strip() or "␣"
    return word if len(word) <= width else word[: width - 1] + "…"


def percent(value: float) -> str:
    """Attention as a whole percent; below 5% a dot, so the pattern stands out."""
    return "·" if value < 0.05 else f"{round(100 * value)}"


def has_unknown(tokens: list[str]) -> bool:
    return any(UNK in str(t) for t in tokens)


def fill_attention(table: DataTable, view: Any) -> None:
    table.clear(columns=True)
    table.add_column(Text("asker \\ answers"), key="asker")
    for k, token in enumerate(view.tokens):
        table.add_column(Text(f"{k + 1}{short(token, 6)}".rjust(4)), key=str(k))
    for q, row in enumerate(view.pattern):
        best = max(range(len(row)), key=lambda k: row[k]) if row else -1
        cells = []
        for k, value in enumerate(row):
            text = percent(value) if k <= q else ""
            cells.append(Text(f"[{text}]" if k == best else text))
        table.add_row(Text(f"{q + 1} {short(view.tokens[q])}"), *cells)


def fill_lens(table: DataTable, report: Any) -> None:
    """Rows are people, columns the stages (the start, after each layer); a cell is the
    top guess and its probability in percent."""
    table.clear(columns=True)
    table.add_column(Text("person"), key="person")
    for entry in report.layers:
        label = "start" if entry.layer == 0 else f"after {entry.layer - 1}"
        table.add_column(Text(label), key=f"s{entry.layer}")
    for pos, token in enumerate(report.tokens):
        cells = []
        for entry in report.layers:
            guess, prob = entry.positions[pos].top[0]
            cells.append(Text(f"{short(guess, 8)} {round(100 * prob)}"))
        table.add_row(Text(f"{pos + 1} {short(token)}"), *cells)


def fill_swap(roles_table: DataTable, heads_table: DataTable, view: Any) -> None:
    """The swap grids: a person swapped in at the start of each layer, and each head's output
    swapped in, as the share of the clean-minus-corrupted gap that comes back."""
    roles_table.clear(columns=True)
    roles_table.add_column(Text("layer"), key="layer")
    for name in view.roles:
        roles_table.add_column(Text(visible(name)), key=f"role-{len(roles_table.columns)}")
    for layer, row in enumerate(view.by_role):
        roles_table.add_row(Text(f"layer {layer}"), *[Text(f"{v:+.2f}") for v in row])
    heads_table.clear(columns=True)
    heads_table.add_column(Text("layer"), key="layer")
    for h in range(len(view.heads[0]) if view.heads else 0):
        heads_table.add_column(Text(f".{h}"), key=str(h))
    for layer, row in enumerate(view.heads):
        heads_table.add_row(Text(f"{layer}"), *[Text(f"{v:+.2f}") for v in row])
