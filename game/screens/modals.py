"""Small modal screens: pick one of a list, type a line of text."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option


class Pick(ModalScreen[str | None]):
    """Choose one option by arrows and enter (or its number key); escape cancels."""

    BINDINGS: ClassVar = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, title: str, options: list[tuple[str, str]], *, current: str | None = None,
                 step: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.options = options
        self.current = current
        self.step = step

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(f"[b]{self.title_text}[/b]  {self.step}", classes="dialog-title")
            yield OptionList(*[Option(f"{k + 1 if k < 9 else ' '} {label}", id=value)
                               for k, (value, label) in enumerate(self.options)])
            yield Static("↑↓ choose · enter pick · 1-9 jump · esc cancel", classes="dialog-keys")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        ids = [value for value, _ in self.options]
        options.highlighted = ids.index(self.current) if self.current in ids else 0
        options.focus()

    def on_key(self, event) -> None:  # type: ignore[no-untyped-def]
        if event.character and event.character.isdigit() and event.character != "0":
            k = int(event.character) - 1
            if k < len(self.options):
                event.stop()
                self.dismiss(self.options[k][0])

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)


class AskText(ModalScreen[str | None]):
    """One line of text; enter accepts, escape cancels."""

    BINDINGS: ClassVar = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, title: str, placeholder: str = "", value: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.placeholder = placeholder
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(f"[b]{self.title_text}[/b]", classes="dialog-title")
            yield Input(value=self.value, placeholder=self.placeholder)
            yield Static("enter accept · esc cancel", classes="dialog-keys")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() or None)
