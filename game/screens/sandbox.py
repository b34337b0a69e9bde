"""The sandbox: type any text, see the model's guess, the logit lens and any head's attention."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Input, Static

from game.background import in_daemon_thread
from game.format import UNK_NOTE, visible
from game.screens.base import HEAD_KEYS, ToolScreen
from game.views import Prediction
from game.widgets.tables import fill_attention, fill_lens, has_unknown

EXAMPLE = "When Mary and John went to the store, John gave a drink to"


class SandboxScreen(ToolScreen):
    BINDINGS: ClassVar = [Binding("escape", "leave_screen", "Back"), *HEAD_KEYS]

    def __init__(self, text: str = "") -> None:
        super().__init__()
        self.text = text
        self.layer_no = 0
        self.head_no = 0
        self.sizes: tuple[int, int] | None = None

    def compose(self) -> ComposeResult:
        title = Text()
        title.append("Sandbox", style="bold")
        title.append("  type a sentence and press enter; tab moves to the tables")
        yield Static(title, id="tool-title")
        yield Input(value=self.text, placeholder=EXAMPLE, id="sandbox-text")
        yield Static("", id="tool-note")
        with VerticalScroll(id="sandbox-body"):
            yield Static(Text("What does the last person think comes next?", style="bold"),
                         classes="table-title")
            yield Static("", id="prediction")
            yield Static(Text("What does everyone think, round by round?", style="bold"),
                         classes="table-title")
            yield DataTable(id="lens", cursor_type="cell")
            yield Static(Text("Who answers?", style="bold"), classes="table-title",
                         id="attention-title")
            yield DataTable(id="attention", cursor_type="cell")
        yield Footer()

    def set_up(self) -> None:
        self.query_one(Input).focus()
        if self.text:
            self.run_text(self.text)

    def take_key(self, character: str | None, key: str) -> bool:
        """A character typed before the sandbox's input had focus (``x`` and the sentence
        typed at once) reached the App: type it in. Keys meant for a focused table are not;
        enter and backspace reach the input through its own bindings."""
        if isinstance(self.focused, DataTable) or not self.is_attached:
            return False
        field_ = self.query_one("#sandbox-text", Input)
        if character and len(character) == 1 and character.isprintable():
            field_.insert_text_at_cursor(character)
            return True
        return False

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        self.text = event.value.strip() or EXAMPLE
        self.run_text(self.text)

    @work(exclusive=True, exit_on_error=False, group="sandbox", description="Sandbox")
    async def run_text(self, text: str) -> None:
        app: Any = self.app
        engine = app.engine
        layer, head = self.layer_no, self.head_no

        def both() -> tuple[Any, Any]:
            return engine.lens(text, k=5), engine.attention(text, layer, head)

        lens, attention = await in_daemon_thread(both)
        self.post_loaded((Prediction.from_lens(lens), lens, attention))

    @on(ToolScreen.Loaded)
    def show(self, event: ToolScreen.Loaded) -> None:
        prediction, lens, attention = event.result
        if prediction is not None:
            self.query_one("#prediction", Static).update(Text("   ".join(
                f"{visible(tok).strip() or repr(tok)} {round(100 * p)}%"
                for tok, p in prediction.top)))
        if lens is not None:
            fill_lens(self.query_one("#lens", DataTable), lens)
            unknown = has_unknown(lens.tokens) or any(
                has_unknown([g for g, _ in p.top]) for p in lens.layers[-1].positions)
            self.query_one("#tool-note", Static).update(Text(UNK_NOTE if unknown else ""))
        self.layer_no, self.head_no = attention.layer, attention.head
        self.sizes = (attention.n_layers, attention.n_heads)
        title = Text()
        title.append("Who answers?", style="bold")
        title.append(f" head {attention.layer}.{attention.head} "
                     "(% of attention; [ ] layer , . head when a table has focus)")
        self.query_one("#attention-title", Static).update(title)
        fill_attention(self.query_one("#attention", DataTable), attention)

    @work(exclusive=True, exit_on_error=False, group="sandbox-head", description="Attention")
    async def load_head(self) -> None:
        app: Any = self.app
        view = await in_daemon_thread(app.engine.attention, self.text, self.layer_no,
                                      self.head_no)
        self.post_loaded((None, None, view))

    def action_layer(self, step: int) -> None:
        if self.sizes and self.text:
            self.layer_no = (self.layer_no + step) % self.sizes[0]
            self.load_head()

    def action_head(self, step: int) -> None:
        if self.sizes and self.text:
            self.head_no = (self.head_no + step) % self.sizes[1]
            self.load_head()
