"""The essay's tools: who answers (attention), what do you think now (logit lens), swap a
person (activation patching). Numbers sit in cells, so every view reads in monochrome."""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static
from textual.worker import get_current_worker

from game.screens.base import ReportsWorkerFailures

HEAD_KEYS = [
    Binding("left_square_bracket", "layer(-1)", "Layer -"),
    Binding("right_square_bracket", "layer(1)", "Layer +"),
    Binding("comma", "head(-1)", "Head -"),
    Binding("full_stop", "head(1)", "Head +"),
]


def short(token: str, width: int = 7) -> str:
    word = token.replace("\n", "⏎").strip() or "␣"
    return word if len(word) <= width else word[: width - 1] + "…"


def percent(value: float) -> str:
    """Attention as a whole percent; below 5% a dot, so the pattern stands out."""
    return "·" if value < 0.05 else f"{round(100 * value)}"


def fill_attention(table: DataTable, view: Any) -> None:
    table.clear(columns=True)
    table.add_column("asker \\ answers", key="asker")
    for k, token in enumerate(view.tokens):
        table.add_column(f"{k + 1}{short(token, 6)}".rjust(4), key=str(k))
    for q, row in enumerate(view.pattern):
        best = max(range(len(row)), key=lambda k: row[k]) if row else -1
        cells = []
        for k, value in enumerate(row):
            text = percent(value) if k <= q else ""
            cells.append(f"[{text}]" if k == best else text)
        table.add_row(f"{q + 1} {short(view.tokens[q])}", *cells)


class ToolScreen(ReportsWorkerFailures, Screen[None]):
    """A tool view: a title, a note, one or more tables, a footer; work in a thread worker."""

    BINDINGS: ClassVar = [Binding("escape", "app.pop_screen", "Back")]

    class Loaded(Message):
        def __init__(self, result: Any) -> None:
            super().__init__()
            self.result = result

    def post_loaded(self, result: Any) -> None:
        """Post a thread worker's result, unless a newer request has cancelled (superseded) it:
        a slow old answer must not land after a newer one."""
        if not get_current_worker().is_cancelled:
            self.post_message(self.Loaded(result))

    def work_failed(self, worker: Any, error: BaseException) -> None:
        self.query_one("#tool-note", Static).update(f"Could not compute this: {error}")


class AttentionScreen(ToolScreen):
    """Who answers: how much each person (row) listens to each person behind them (column) in
    one head, in percent; the top cell of each row is in [brackets]."""

    BINDINGS: ClassVar = [*ToolScreen.BINDINGS, *HEAD_KEYS]

    def __init__(self, text: str, *, title: str = "", layer: int = 0, head: int = 0,
                 puzzle: Any = None) -> None:
        super().__init__()
        self.text, self.title_text = text, title
        self.puzzle = puzzle  # read on the model this puzzle is played on
        self.layer_no, self.head_no = layer, head
        self.n_layers: int | None = None
        self.n_heads: int | None = None

    def compose(self) -> ComposeResult:
        yield Static(f"[b]Who answers?[/b]  {self.title_text}", id="tool-title")
        yield Static("asking the model...", id="tool-note")
        yield DataTable(id="attention", cursor_type="cell")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="attention",
          description="Reading attention")
    def load(self) -> None:
        app: Any = self.app
        self.post_loaded(app.engine.attention(self.text, self.layer_no, self.head_no,
                                              puzzle=self.puzzle))

    @on(ToolScreen.Loaded)
    def show(self, event: ToolScreen.Loaded) -> None:
        view = event.result
        self.layer_no, self.head_no = view.layer, view.head
        self.n_layers, self.n_heads = view.n_layers, view.n_heads
        self.query_one("#tool-note", Static).update(
            f"head [b]{view.layer}.{view.head}[/b] (round {view.layer}, question {view.head})  "
            f"· rows ask, columns answer, % of attention · [ ] layer  , . head")
        fill_attention(self.query_one(DataTable), view)

    def action_layer(self, step: int) -> None:
        if self.n_layers:
            self.layer_no = (self.layer_no + step) % self.n_layers
            self.load()

    def action_head(self, step: int) -> None:
        if self.n_heads:
            self.head_no = (self.head_no + step) % self.n_heads
            self.load()


