"""Dialogs that keep up with a fast typist: choose in steps, or type a line of text.

Why they are built this way: a key is routed when Textual gets round to it, not when it was
typed. A digit typed right after ``a`` reaches the App *after* the binding of ``a`` pushed the
dialog, and the App then matches it against the bindings of whatever screen is on top. So:

- every key a dialog answers to is a **binding of the dialog screen** (digits, arrows, enter,
  backspace, escape), never an ``on_key`` handler of a widget inside it; nothing in a choice
  dialog takes focus, so a key never waits in a child widget's queue that a closing dialog
  would throw away;
- one dialog walks through all the steps of a choice (round, asker, card, responder), so no
  key falls between two dialogs;
- a dialog closes once: a second answer, or an answer after it was closed, is ignored instead
  of popping some other screen (``ScreenStackError: Can't pop screen``; ``game.lifecycle``);
- the text dialog takes characters the App hands it (``take_key``) before its input exists.

Every label is shown as text (``rich.text.Text``), never parsed as markup.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from game.format import visible
from game.lifecycle import GameModal

DIGITS = [Binding(str(k), f"number({k - 1})", str(k), show=False) for k in range(1, 10)]


@dataclass
class Step:
    """One choice: which answer it sets (``key``), the title, the options as (value, label),
    the value chosen last time, and a note shown when there is nothing to choose."""

    key: str
    title: str
    options: list[tuple[str, str]]
    current: str | None = None
    note: str = ""
    where: str = ""  # e.g. "2/4"

    labels: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.labels = [label for _, label in self.options]


class ChoiceList(OptionList):
    """An OptionList that never takes focus: the dialog's own bindings drive it."""

    can_focus = False


class StepDialog(GameModal[Any]):
    """Choose in steps. ``next_step(answers)`` gives the next ``Step`` (or None when every
    answer is in, and the dialog closes with the answers). The result is the dict of answers,
    or None when cancelled. ``intro`` is a line of text above the steps (e.g. which question
    is being moved)."""

    BINDINGS: ClassVar = [
        Binding("escape", "cancel", "Cancel"),
        Binding("backspace", "back", "Back a step", show=False),
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("home", "cursor(-1000)", show=False),
        Binding("end", "cursor(1000)", show=False),
        Binding("enter", "pick", "Pick", show=False),
        *DIGITS,
    ]

    def __init__(self, next_step: Callable[[dict[str, str]], Step | None], *,
                 intro: str = "") -> None:
        super().__init__()
        self.next_step = next_step
        self.intro = intro
        self.answers: dict[str, str] = {}
        self.history: list[str] = []  # keys answered, in order (for backspace)
        self.step: Step | None = next_step({})
        self.highlight = self._start_highlight()
        self.drawn = False  # set once the widgets exist (``set_up``)

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            if self.intro:
                yield Static(Text(visible(self.intro)), classes="dialog-intro")
            yield Static(classes="dialog-title", id="dialog-title")
            yield ChoiceList(id="choices")
            yield Static(classes="dialog-note", id="dialog-note")
            yield Static(Text("↑↓ choose · enter pick · 1-9 pick by number · backspace back · "
                              "esc cancel"), classes="dialog-keys")

    def set_up(self) -> None:
        self.drawn = True
        self.show_step()

    def _start_highlight(self) -> int:
        step = self.step
        if step is None or not step.options:
            return 0
        values = [v for v, _ in step.options]
        return values.index(step.current) if step.current in values else 0

    def show_step(self) -> None:
        """Draw the current step (a no-op until the dialog is mounted: the state lives in
        plain attributes, so keys typed before the first frame still count)."""
        if not self.drawn or self.step is None:
            return
        step = self.step
        title = Text()
        title.append(visible(step.title), style="bold")
        if step.where:
            title.append(f"  {step.where}")
        self.query_one("#dialog-title", Static).update(title)
        choices = self.query_one("#choices", ChoiceList)
        choices.clear_options()
        choices.add_options([
            Option(Text(f"{k + 1 if k < 9 else ' '} {visible(label)}"), id=f"choice-{k}")
            for k, label in enumerate(step.labels)])
        if step.options:
            choices.highlighted = min(self.highlight, len(step.options) - 1)
        self.query_one("#dialog-note", Static).update(Text(visible(step.note)))
        self.query_one("#dialog-note", Static).display = bool(step.note)

    # ------------------------------------------------------------------ keys
    def action_number(self, k: int) -> None:
        if self.step is not None and 0 <= k < len(self.step.options):
            self.answer(self.step.options[k][0])

    def action_cursor(self, delta: int) -> None:
        if self.step is None or not self.step.options:
            return
        self.highlight = max(0, min(len(self.step.options) - 1, self.highlight + delta))
        if self.drawn:
            self.query_one("#choices", ChoiceList).highlighted = self.highlight

    def action_pick(self) -> None:
        if self.step is not None and self.step.options:
            self.answer(self.step.options[self.highlight][0])

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        """A mouse click on an option."""
        event.stop()
        if self.step is not None and 0 <= event.option_index < len(self.step.options):
            self.highlight = event.option_index
            self.answer(self.step.options[event.option_index][0])

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        if event.option_index is not None:
            self.highlight = event.option_index

    def action_back(self) -> None:
        if self.leaving or not self.history:
            return
        self.answers.pop(self.history.pop(), None)
        self.step = self.next_step(dict(self.answers))
        self.highlight = self._start_highlight()
        self.show_step()

    def action_cancel(self) -> None:
        self.close(None)

    # ------------------------------------------------------------------ answers
    def answer(self, value: str) -> None:
        if self.leaving or self.step is None:
            return
        self.answers[self.step.key] = value
        self.history.append(self.step.key)
        nxt = self.next_step(dict(self.answers))
        if nxt is None:
            self.close(self.result())
            return
        self.step = nxt
        self.highlight = self._start_highlight()
        self.show_step()

    def result(self) -> Any:
        return dict(self.answers)

    def close(self, result: Any) -> None:
        """Close with ``result`` (``dismiss`` closes once, and only while on top)."""
        self.dismiss(result)


