"""The essay's tools: who answers (attention), what do you think now (logit lens), swap a
person (activation patching)."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, OptionList, ProgressBar, Static
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from game.background import in_daemon_thread
from game.format import UNK_NOTE, visible
from game.screens.base import HEAD_KEYS, ToolScreen
from game.views import round_of_layer, rounds_legend
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

    BINDINGS: ClassVar = [*ToolScreen.BINDINGS, *HEAD_KEYS,
                          Binding("f", "find", "Find", show=False)]

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
        ranking = OptionList(id="ranking")
        ranking.display = False
        yield ranking
        yield Footer()

    def set_up(self) -> None:
        self.load()

    def action_find(self) -> None:
        """Rank every head by how much the selected row (asker) listens to the selected
        column (responder), against an even spread; enter on a head jumps to it."""
        table = self.query_one("#attention", DataTable)
        if not table.row_count:
            return
        asker = table.cursor_coordinate.row
        responder = table.cursor_coordinate.column - 1  # column 0 names the askers
        self.find(min(asker, table.row_count - 1), responder)

    @work(exclusive=True, exit_on_error=False, group="find", description="Ranking heads")
    async def find(self, asker: int, responder: int) -> None:
        app: Any = self.app
        if not 0 <= responder <= asker:
            self.query_one("#tool-note", Static).update(Text(
                "pick a cell: its row asks, its column answers (on or left of the diagonal: "
                "a person only hears the people behind them), then f"))
            return
        ranked = await in_daemon_thread(app.engine.listeners, self.text, asker, responder,
                                        puzzle=self.puzzle)
        self.show_ranking(ranked, asker, responder)

    def show_ranking(self, ranked: list[Any], asker: int, responder: int) -> None:
        ranking = self.query_one("#ranking", OptionList)
        ranking.clear_options()
        ranking.add_options([
            Option(Text(f"{r.layer}.{r.head}  listens {round(100 * r.attention)}%  "
                        f"({r.lift:.1f}x an even spread)"), id=f"{r.layer}.{r.head}")
            for r in ranked[:30]])
        ranking.highlighted = 0
        ranking.display = True
        ranking.border_title = (f"every head, by how much person {asker + 1} listens to "
                                f"person {responder + 1}")
        ranking.focus()

    @on(OptionList.OptionSelected, "#ranking")
    def jump(self, event: OptionList.OptionSelected) -> None:
        layer, head = (int(x) for x in str(event.option.id).split("."))
        self.layer_no, self.head_no = layer, head
        event.option_list.display = False
        self.query_one("#attention", DataTable).focus()
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
        where = round_of_layer(self.puzzle_block(), view.layer)
        note.append(f" (layer {view.layer}{', ' + where if where else ''}, question "
                    f"{view.head}) · rows ask, columns answer, % of attention · [ ] layer  "
                    ", . head")
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
    """What do you think right now? Each person's top guess after each layer (logit lens)."""

    def __init__(self, text: str, *, title: str = "", puzzle: Any = None) -> None:
        super().__init__()
        self.text, self.title_text = text, title
        self.puzzle = puzzle  # read on the model this puzzle is played on

    def compose(self) -> ComposeResult:
        yield Static(title_text("What do you think right now?", self.title_text),
                     id="tool-title")
        yield Static("asking every person after every layer...", id="tool-note")
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
                "layer")
        if legend := rounds_legend(self.puzzle_block()):
            note += f"\n{legend}"
        if has_unknown(event.result.tokens):
            note += f"\n{UNK_NOTE}"
        self.query_one("#tool-note", Static).update(Text(note))
        fill_lens(self.query_one(DataTable), event.result)


class SwapScreen(ToolScreen):
    """Swap a person: put a person from the clean sentence into the corrupted one at the start
    of a layer (or one head's output), and see how much of the answer comes back, in the units
    of ``lineup patch``: the share of the clean-minus-corrupted gap."""

    BINDINGS: ClassVar = [Binding("escape", "cancel", "Back")]

    def __init__(self, puzzle: Any) -> None:
        super().__init__()
        self.puzzle = puzzle

    def compose(self) -> ComposeResult:
        yield Static(title_text("Swap a person", self.puzzle.title), id="tool-title")
        yield Static("swapping people between the sentences... (esc stops)", id="tool-note")
        yield Static(Text("Person swapped in from the clean sentence, at the start of each "
                          "layer", style="bold"), classes="table-title")
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
        if legend := rounds_legend(self.puzzle_block()):
            note.append(f"\n{legend}")
        self.query_one("#tool-note", Static).update(note)
        fill_swap(self.query_one("#swap-roles", DataTable),
                  self.query_one("#swap-heads", DataTable), view)


EXPERIMENT_KEYS = {"r": "resid", "h": "head", "q": "query", "k": "key", "v": "value",
                   "s": "silence"}
