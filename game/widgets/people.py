"""The prompt drawn as a line of people, with the placed questions as arrows under it."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from game.format import visible
from game.views import LineView


@dataclass(frozen=True)
class Arrow:
    """One question to draw: from ``asker`` (position) back to ``responder`` (position)."""

    asker: int
    responder: int | None
    label: str
    given: bool = False
    selected: bool = False
    confirmed: bool = False


class PeopleLine(Widget):
    """Each person is a box with their word, and their role name under it; the person whose
    guess the puzzle scores wears a double box and a ``?`` mark. Arrows go from the asker back
    to the responder, one lane per question (``=`` lanes are given questions)."""

    DEFAULT_CSS = """
    PeopleLine { height: auto; padding: 0 1; }
    """

    line: reactive[LineView | None] = reactive(None, layout=True)
    arrows: reactive[tuple[Arrow, ...]] = reactive((), layout=True)

    def render(self) -> Text:
        line = self.line
        if line is None:
            return Text("(the line is being drawn...)")
        width = max(20, (self.size.width or 78) - 2)
        boxes = []
        for pos, token in enumerate(line.tokens):
            word = visible(token).strip() or "␣"
            word = word if len(word) <= 12 else word[:11] + "…"
            role = visible(line.label(pos))
            inner = max(len(word), len(role), 2)
            boxes.append((pos, word, role, inner + 2))
        rows: list[list[tuple[int, str, str, int]]] = [[]]
        used = 0
        for box in boxes:
            if rows[-1] and used + box[3] > width:
                rows.append([])
                used = 0
            rows[-1].append(box)
            used += box[3]
        out = Text()
        placed: set[int] = set()
        for row in rows:
            centre: dict[int, int] = {}
            top, mid, bot = Text(), Text(), Text()
            x = 0
            for pos, word, role, w in row:
                target = pos == line.at
                tl, tr, bl, br, h, v = ("╔", "╗", "╚", "╝", "═", "║") if target else \
                    ("┌", "┐", "└", "┘", "─", "│")
                inner = w - 2
                style = "bold" if role else ""
                top.append(tl + h * inner + tr)
                mid.append(v)
                mid.append(word.center(inner), style=style)
                mid.append(v)
                label = (role + ("?" if target else "")) if role or target else ""
                label = label[:inner]
                left = (inner - len(label)) // 2
                bot.append(bl + h * left)
                bot.append(label, style="bold")
                bot.append(h * (inner - left - len(label)) + br)
                centre[pos] = x + w // 2
                x += w
            out.append_text(top)
            out.append("\n")
            out.append_text(mid)
            out.append("\n")
            out.append_text(bot)
            out.append("\n")
            for k, arrow in enumerate(self.arrows):
                if k in placed or arrow.asker not in centre:
                    continue
                if arrow.responder is not None and arrow.responder not in centre:
                    continue
                placed.add(k)
                out.append_text(self._lane(arrow, centre, x, width))
                out.append("\n")
        for k, arrow in enumerate(self.arrows):  # questions whose ends sit on different rows
            if k not in placed:
                mark = "▶ " if arrow.selected else "  "
                out.append(f"{mark}{visible(arrow.label)}\n",
                           style="bold" if arrow.selected else "")
        out.rstrip()
        return out

    @staticmethod
    def _lane(arrow: Arrow, centre: dict[int, int], width: int, room: int) -> Text:
        a = centre[arrow.asker]
        cells = [" "] * (width + 1)
        dash = "═" if arrow.given else "─"
        if arrow.responder is None or arrow.responder == arrow.asker:
            cells[a] = "⟲"
            end = a
        else:
            r = centre[arrow.responder]
            lo, hi = min(a, r), max(a, r)
            for i in range(lo, hi + 1):
                cells[i] = dash
            cells[r] = "◀" if r < a else "▶"
            cells[a] = "┘"
            end = hi
        lane = "".join(cells[: end + 1])
        label = f" {visible(arrow.label)}"
        space = room - len(lane)
        if len(label) > space:
            label = label[: max(0, space - 1)] + "…" if space > 2 else ""
        mark = "▶" if arrow.selected else " "
        text = Text(mark)
        style = "bold reverse" if arrow.selected else ("bold" if arrow.confirmed else "")
        text.append(lane[1:] if len(lane) > 1 else lane, style=style)
        text.append(label, style="bold" if arrow.selected else "dim" if arrow.given else "")
        return text
