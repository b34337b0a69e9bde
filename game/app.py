"""The Lineup game: a thin Textual App.

The App holds the shared state every screen reads (the puzzles, the player's progress, the
engine, a teacher's pack settings), the bindings that work everywhere, the command palette and
the one place worker failures are handled. Each view is a Screen in ``game.screens``; model work
happens only in thread workers that call ``game.engine_bridge``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

from textual import events, on, work
from textual.app import App
from textual.binding import Binding
from textual.command import CommandPalette, DiscoveryHit, Hit, Hits, Provider
from textual.css.query import NoMatches
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Button, Input, OptionList
from textual.worker import Worker, WorkerState

from engine.pack import Pack  # noqa: F401 - the engine reads packs; the game shows them
from game.background import in_daemon_thread
from game.format import unlock_short, unlock_text, visible
from game.lifecycle import Guarded
from game.progress import Progress


class SafePalette(Guarded, CommandPalette):
    """Textual's command palette, except that it closes once (``Guarded.dismiss``: ``enter
    enter`` typed fast ran the command twice and popped the screen beneath), a choice queued
    before it closed is dropped, and a search still running when the
    palette closes (keys typed fast, then esc) ends quietly instead of crashing the game on
    its vanished list (``NoMatches: CommandList``)."""

    @on(Input.Submitted)
    @on(Button.Pressed)
    @on(OptionList.OptionSelected)
    def _after_closing(self, event: Message) -> None:
        """A choice that was queued before the palette closed: stop it here, before the
        palette's own handlers (``prevent_default`` skips the base classes) run it again."""
        if self.leaving:
            event.stop()
            event.prevent_default()

    @work(exclusive=True, group=CommandPalette._GATHER_COMMANDS_GROUP)
    async def _gather_commands(self, search_value: str) -> None:
        gather = CommandPalette._gather_commands.__wrapped__  # type: ignore[attr-defined]
        try:
            await gather(self, search_value)
        except NoMatches:
            if self.is_attached and self.is_current:
                raise


class LineupCommands(Provider):
    """The game's commands in the palette (ctrl+p): open a puzzle, tools, the current screen's
    actions. Titles start with their area: "puzzle:", "tool:", "help:"."""

    def commands(self) -> list[tuple[str, Any, str]]:
        app = self.app
        out: list[tuple[str, Any, str]] = []
        screen_actions = getattr(app.screen, "PALETTE", [])
        for title, action, help_text in screen_actions:
            out.append((title, getattr(app.screen, f"action_{action}"), help_text))
        out.append(("tool: Sandbox", app.action_sandbox, "type any text and look inside"))
        out.append(("help: Keys", app.action_help, "what every key does"))
        for p in getattr(app, "puzzles", []):
            out.append((f"puzzle: {visible(p.title)}", lambda p=p: app.open_puzzle(p),
                        visible(f"{p.ladder} {p.order}: {p.id}")))
        return out

    async def discover(self) -> Hits:
        for title, callback, help_text in self.commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, callback, help_text in self.commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)