EXPERIMENT_NAMES = {
    "resid": "Swap a person", "head": "Swap one question's answer",
    "query": "Swap the question", "key": "Swap who answers", "value": "Swap the answer",
    "silence": "Silence a question",
}


class ExperimentScreen(ToolScreen):
    """The essay's experiments as heatmaps: swap a person (residual stream), a question's
    answer (head output), the question (query), who answers (keys), what is said back
    (values), or silence a question (the judge's mean ablation). Each shows a first-order
    estimate at once (attribution patching), then the exact grid with a progress bar; esc
    stops it."""

    BINDINGS: ClassVar = [
        Binding("escape", "cancel", "Back"),
        *[Binding(key, f"show('{at}')", EXPERIMENT_NAMES[at].split(" ", 1)[1].capitalize())
          for key, at in EXPERIMENT_KEYS.items()],
        Binding("o", "position", "Where"),
        Binding("n", "numbers", "Numbers"),
    ]

    def __init__(self, puzzle: Any, at: str = "head") -> None:
        super().__init__()
        self.puzzle = puzzle
        self.at = at
        self.position = "*"
        self.numbers = False
        self.report: Any = None

    def compose(self) -> ComposeResult:
        yield Static(title_text(EXPERIMENT_NAMES[self.at], self.puzzle.title), id="tool-title")
        yield Static("swapping... (esc stops)", id="tool-note")
        yield ProgressBar(total=1.0, show_eta=False, id="bar")
        with VerticalScroll(id="experiment-body"):
            yield Static("", id="experiment-grid")
        yield Footer()

    def set_up(self) -> None:
        self.load()

    def progress(self, done: int, total: int) -> None:
        """From the engine's thread: how many layers of the grid are done."""
        def update() -> None:
            if self.is_attached:
                self.query_one(ProgressBar).update(total=1.0, progress=done / max(total, 1))

        self.app.call_from_thread(update)

    @work(exclusive=True, exit_on_error=False, group="experiment", description="Patching")
    async def load(self) -> None:
        app: Any = self.app
        worker = get_current_worker()
        at, position = self.at, self.position
        self.query_one(ProgressBar).update(total=1.0, progress=0.0)
        # a first-order picture at once (one forward and one backward), then the exact grid
        estimate = await in_daemon_thread(app.engine.patch, self.puzzle, at,
                                          position=position, estimate=True,
                                          cancelled=lambda: worker.is_cancelled)
        self.post_loaded(estimate)
        exact = await in_daemon_thread(app.engine.patch, self.puzzle, at, position=position,
                                       progress=self.progress,
                                       cancelled=lambda: worker.is_cancelled)
        self.post_loaded(exact)

    def action_cancel(self) -> None:
        self.workers.cancel_group(self, "experiment")
        self.dismiss(None)

    def action_show(self, at: str) -> None:
        self.at = at
        if at in ("resid", "silence"):
            self.position = "*"
        self.query_one("#tool-title", Static).update(
            title_text(EXPERIMENT_NAMES[at], self.puzzle.title))
        self.query_one("#tool-note", Static).update(Text("swapping... (esc stops)"))
        self.load()

    def action_position(self) -> None:
        """Every position, then each person in turn (heads' pieces only)."""
        if self.at in ("resid", "silence"):
            return
        choices = ["*", *self.puzzle.roles]
        self.position = choices[(choices.index(self.position) + 1) % len(choices)]
        self.load()

    def action_numbers(self) -> None:
        self.numbers = not self.numbers
        if self.report is not None:
            self.draw(self.report)

    @on(ToolScreen.Loaded)
    def show_report(self, event: ToolScreen.Loaded) -> None:
        self.draw(event.result)

    def draw(self, report: Any) -> None:
        from game.heatmap import picture

        self.report = report
        note = Text()
        note.append("clean      ", style="bold")
        note.append(visible(report.prompts[0]) if report.prompts else "")
        note.append("\ncorrupted  ", style="bold")
        note.append(visible(report.corrupted[0]) if report.corrupted else "")
        note.append(f"\n{report.title}. ")
        if report.estimate:
            note.append("First estimate (attribution patching); the exact grid is coming.",
                        style="bold")
        else:
            note.append("Exact: each cell one patched run.")
        note.append("  r h q k v s: experiment · o: where · n: numbers")
        if legend := rounds_legend(self.puzzle_block()):
            note.append(f"\nrows are layers; {legend}")
        self.query_one("#tool-note", Static).update(note)
        what = ("share of the gap left when silenced" if report.at == "silence"
                else "share of the gap brought back")
        self.query_one("#experiment-grid", Static).update(picture(
            report.fractions, columns=report.columns, title="", reading=report.reading,
            legend_text=what, column_label="person" if report.at == "resid" else "question",
            numbers=self.numbers, rows=getattr(report, "layers", None) or None,
            row_label="layer"))
        if not report.estimate:
            self.query_one(ProgressBar).update(total=1.0, progress=1.0)
