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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.widget import Widget
from textual.worker import Worker, WorkerState

from game.progress import Progress


@dataclass
class Pack:
    """A teacher's pack (``pack.yaml`` next to puzzle files) or the shipped puzzles."""

    title: str = "Lineup"
    hints: bool = True  # may students see hints?
    solutions: bool = True  # may students reveal the reference solution?
    seed: int | None = None
    path: Path | None = None
    problems: list[str] = field(default_factory=list)


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
            out.append((f"puzzle: {p.title}", lambda pid=p.id: app.open_puzzle(pid),
                        f"{p.ladder} {p.order}: {p.id}"))
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
        self.progress = Progress.load()

    # ------------------------------------------------------------------ screens
    def on_mount(self) -> None:
        from game.screens.menu import MenuScreen

        if os.environ.get("LINEUP_ANIMATIONS", "") == "none":
            self.animation_level = "none"
        self.push_screen(MenuScreen())
        if self.progress.message:
            self.notify(self.progress.message, title="Save file", severity="warning", timeout=10)
        for problem in self.pack.problems:
            self.notify(problem, title="Skipped a puzzle", severity="warning", timeout=10)
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
        if not getattr(self.engine, "fake", False):
            self.warm_up()

    @work(thread=True, exclusive=True, exit_on_error=False, group="warm-up",
          description="Loading the model")
    def warm_up(self) -> None:
        self.engine.lm()
        self.model_loaded_after = time.time() - self.first_frame_at

    def find(self, puzzle_id: str) -> Any:
        for p in self.puzzles:
            if p.id == puzzle_id:
                return p
        return None

    def open_puzzle(self, id_or_path: str, questions: list[dict[str, str]] | None = None) -> None:
        from engine.errors import LineupError
        from engine.puzzle import find_puzzle
        from game.screens.puzzle import PuzzleScreen

        puzzle = self.find(id_or_path)
        if puzzle is None:
            try:
                puzzle = find_puzzle(id_or_path)
            except LineupError as exc:
                self.notify(str(exc), title="No such puzzle", severity="error")
                return
        if puzzle.locked_for(self.engine.block):
            self.notify(f"{puzzle.title!r} has no version for the {self.engine.block} model yet.",
                        title="Locked", severity="warning")
            return
        self.push_screen(PuzzleScreen(puzzle, questions=questions))

    def open_circuit_file(self, path: str) -> None:
        from engine.errors import LineupError
        from engine.puzzle import load_circuit

        try:
            circuit = load_circuit(Path(path).expanduser())
        except LineupError as exc:
            self.notify(str(exc), title="Cannot open circuit", severity="error")
            return
        self.open_puzzle(circuit.puzzle, [q.as_dict() for q in circuit.questions])

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
            self.notify(str(error), title=getattr(error, "title", what), severity="error",
                        timeout=10)
        else:
            self.notify(f"{type(error).__name__}: {error}", title=f"{what} failed",
                        severity="error", timeout=10)
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


def load_pack(pack: str | Path | None) -> tuple[Pack, list[Any]]:
    """The shipped puzzles, or a teacher's pack folder (puzzle YAML files + pack.yaml)."""
    from engine.puzzle import Problem, load_all

    if pack is None:
        problems: list[Problem] = []
        puzzles = load_all(problems)
        return Pack(problems=[str(p) for p in problems]), puzzles
    return read_pack(Path(pack))


def read_pack(folder: Path) -> tuple[Pack, list[Any]]:
    from engine.errors import UsageError
    from engine.puzzle import PuzzleError, load_puzzle, puzzle_files, read_yaml

    if not folder.is_dir():
        raise UsageError(f"pack folder {folder} does not exist")
    meta: dict[str, Any] = {}
    pack_file = folder / "pack.yaml"
    if pack_file.is_file():
        doc = read_yaml(pack_file)
        if doc.problems:
            raise UsageError(str(doc.problems[0]))
        meta = doc.data if isinstance(doc.data, dict) else {}
    pack = Pack(title=str(meta.get("title", folder.name)), path=folder,
                hints=bool(meta.get("hints", True)),
                solutions=not bool(meta.get("solutions_hidden", False))
                and bool(meta.get("solutions", True)),
                seed=meta.get("seed") if isinstance(meta.get("seed"), int) else None)
    puzzles = []
    for path in puzzle_files(folder):
        if path.name in ("pack.yaml", "pack.yml"):
            continue
        try:
            puzzle = load_puzzle(path)
        except PuzzleError as exc:
            pack.problems.extend(str(p) for p in exc.problems)
            continue
        if pack.seed is not None:
            puzzle.prompts.seed = pack.seed
            puzzle.prompts.heldout_seed = pack.seed + 1
        puzzles.append(puzzle)
    order = [str(x) for x in meta.get("order", [])] if isinstance(meta.get("order"), list) else []
    rank = {pid: k for k, pid in enumerate(order)}
    puzzles.sort(key=lambda p: (rank.get(p.id, len(rank)), p.ladder, p.order, p.id))
    if not puzzles:
        raise UsageError(f"pack folder {folder} has no puzzles that load")
    return pack, puzzles


def run_app(puzzle: str | None = None, pack: str | None = None, model: str | None = None) -> int:
    """Start the game; returns the exit code."""
    circuit = None
    if puzzle and Path(puzzle).is_file():
        from engine.puzzle import read_yaml

        data = read_yaml(puzzle).data
        if isinstance(data, dict) and "questions" in data and "prompts" not in data:
            circuit, puzzle = puzzle, None
    app = LineupApp(puzzle=puzzle, pack=pack, model=model, circuit=circuit)
    result = app.run()
    return int(result or 0)