class Pick(StepDialog):
    """Choose one option; the result is its value (or None)."""

    def __init__(self, title: str, options: list[tuple[str, str]], *,
                 current: str | None = None, step: str = "", intro: str = "") -> None:
        only = Step("value", title, options, current=current, where=step)
        super().__init__(lambda answers: None if "value" in answers else only, intro=intro)

    def result(self) -> Any:
        return self.answers.get("value")


class TextField(Input):
    """A text dialog's input, which leaves out the key that opened the dialog when it comes
    again first (``AskText.swallows``), whether it arrives before or after the field has
    focus."""

    async def _on_key(self, event: events.Key) -> None:
        dialog = self.screen
        if isinstance(dialog, AskText) and dialog.swallows(event.character):
            event.stop()
            event.prevent_default()
            return
        await super()._on_key(event)


class AskText(GameModal[str | None]):
    """One line of text; enter accepts, escape cancels. Characters typed before the input
    exists are handed over by the App (``take_key``) and kept."""

    BINDINGS: ClassVar = [
        Binding("escape", "cancel", "Cancel"),
        Binding("enter", "accept", "Accept", show=False),
    ]

    def __init__(self, title: str, placeholder: str = "", value: str = "", *,
                 opened_by: str | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.placeholder = placeholder
        self.value = value
        self.drawn = False
        # The character of the key that opened the dialog: pressed again before anything else
        # is typed (a double press, or a key repeat while the dialog appears) it is not text.
        self.opened_by = opened_by
        self.typed = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(visible(self.title_text), style="bold"), classes="dialog-title")
            yield TextField(value=self.value, placeholder=self.placeholder)
            yield Static(Text("enter accept · esc cancel"), classes="dialog-keys")

    def set_up(self) -> None:
        field_ = self.query_one(Input)
        field_.value = self.value
        field_.cursor_position = len(self.value)
        field_.focus()
        self.drawn = True

    def take_key(self, character: str | None, key: str) -> bool:
        """A key that reached the App while this dialog was on top (typed before its input
        had focus): type it in. True when it was used."""
        if self.leaving:
            return False
        if self.swallows(character):
            return True
        field_ = self.query_one(Input) if self.drawn else None
        if key == "backspace" and field_ is None:  # once drawn, the input's binding does it
            self.value = self.value[:-1]
            return True
        if character and len(character) == 1 and character.isprintable():
            if field_ is not None:
                field_.insert_text_at_cursor(character)
            else:
                self.value += character
            return True
        return False

    def swallows(self, character: str | None) -> bool:
        """True for the key that opened the dialog pressed again before any other key: it
        is not text (``s`` twice saved ``...yamls``). Any other key ends the rule."""
        if not self.typed and character is not None and character == self.opened_by:
            return True
        self.typed = True
        return False

    def current_text(self) -> str:
        return self.query_one(Input).value if self.drawn else self.value

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.close(event.value.strip() or None)

    def action_accept(self) -> None:
        self.close(self.current_text().strip() or None)

    def action_cancel(self) -> None:
        self.close(None)

    def close(self, result: str | None) -> None:
        self.dismiss(result)
