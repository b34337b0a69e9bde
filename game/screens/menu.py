"""The menu: ladders and puzzles with the player's stars, and which model is in use."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from engine.puzzle_schema import LADDER_TITLES


def stars_text(n: int) -> str:
    return "★" * n + "☆" * (3 - n)


class MenuScreen(Screen[None]):
    BINDINGS: ClassVar = [
        Binding("enter", "open", "Play", show=True),
        Binding("o", "open_file", "Open circuit file"),
        Binding("x", "app.sandbox", "Sandbox"),
        Binding("q", "app.quit", "Quit"),
    ]
    PALETTE: ClassVar = [("puzzle: Open a circuit file", "open_file", "a .yaml saved with s")]

    def compose(self) -> ComposeResult:
        app: Any = self.app
        yield Static(f"[b]{app.pack.title}[/b] · find the circuit, one question at a time",
                     id="menu-title")
        yield Static(app.engine.banner(), id="banner")
        yield OptionList(id="puzzles")
        yield Static("", id="menu-total")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_list()
        self.query_one(OptionList).focus()

    def on_screen_resume(self) -> None:
        self.refresh_list()

    def refresh_list(self) -> None:
        app: Any = self.app
        options: OptionList = self.query_one("#puzzles", OptionList)
        keep = options.highlighted
        options.clear_options()
        block = app.engine.block
        ladder = None
        items: list[Option | None] = []
        for p in app.puzzles:
            if p.ladder != ladder:
                ladder = p.ladder
                items.append(Option(f"[b]{LADDER_TITLES.get(ladder, ladder)}[/b]",
                                    id=f"ladder:{ladder}", disabled=True))
            locked = p.locked_for(block)
            stars = app.progress.stars(p.id)
            mark = "  locked on this model" if locked else ""
            items.append(Option(f"  {stars_text(stars)}  {p.order}. {p.title}{mark}",
                                id=p.id, disabled=locked))
        options.add_options([i for i in items if i is not None])
        if keep is not None:
            options.highlighted = keep
        else:
            first = next((k for k, o in enumerate(options.options) if not o.disabled), None)
            options.highlighted = first
        total = sum(app.progress.stars(p.id) for p in app.puzzles)
        self.query_one("#menu-total", Static).update(
            f"Stars: {total} of {3 * len(app.puzzles)}  ·  enter play  ·  ctrl+p commands")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id and not event.option.id.startswith("ladder:"):
            self.app.open_puzzle(event.option.id)  # type: ignore[attr-defined]

    def action_open(self) -> None:
        options = self.query_one(OptionList)
        if options.highlighted is not None:
            option = options.get_option_at_index(options.highlighted)
            if option.id and not option.disabled:
                self.app.open_puzzle(option.id)  # type: ignore[attr-defined]

    def action_open_file(self) -> None:
        from game.screens.modals import AskText

        def opened(path: str | None) -> None:
            if path:
                self.app.open_circuit_file(path)  # type: ignore[attr-defined]

        self.app.push_screen(AskText("Open a circuit file (YAML)", "path/to/circuit.yaml"),
                             callback=opened)
