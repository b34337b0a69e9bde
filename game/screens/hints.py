"""Hints, one at a time, in order: each shown in rot13 first, decoded on a second press."""

from __future__ import annotations

import codecs
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Static

from game.format import visible_block
from game.lifecycle import GameModal


class HintScreen(GameModal[None]):
    BINDINGS: ClassVar = [
        Binding("h,enter", "next", "Next / decode"),
        Binding("r", "solution", "Reveal solution"),
        Binding("escape", "dismiss(None)", "Close"),
    ]

    def __init__(self, puzzle: Any, state: dict[str, Any], block: Any) -> None:
        super().__init__()
        self.puzzle = puzzle
        self.state = state  # shared with the puzzle screen: {"shown": n, "decoded": bool}
        self.block = block
        self.hints = list(puzzle.text_for(block).hints)  # this model's own, where it has them
        self.solution_shown = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="hints"):
            yield Static(Text("Hints", style="bold"), classes="dialog-title")
            yield Static(id="hint-body")
            yield Static(id="hint-keys", classes="dialog-keys")

    def set_up(self) -> None:
        app: Any = self.app
        if app.pack.hints and self.state["shown"] == 0 and self.hints:
            self.action_next()
            return
        self.render_hints()

    def render_hints(self) -> None:
        app: Any = self.app
        body = Text()
        parts: list[Text] = []
        if not app.pack.hints:  # no hints, but the solution may still be revealed
            parts.append(Text("Hints are switched off for this pack."))
        for k in range(self.state["shown"] if app.pack.hints else 0):
            text = str(self.hints[k])
            last = k == self.state["shown"] - 1
            if last and not self.state["decoded"]:
                parts.append(Text(f"{k + 1}. (rot13) {visible_block(text)}"))
            else:
                parts.append(Text(f"{k + 1}. {visible_block(codecs.encode(text, 'rot13'))}"))
        if self.solution_shown:
            solution = Text()
            solution.append("Reference solution", style="bold")
            for q in self.block.solution:
                solution.append(f"\n  [{q.round}] {q.asker}: {q.card}"
                                + (f" -> {q.responder}" if q.responder else ""))
            parts.append(solution)
        if not parts:
            parts.append(Text("No hints here."))
        body = Text("\n\n").join(parts)
        self.query_one("#hint-body", Static).update(body)
        keys = []
        if not app.pack.hints:
            pass
        elif self.state["shown"] and not self.state["decoded"]:
            keys.append("h decode")
        elif self.state["shown"] < len(self.hints):
            keys.append("h next hint")
        if app.pack.solutions and not self.solution_shown:
            keys.append("r reveal the solution")
        keys.append("esc close")
        left = len(self.hints) - self.state["shown"]
        count = f"   ({left} hint{'s' if left != 1 else ''} left)" if app.pack.hints else ""
        self.query_one("#hint-keys", Static).update(Text(f"{' · '.join(keys)}{count}"))

    def action_next(self) -> None:
        app: Any = self.app
        if not app.pack.hints:
            return
        if self.state["shown"] and not self.state["decoded"]:
            self.state["decoded"] = True
        elif self.state["shown"] < len(self.hints):
            self.state["shown"] += 1
            self.state["decoded"] = False
        self.render_hints()

    def action_solution(self) -> None:
        app: Any = self.app
        if not app.pack.solutions:
            self.notify("Your teacher has switched the solution off.", severity="warning")
            return
        self.solution_shown = True
        self.render_hints()
