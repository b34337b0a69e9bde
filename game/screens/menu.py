"""The menu: ladders and puzzles with the player's stars on this model, and which model plays.

Option ids are the puzzle's place in the list (``puzzle-3``), never the puzzle id: two pack
files with one id must not crash the menu. Titles are shown as text, never as markup."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from engine.puzzle import LADDER_TITLES
from game.format import stars_text, visible
from game.lifecycle import GameScreen
from game.widgets.dialogs import AskText


class MenuScreen(GameScreen[None]):
    BINDINGS: ClassVar = [
        Binding("enter", "open", "Play", show=True),
        Binding("o", "open_file", "Open circuit file"),
        Binding("x", "app.sandbox", "Sandbox"),
        Binding("q", "app.quit", "Quit"),
    ]
    PALETTE: ClassVar = [("puzzle: Open a circuit file", "open_file", "a .yaml saved with s")]

    def compose(self) -> ComposeResult:
        app: Any = self.app
        title = Text()
        title.append(visible(app.pack.title), style="bold")
        title.append(" · find the circuit, one question at a time")
        yield Static(title, id="menu-title")
        yield Static(Text(visible(app.engine.banner())), id="banner")
        yield OptionList(id="puzzles")
        yield Static("", id="menu-total")
        yield Footer()

    def set_up(self) -> None:
        self.refresh_list()
        self.query_one(OptionList).focus()

    def resumed(self) -> None:
        self.refresh_list()

    def puzzle_at(self, option_id: str | None) -> Any:
        """The puzzle an option stands for (None for a ladder heading)."""
        app: Any = self.app
        if not option_id or not option_id.startswith("puzzle-"):
            return None
        k = int(option_id.removeprefix("puzzle-"))
        return app.puzzles[k] if 0 <= k < len(app.puzzles) else None

    def refresh_list(self) -> None:
        app: Any = self.app
        options: OptionList = self.query_one("#puzzles", OptionList)
        keep = options.highlighted
        options.clear_options()
        block = app.engine.block
        ladder = None
        items: list[Option] = []
        for k, p in enumerate(app.puzzles):
            if p.ladder != ladder:
                ladder = p.ladder
                items.append(Option(Text(visible(LADDER_TITLES.get(ladder, ladder)),
                                         style="bold"), id=f"ladder-{len(items)}",
                                    disabled=True))
            locked = p.locked_for(block)
            row = Text(f"  {stars_text(app.stars_for(p.id))}  {p.order}. {visible(p.title)}")
            if locked:
                row.append(f"  {app.unlock_short(p)}", style="dim")
            items.append(Option(row, id=f"puzzle-{k}"))
        options.add_options(items)
        if keep is not None and keep < len(items):
            options.highlighted = keep
        else:
            options.highlighted = next((k for k, o in enumerate(items) if not o.disabled), None)
        total = sum(app.stars_for(p.id) for p in app.puzzles)
        self.query_one("#menu-total", Static).update(Text(
            f"Stars: {total} of {3 * len(app.puzzles)}  ·  enter play  ·  ctrl+p commands"))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        puzzle = self.puzzle_at(event.option.id)
        if puzzle is not None:
            self.app.open_puzzle(puzzle)  # type: ignore[attr-defined]

    def action_open(self) -> None:
        options = self.query_one(OptionList)
        if options.highlighted is not None:
            puzzle = self.puzzle_at(options.get_option_at_index(options.highlighted).id)
            if puzzle is not None:
                self.app.open_puzzle(puzzle)  # type: ignore[attr-defined]

    def action_open_file(self) -> None:
        def opened(path: str | None) -> None:
            if path:
                self.app.open_circuit_file(path)  # type: ignore[attr-defined]

        self.app.push_screen(AskText("Open a circuit file (YAML)", "path/to/circuit.yaml",
                                     opened_by="o"),
                             callback=opened)
