"""The essay's tools: who answers (attention), what do you think now (logit lens), swap a
person (activation patching)."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Static
from textual.worker import get_current_worker

from game.background import in_daemon_thread
from game.format import UNK_NOTE, visible
from game.screens.base import HEAD_KEYS, ToolScreen
from game.widgets.tables import fill_attention, fill_lens, fill_swap, has_unknown


def title_text(what: str, rest: str = "") -> Text:
    """A tool title: bold name, then user text (a puzzle title) as plain text."""
    out = Text()
    out.append(what, style="bold")
    if rest:
        out.append(f"  {visible(rest)}")
    return out


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
        yield Static(title_text("Who answers?", self.title_text), id="tool-title")
        yield Static("asking the model...", id="tool-note")
        yield DataTable(id="attention", cursor_type="cell")
        yield Footer()

    def set_up(self) -> None:
        self.load()

    @work(exclusive=True, exit_on_error=False, group="attention", description="Reading attention")
    async def load(self) -> None:
        app: Any = self.app
        view = await in_daemon_thread(app.engine.attention, self.text, self.layer_no,
                                      self.head_no, puzzle=self.puzzle)
        self.post_loaded(view)

    @on(ToolScreen.Loaded)
    def show(self, event: ToolScreen.Loaded) -> None:
        view = event.result
        self.layer_no, self.head_no = view.layer, view.head
        self.n_layers, self.n_heads = view.n_layers, view.n_heads
        note = Text()
        note.append("head ")
        note.append(f"{view.layer}.{view.head}", style="bold")
        note.append(f" (round {view.layer}, question {view.head}) · rows ask, columns answer, "
                    "% of attention · [ ] layer  , . head")
        if has_unknown(view.tokens):
            note.append(f"\n{UNK_NOTE}")
        self.query_one("#tool-note", Static).update(note)
        fill_attention(self.query_one(DataTable), view)

    def action_layer(self, step: int) -> None:
        if self.n_layers:
            self.layer_no = (self.layer_no + step) % self.n_layers
            self.load()

    def action_head(self, step: int) -> None:
        if self.n_heads:
            self.head_no = (self.head_no + step) % self.n_heads
            self.load()


class LensScreen(ToolScreen):
    """What do you think right now? Each person's top guess after each round (logit lens)."""

    def __init__(self, text: str, *, title: str = "", puzzle: Any = None) -> None:
        super().__init__()
        self.text, self.title_text = text, title
        self.puzzle = puzzle  # read on the model this puzzle is played on

    def compose(self) -> ComposeResult:
        yield Static(title_text("What do you think right now?", self.title_text),
                     id="tool-title")
        yield Static("asking every person after every round...", id="tool-note")
        yield DataTable(id="lens", cursor_type="cell")
        yield Footer()

    def set_up(self) -> None:
        self.load()

    @work(exclusive=True, exit_on_error=False, group="lens", description="Logit lens")
    async def load(self) -> None:
        app: Any = self.app
        self.post_loaded(await in_daemon_thread(app.engine.lens, self.text, puzzle=self.puzzle))

    @on(ToolScreen.Loaded)
    def show(self, event: ToolScreen.Loaded) -> None:
        note = ("each person's best guess for the next word, and how sure (%), after each "
                "round")
        if has_unknown(event.result.tokens):
            note += f"\n{UNK_NOTE}"
        self.query_one("#tool-note", Static).update(Text(note))
        fill_lens(self.query_one(DataTable), event.result)


class SwapScreen(ToolScreen):
    """Swap a person: put a person from the clean sentence into the corrupted one at the start
    of a round (or one head's output), and see how much of the answer comes back, in the units
    of ``lineup patch``: the share of the clean-minus-corrupted gap."""

    BINDINGS: ClassVar = [Binding("escape", "cancel", "Back")]

    def __init__(self, puzzle: Any) -> None:
        super().__init__()
        self.puzzle = puzzle

    def compose(self) -> ComposeResult:
        yield Static(title_text("Swap a person", self.puzzle.title), id="tool-title")
        yield Static("swapping people between the sentences... (esc stops)", id="tool-note")
        yield Static(Text("Person swapped in from the clean sentence, at the start of each "
                          "round", style="bold"), classes="table-title")
        yield DataTable(id="swap-roles", cursor_type="cell")
        yield Static(Text("One question's answer swapped in (head layer.index)", style="bold"),
                     classes="table-title")
        yield DataTable(id="swap-heads", cursor_type="cell")
        yield Footer()

    def set_up(self) -> None:
        self.load()

    @work(exclusive=True, exit_on_error=False, group="swap", description="Swapping people")
    async def load(self) -> None:
        app: Any = self.app
        worker = get_current_worker()
        view = await in_daemon_thread(app.engine.swap, self.puzzle,
                                      cancelled=lambda: worker.is_cancelled)
        self.post_loaded(view)

    def action_cancel(self) -> None:
        self.workers.cancel_group(self, "swap")
        self.dismiss(None)

    @on(ToolScreen.Loaded)
    def show(self, event: ToolScreen.Loaded) -> None:
        view = event.result
        note = Text()
        if view.clean_text:
            note.append("clean      ", style="bold")
            note.append(visible(view.clean_text))
            note.append("\n")
        if view.corrupted_text:
            note.append("corrupted  ", style="bold")
            note.append(visible(view.corrupted_text))
            note.append("\n")
        note.append(f"metric: clean {view.metric_clean:.2f}, corrupted "
                    f"{view.metric_corrupted:.2f}. Each cell: the share of the gap between them "
                    "that comes back (+1.00 = all of it, as in `lineup patch`)")
        self.query_one("#tool-note", Static).update(note)
        fill_swap(self.query_one("#swap-roles", DataTable),
                  self.query_one("#swap-heads", DataTable), view)