class LineupApp(App[int]):
    """Menu -> puzzle -> place questions -> check -> verdict, plus the essay's tools."""

    CSS_PATH = "app.tcss"
    TITLE = "Lineup"
    COMMANDS = App.COMMANDS | {LineupCommands}
    BINDINGS: ClassVar = [
        Binding("question_mark", "help", "Help"),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
    ]
    ENABLE_COMMAND_PALETTE = True

    def __init__(self, *, puzzle: str | None = None, pack: str | Path | None = None,
                 model: str | None = None, engine: Any = None,
                 circuit: str | Path | None = None) -> None:
        super().__init__()
        from game.engine_bridge import make_engine

        self.engine = engine if engine is not None else make_engine(model)
        self.start_puzzle = puzzle
        self.start_circuit = circuit
        self.pack, self.puzzles = load_pack(pack)
        self.progress = Progress.load(legacy_model=self.engine.block or "toy")
        self.quitting = False

    # ------------------------------------------------------------------ screens
    def on_mount(self) -> None:
        from game.screens.menu import MenuScreen

        if os.environ.get("LINEUP_ANIMATIONS", "") == "none":
            self.animation_level = "none"
        self.push_screen(MenuScreen())
        for problem in getattr(self.progress, "problems", None) or (
                [self.progress.message] if self.progress.message else []):
            self.notify(str(problem), title="Save file", severity="warning", timeout=10,
                        markup=False)
        for problem in self.pack.problems:
            self.notify(visible(problem), title="Skipped a puzzle", severity="warning",
                        timeout=10, markup=False)
        if self.start_circuit:
            self.open_circuit_file(str(self.start_circuit))
        elif self.start_puzzle:
            self.open_puzzle(self.start_puzzle)
        self.call_after_refresh(self._after_first_frame)

    def _after_first_frame(self) -> None:
        """The menu is painted: note whether torch or huggingface_hub was needed for it (they
        must not be), then load the model in the background so the first check does not wait
        for it."""
        self.torch_at_first_frame = "torch" in sys.modules
        self.hub_at_first_frame = "huggingface_hub" in sys.modules
        self.first_frame_at = time.time()
        self.warm_up()

    @work(exclusive=True, exit_on_error=False, group="warm-up", description="Loading the model")
    async def warm_up(self) -> None:
        """Load the model in a daemon thread: quitting never waits for it."""
        load = getattr(self.engine, "lm", None)
        if load is not None:
            await in_daemon_thread(load, name="lineup-model-load")
            self.model_loaded_after = time.time() - self.first_frame_at

    def action_command_palette(self) -> None:
        """Open the palette. Without Textual's fixed id: a palette closed a moment ago may
        not be removed yet, and a second one with its id crashed (``DuplicateIds``)."""
        if self.use_command_palette and not CommandPalette.is_open(self):
            self.push_screen(SafePalette())

    def exit(self, result: int | None = None, return_code: int = 0,
             message: Any = None) -> None:
        """Quit. From here on the game takes no more input (``on_event``); a preparation
        running in the background stops first (``Engine.stop_preparing``)."""
        self.quitting = True
        stop = getattr(self.engine, "stop_preparing", None)
        if stop is not None:
            stop()
        super().exit(result, return_code, message)

    async def on_event(self, event: events.Event) -> None:
        """Keys (and clicks) that arrive once the game is quitting are dropped: they would
        act on screens pushed after ``q`` (``q enter a`` typed together), which Textual never
        fills in while the app exits."""
        if self.quitting and isinstance(event, events.InputEvent):
            return
        await super().on_event(event)

    def on_key(self, event: events.Key) -> None:
        """A key that reached the App unused while a text dialog is on top was typed before
        the dialog's input had focus: hand it over instead of dropping it."""
        take = getattr(self.screen, "take_key", None)
        if take is not None and take(event.character, event.key):
            event.stop()
            event.prevent_default()

    # ------------------------------------------------------------------ progress, per model
    @property
    def model_key(self) -> str:
        """The key stars and circuits are kept under: the puzzle block the engine plays."""
        return str(self.engine.block or getattr(self.engine, "model", None) or "toy")

    def stars_for(self, puzzle_id: str) -> int:
        try:
            return int(self.progress.stars(puzzle_id, self.model_key))
        except TypeError:  # a Progress without models
            return int(self.progress.stars(puzzle_id))

    def saved_circuit(self, puzzle_id: str) -> list[Any]:
        try:
            return list(self.progress.circuit(puzzle_id, self.model_key))
        except TypeError:
            return list(self.progress.circuit(puzzle_id))

    def record_progress(self, puzzle_id: str, *, stars: int | None = None,
                        circuit: list[dict[str, str]] | None = None) -> bool:
        """Save at once; a save that does not reach the disk is a message, not a crash."""
        before = len(getattr(self.progress, "problems", []) or [])
        try:
            ok = self.progress.record(puzzle_id, self.model_key, stars=stars, circuit=circuit)
        except OSError as exc:
            self.notify(f"Could not save your progress: {exc.strerror or exc}",
                        severity="error", markup=False)
            return False
        if ok is False:
            for problem in (getattr(self.progress, "problems", []) or [])[before:]:
                self.notify(str(problem), title="Not saved", severity="error", markup=False)
            return False
        return True

    # ------------------------------------------------------------------ opening things
    def find(self, puzzle_id: str) -> Any:
        for p in self.puzzles:
            if p.id == puzzle_id:
                return p
        return None

    def unlock_short(self, puzzle: Any) -> str:
        return unlock_short(list(puzzle.models))

    def unlock_text(self, puzzle: Any) -> str:
        return unlock_text(list(puzzle.models))

    def open_puzzle(self, puzzle: Any, questions: list[dict[str, str]] | None = None) -> None:
        """Open a puzzle (a loaded one, an id or a path)."""
        from engine.errors import LineupError
        from engine.puzzle import find_puzzle
        from game.screens.puzzle import PuzzleScreen

        if isinstance(puzzle, str):
            found = self.find(puzzle)
            if found is None:
                try:
                    found = find_puzzle(puzzle)
                except (LineupError, OSError) as exc:
                    self.notify(visible(exc), title="No such puzzle", severity="error",
                                markup=False)
                    return
            puzzle = found
        if puzzle.locked_for(self.engine.block):
            self.notify(f"{visible(puzzle.title)} is locked on this model: it "
                        f"{self.unlock_text(puzzle)}.", title="Locked", severity="warning",
                        timeout=10, markup=False)
            return
        self.push_screen(PuzzleScreen(puzzle, questions=questions))

    def open_circuit_file(self, path: str) -> None:
        from engine.errors import LineupError

        try:
            circuit = read_circuit(Path(path).expanduser())
        except (LineupError, OSError) as exc:
            self.notify(visible(exc), title="Cannot open circuit", severity="error",
                        markup=False)
            return
        self.open_puzzle(circuit.puzzle, [q.as_dict() for q in circuit.questions])

    def open_check(self, puzzle: Any, questions: list[dict[str, str]], callback: Any) -> None:
        from game.screens.check import CheckScreen

        reveal = self.stars_for(puzzle.id) >= 2  # solved before on this model
        self.push_screen(CheckScreen(puzzle, questions, reveal=reveal), callback=callback)

    def open_hints(self, puzzle: Any, state: dict[str, Any], block: Any) -> None:
        from game.screens.hints import HintScreen

        self.push_screen(HintScreen(puzzle, state, block))

    def open_tool(self, kind: str, *args: Any, **kwargs: Any) -> None:
        """``attention`` / ``lens`` (text, title=, puzzle=), ``swap`` (puzzle) or
        ``experiment`` (puzzle, at)."""
        from game.screens import tools

        screen = {"attention": tools.AttentionScreen, "lens": tools.LensScreen,
                  "swap": tools.SwapScreen, "experiment": tools.ExperimentScreen}[kind]
        self.push_screen(screen(*args, **kwargs))

    def action_help(self) -> None:
        from game.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_sandbox(self) -> None:
        from game.screens.sandbox import SandboxScreen

        self.push_screen(SandboxScreen())

    # ------------------------------------------------------------------ failures, in one place
    @on(Worker.StateChanged)
    def worker_failed(self, event: Worker.StateChanged) -> None:
        """The one place a failed worker is reported. ``Worker.StateChanged`` does not bubble,
        so screens that run workers hand theirs here (``game.screens.base``); the App's own
        (the warm-up) arrive directly."""
        if event.state != WorkerState.ERROR:
            return
        from engine.errors import LineupError

        error = event.worker.error
        what = event.worker.description or event.worker.name or "work"
        if isinstance(error, InterruptedError):
            self.notify("Stopped.", title=what)
        elif isinstance(error, LineupError):
            self.notify(visible(error), title=getattr(error, "title", what), severity="error",
                        timeout=10, markup=False)
        else:
            self.notify(visible(f"{type(error).__name__}: {error}"), title=f"{what} failed",
                        severity="error", timeout=10, markup=False)
        # Tell the screen (or widget) that started the worker, not whatever is on top now; a
        # worker of the App itself (the warm-up) goes to the current screen.
        owner = event.worker.node
        if not isinstance(owner, Widget):
            owner = self.screen
        if not owner.is_attached:  # closed since: nobody is waiting for this work
            return
        failed = getattr(owner, "work_failed", None)
        if failed is not None:
            failed(event.worker, error)


