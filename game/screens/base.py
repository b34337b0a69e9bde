"""What the screens that run engine work share (not a screen itself: screens import this,
never each other)."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Static
from textual.worker import Worker, get_current_worker

from game.lifecycle import GameScreen

HEAD_KEYS = [
    Binding("left_square_bracket", "layer(-1)", "Layer -"),
    Binding("right_square_bracket", "layer(1)", "Layer +"),
    Binding("comma", "head(-1)", "Head -"),
    Binding("full_stop", "head(1)", "Head +"),
]


class ReportsWorkerFailures:
    """Mixin for a Screen that runs workers. ``Worker.StateChanged`` does not bubble: it
    reaches only the node that started the worker. This hands it to the App's one failure
    handler (``LineupApp.worker_failed``), which notifies and then calls this screen's
    ``work_failed(worker, error)`` if it has one."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        app: Any = getattr(self, "app", None)
        handler = getattr(app, "worker_failed", None)
        if handler is not None:
            handler(event)


class ToolScreen(ReportsWorkerFailures, GameScreen[None]):
    """A tool view: a title, a note, one or more tables, a footer. Engine calls run in daemon
    threads awaited by exclusive async workers (``game.background``), so a newer request
    cancels an older one and quitting never waits for a model."""

    BINDINGS: ClassVar = [Binding("escape", "leave_screen", "Back")]

    class Loaded(Message):
        def __init__(self, result: Any) -> None:
            super().__init__()
            self.result = result

    def post_loaded(self, result: Any) -> None:
        """Post a worker's result, unless a newer request has cancelled (superseded) it: a
        slow old answer must not land after a newer one."""
        if not get_current_worker().is_cancelled:
            self.post_message(self.Loaded(result))

    def work_failed(self, worker: Any, error: BaseException) -> None:
        self.query_one("#tool-note", Static).update(Text(f"Could not compute this: {error}"))

    def puzzle_block(self) -> Any:
        """The block of the puzzle this tool reads (None outside a puzzle): the tools work
        layer by layer, and its rounds say which layers make up each round."""
        puzzle = getattr(self, "puzzle", None)
        app: Any = self.app
        name = getattr(getattr(app, "engine", None), "block", None)
        return puzzle.block(name) if puzzle is not None and name else None
