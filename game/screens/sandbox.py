"""The sandbox: type any text, see the model's guess, the logit lens and any head's attention."""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Input, Static

from game.engine_bridge import Prediction
from game.screens.tools import HEAD_KEYS, ToolScreen, fill_attention, fill_lens

EXAMPLE = "When Mary and John went to the store, John gave a drink to"


class SandboxScreen(ToolScreen):
    BINDINGS: ClassVar = [Binding("escape", "app.pop_screen", "Back"), *HEAD_KEYS]

    def __init__(self, text: str = "") -> None:
        super().__init__()
        self.text = text
        self.layer_no = 0
        self.head_no = 0
        self.sizes: tuple[int, int] | None = None

    def compose(self) -> ComposeResult:
        yield Static("[b]Sandbox[/b]  type a sentence and press enter; tab moves to the tables",
                     id="tool-title")
        yield Input(value=self.text, placeholder=EXAMPLE, id="sandbox-text")
        yield Static("", id="tool-note")
        with VerticalScroll(id="sandbox-body"):
            yield Static("[b]What does the last person think comes next?[/b]",
                         classes="table-title")
            yield Static("", id="prediction")
            yield Static("[b]What does everyone think, round by round?[/b]",
                         classes="table-title")
            yield DataTable(id="lens", cursor_type="cell")
            yield Static("[b]Who answers?[/b]", classes="table-title", id="attention-title")
            yield DataTable(id="attention", cursor_type="cell")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(Input).focus()
        if self.text:
            self.run_text(self.text)

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        self.text = event.value.strip() or EXAMPLE
        self.run_text(self.text)

    @work(thread=True, exclusive=True, exit_on_error=False, group="sandbox",
          description="Sandbox")
    def run_text(self, text: str) -> None:
        app: Any = self.app
        engine = app.engine
        lens = engine.lens(text, k=5)
        attention = engine.attention(text, self.layer_no, self.head_no)
        self.post_loaded((Prediction.from_lens(lens), lens, attention))

    @on(ToolScreen.Loaded)
    def show(self, event: ToolScreen.Loaded) -> None:
        prediction, lens, attention = event.result
        if prediction is not None:
            self.query_one("#prediction", Static).update("   ".join(
                f"{tok.strip() or repr(tok)} {round(100 * p)}%" for tok, p in prediction.top))
        if lens is not None:
            fill_lens(self.query_one("#lens", DataTable), lens)
        self.layer_no, self.head_no = attention.layer, attention.head
        self.sizes = (attention.n_layers, attention.n_heads)
        self.query_one("#attention-title", Static).update(
            f"[b]Who answers?[/b] head {attention.layer}.{attention.head} "
            "(% of attention; [ ] layer , . head when a table has focus)")
        fill_attention(self.query_one("#attention", DataTable), attention)

    @work(thread=True, exclusive=True, exit_on_error=False, group="sandbox-head",
          description="Attention")
    def load_head(self) -> None:
        app: Any = self.app
        view = app.engine.attention(self.text, self.layer_no, self.head_no)
        self.post_loaded((None, None, view))

    def action_layer(self, step: int) -> None:
        if self.sizes and self.text:
            self.layer_no = (self.layer_no + step) % self.sizes[0]
            self.load_head()

    def action_head(self, step: int) -> None:
        if self.sizes and self.text:
            self.head_no = (self.head_no + step) % self.sizes[1]
            self.load_head()
