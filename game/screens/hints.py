"""Hints, one at a time, in order: each shown in rot13 first, decoded on a second press."""

from __future__ import annotations

import codecs
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static


class HintScreen(ModalScreen[None]):
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
        self.solution_shown = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="hints"):
            yield Static("[b]Hints[/b]", classes="dialog-title")
            yield Static(id="hint-body")
            yield Static(id="hint-keys", classes="dialog-keys")

    def on_mount(self) -> None:
        app: Any = self.app
        if app.pack.hints and self.state["shown"] == 0 and self.puzzle.hints:
            self.action_next()
            return
        self.render_hints()

    def render_hints(self) -> None:
        app: Any = self.app
        lines = []
        for k in range(self.state["shown"] if app.pack.hints else 0):
            text = self.puzzle.hints[k]
            last = k == self.state["shown"] - 1
            if last and not self.state["decoded"]:
                lines.append(f"{k + 1}. (rot13) {text}")
            else:
                lines.append(f"{k + 1}. {codecs.encode(text, 'rot13')}")
        if self.solution_shown:
            lines.append("\n[b]Reference solution[/b]")
            lines += [f"  [{q.round}] {q.asker}: {q.card}"
                      + (f" -> {q.responder}" if q.responder else "") for q in self.block.solution]
        if not app.pack.hints:  # no hints, but the solution may still be revealed
            lines = ["Hints are switched off for this pack.", *lines]
        self.query_one("#hint-body", Static).update("\n\n".join(lines) or "No hints here.")
        keys = []
        if not app.pack.hints:
            pass
        elif self.state["shown"] and not self.state["decoded"]:
            keys.append("h decode")
        elif self.state["shown"] < len(self.puzzle.hints):
            keys.append("h next hint")
        if app.pack.solutions and not self.solution_shown:
            keys.append("r reveal the solution")
        keys.append("esc close")
        left = len(self.puzzle.hints) - self.state["shown"]
        count = f"   ({left} hint{'s' if left != 1 else ''} left)" if app.pack.hints else ""
        self.query_one("#hint-keys", Static).update(f"{' · '.join(keys)}{count}")

    def action_next(self) -> None:
        app: Any = self.app
        if not app.pack.hints:
            return
        if self.state["shown"] and not self.state["decoded"]:
            self.state["decoded"] = True
        elif self.state["shown"] < len(self.puzzle.hints):
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