def load_pack(pack: str | Path | None) -> tuple[Any, list[Any]]:
    """The shipped puzzles, or a teacher's pack folder (puzzle YAML files + pack.yaml), read
    by the engine (``engine.pack``); problems are plain text lines in ``Pack.problems``."""
    from engine.pack import load_pack as engine_load_pack

    return engine_load_pack(pack)


def read_circuit(path: Path) -> Any:
    """A circuit file, read without ever blocking (regular files only) and without a
    traceback for anything inside it."""
    from engine.pack import read_doc
    from engine.puzzle import Problem, PuzzleError, parse_circuit

    doc = read_doc(path)
    if doc.problems:
        raise PuzzleError(doc.problems, "circuit")
    circuit, problems = parse_circuit(doc)
    if problems or circuit is None:
        raise PuzzleError(sorted(problems) or [Problem(str(path), 1, 1, "not a circuit")],
                          "circuit")
    return circuit


def exit_code(app: App[Any], result: Any) -> int:
    """The process exit code of a finished app: Textual's return code (1 after a crash),
    else the app's own result."""
    code = getattr(app, "return_code", None)
    if code:
        return int(code)
    return int(result or 0)


def run_app(puzzle: str | None = None, pack: str | None = None, model: str | None = None) -> int:
    """Start the game; returns the exit code (non-zero after a crash)."""
    circuit = None
    if puzzle and Path(puzzle).is_file():
        from engine.pack import read_doc

        data = read_doc(puzzle).data
        if isinstance(data, dict) and "questions" in data and "prompts" not in data:
            circuit, puzzle = puzzle, None
    app = LineupApp(puzzle=puzzle, pack=pack, model=model, circuit=circuit)
    result = app.run()
    return exit_code(app, result)