def fill_lens(table: DataTable, report: Any) -> None:
    """Rows are people, columns the stages (before round 1, after each round); a cell is the
    top guess and its probability in percent."""
    table.clear(columns=True)
    table.add_column("person", key="person")
    for entry in report.layers:
        label = "start" if entry.layer == 0 else f"after {entry.layer - 1}"
        table.add_column(label, key=f"s{entry.layer}")
    for pos, token in enumerate(report.tokens):
        cells = []
        for entry in report.layers:
            guess, prob = entry.positions[pos].top[0]
            cells.append(f"{short(guess, 8)} {round(100 * prob)}")
        table.add_row(f"{pos + 1} {short(token)}", *cells)


class LensScreen(ToolScreen):
    """What do you think right now? Each person's top guess after each round (logit lens)."""

    def __init__(self, text: str, *, title: str = "", puzzle: Any = None) -> None:
        super().__init__()
        self.text, self.title_text = text, title
        self.puzzle = puzzle  # read on the model this puzzle is played on

    def compose(self) -> ComposeResult:
        yield Static(f"[b]What do you think right now?[/b]  {self.title_text}", id="tool-title")
        yield Static("asking every person after every round...", id="tool-note")
        yield DataTable(id="lens", cursor_type="cell")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="lens",
          description="Logit lens")
    def load(self) -> None:
        app: Any = self.app
        self.post_loaded(app.engine.lens(self.text, puzzle=self.puzzle))

    @on(ToolScreen.Loaded)
    def show(self, event: ToolScreen.Loaded) -> None:
        self.query_one("#tool-note", Static).update(
            "each person's best guess for the next word, and how sure (%), after each round")
        fill_lens(self.query_one(DataTable), event.result)


class SwapScreen(ToolScreen):
    """Swap a person: put a person from the clean sentence into the corrupted one at the start
    of a round (or one head's output), and see how much of the answer comes back."""

    BINDINGS: ClassVar = [Binding("escape", "cancel", "Back")]

    def __init__(self, puzzle: Any) -> None:
        super().__init__()
        self.puzzle = puzzle

    def compose(self) -> ComposeResult:
        yield Static(f"[b]Swap a person[/b]  {self.puzzle.title}", id="tool-title")
        yield Static("swapping people between the sentences... (esc stops)", id="tool-note")
        yield Static("[b]Person swapped in, at the start of each round[/b] (1.00 = the whole "
                     "answer comes back)", classes="table-title")
        yield DataTable(id="swap-roles", cursor_type="cell")
        yield Static("[b]One question's answer swapped in (head layer.index)[/b]",
                     classes="table-title")
        yield DataTable(id="swap-heads", cursor_type="cell")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="swap",
          description="Swapping people")
    def load(self) -> None:
        app: Any = self.app
        worker = get_current_worker()
        view = app.engine.swap(self.puzzle, cancelled=lambda: worker.is_cancelled)
        self.post_loaded(view)

    def action_cancel(self) -> None:
        self.workers.cancel_group(self, "swap")
        self.app.pop_screen()

    @on(ToolScreen.Loaded)
    def show(self, event: ToolScreen.Loaded) -> None:
        view = event.result
        self.query_one("#tool-note", Static).update(
            f"metric: clean {view.metric_clean:.2f}, corrupted {view.metric_corrupted:.2f}; "
            "cells: share of the gap restored")
        roles = self.query_one("#swap-roles", DataTable)
        roles.clear(columns=True)
        roles.add_column("round", key="round")
        for name in view.roles:
            roles.add_column(name, key=name)
        for layer, row in enumerate(view.by_role):
            roles.add_row(f"layer {layer}", *[f"{v:+.2f}" for v in row])
        heads = self.query_one("#swap-heads", DataTable)
        heads.clear(columns=True)
        heads.add_column("layer", key="layer")
        for h in range(len(view.heads[0]) if view.heads else 0):
            heads.add_column(f".{h}", key=str(h))
        for layer, row in enumerate(view.heads):
            heads.add_row(f"{layer}", *[f"{v:+.2f}" for v in row])
