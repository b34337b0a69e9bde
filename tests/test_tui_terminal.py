"""The installed `lineup` in a real terminal (tmux): play puzzles to a verdict, quit.

Every key waits for the screen state it needs (polling ``capture-pane`` until the expected
text appears, with a timeout) before it is sent: no fixed sleeps, so a loaded machine only
makes the test slower, never wrong.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux is not installed (CI installs it)")

LINEUP = Path(sys.executable).with_name("lineup")


class Terminal:
    """One tmux session on a private server running one command."""

    def __init__(self, name: str, command: str, size: tuple[int, int] = (100, 30)) -> None:
        self.session = f"{name}-{os.getpid()}"
        self.socket = self.session  # a private tmux server: no other tmux user can touch it
        self.tmux("new-session", "-d", "-s", self.session, "-x", str(size[0]), "-y",
                  str(size[1]), command)

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True,
                              text=True, check=True).stdout

    def screen(self) -> str:
        try:
            return self.tmux("capture-pane", "-p", "-t", self.session)
        except subprocess.CalledProcessError as exc:
            return f"(tmux could not show the pane: {exc.stderr.strip()})"

    def wait_for(self, *texts: str, timeout: float = 60.0) -> str:
        """Poll the screen until one of ``texts`` shows; fail with the screen otherwise."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            shown = self.screen()
            if any(t in shown for t in texts):
                return shown
            time.sleep(0.1)
        raise AssertionError(f"none of {texts!r} appeared; the screen shows:\n{self.screen()}")

    def send(self, key: str, then: str | tuple[str, ...], timeout: float = 60.0) -> str:
        """Send one key, then wait for the state it leads to."""
        self.tmux("send-keys", "-t", self.session, key)
        return self.wait_for(*((then,) if isinstance(then, str) else then), timeout=timeout)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


def question_keys(puzzle_id: str, block: str) -> list[tuple[str, str]]:
    """(key, text the screen shows next) for placing a puzzle's reference questions that are
    not given, through the add dialog."""
    from engine.puzzle import CARDS, find_puzzle
    from game.views import line_of

    puzzle = find_puzzle(puzzle_id)
    line = line_of(puzzle)
    spec = puzzle.models[block]
    people = sorted(line.roles, key=line.roles.__getitem__)
    count = len(spec.given)
    out: list[tuple[str, str]] = []
    for q in spec.solution:
        if q in spec.given:
            continue
        count += 1
        placed = f"{count} question{'s' if count != 1 else ''}"
        needs = CARDS[q.card].responder
        out += [("a", "In which round?"),
                (str(list(spec.rounds).index(q.round) + 1), "Who asks?"),
                (str(people.index(q.asker) + 1), f"What does {q.asker} ask?"),
                (str(puzzle.cards.index(q.card) + 1), "Who answers?" if needs else placed)]
        if needs:
            behind = [n for n in people if line.roles[n] < line.roles[q.asker]]
            out.append((str(behind.index(q.responder) + 1), placed))
    return out


def real_engine_ready() -> bool:
    from engine.models import toy_names

    return bool(toy_names())


def start(tmp_path: Path, name: str, *, args: str = "", fake: bool = False,
          size: tuple[int, int] = (100, 30)) -> tuple[Terminal, Path]:
    env = {"LINEUP_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1",
           "TERM": "xterm-256color"}
    if fake:
        env["LINEUP_ENGINE"] = "fake"
    for keep in ("LINEUP_SMOLLM2_DIR",):
        if os.environ.get(keep):
            env[keep] = os.environ[keep]
    done = tmp_path / f"{name}-exit-code"
    exports = " ".join(f"{k}={v}" for k, v in env.items())
    command = f"env {exports} {LINEUP} {args}; echo $? > {done}; sleep 30"
    return Terminal(name, command, size), done


def wait_for_exit(term: Terminal, done: Path, timeout: float = 30.0) -> str:
    end = time.monotonic() + timeout
    while not done.exists() and time.monotonic() < end:
        time.sleep(0.1)
    assert done.exists(), term.screen()
    return done.read_text().strip()


def test_play_to_verdict_and_quit(tmp_path) -> None:
    if not LINEUP.exists():
        pytest.skip(f"the lineup command is not installed next to {sys.executable}")
    real = real_engine_ready()  # the toy model: the fake engine when it is not built
    term, done = start(tmp_path, "lineup-play", fake=not real,
                       args="play --model toy" if real else "")
    try:
        term.wait_for("Stars:")
        term.send("Down", "2. Last time, what came next?")
        term.send("Enter", "Add question")
        for key, then in question_keys("induction-head", "toy"):
            term.send(key, then)
        shown = term.send("c", "Solved!", timeout=300)
        assert "★★★" in shown
        term.send("Escape", "Add question")
        term.send("Escape", "Stars: 3")
        term.tmux("send-keys", "-t", term.session, "q")
        assert wait_for_exit(term, done) == "0"
        assert "Traceback" not in term.screen()
    finally:
        term.close()


def smollm2_ready() -> str | None:
    try:
        from engine import smollm2
    except ImportError:
        return "engine.smollm2 is not there"
    if smollm2.converted_dir() is None:
        return "SmolLM2 is not converted here (`lineup download smollm2`)"
    return None


@pytest.mark.slow
@pytest.mark.parametrize("puzzle_id", ["induction-previous-token", "ioi-name-mover"])
def test_a_newcomer_plays_the_first_puzzles_on_smollm2(tmp_path, puzzle_id) -> None:
    """A newcomer's first minutes on the real SmolLM2: `lineup play` the first puzzle of a
    ladder, place the questions one dialog step at a time, check, read the verdict."""
    from engine.puzzle import find_puzzle

    why = smollm2_ready()
    if why:
        pytest.skip(why)
    if not os.environ.get("LINEUP_NEWCOMER_TEST"):
        # One CI run in two lost the first key sent while SmolLM2 loaded in the background
        # (the add dialog never opened): kept out of CI until that is understood.
        pytest.skip("set LINEUP_NEWCOMER_TEST=1 to play the SmolLM2 newcomer run in tmux")
    if not LINEUP.exists():
        pytest.skip(f"the lineup command is not installed next to {sys.executable}")
    puzzle = find_puzzle(puzzle_id)
    if "smollm2" not in puzzle.models:
        pytest.skip(f"{puzzle_id} has no smollm2 block yet (locked on SmolLM2)")
    term, done = start(tmp_path, f"lineup-{puzzle_id}",
                       args=f"play {puzzle_id} --model smollm2", size=(120, 40))
    try:
        term.wait_for("Add question")
        assert puzzle.title in term.screen()
        for key, then in question_keys(puzzle_id, "smollm2"):
            term.send(key, then)
        shown = term.send("c", ("Solved!", "Not yet."), timeout=900)
        assert "faithfulness" in shown
        assert "Traceback" not in shown
        term.send("Escape", "Add question")
        term.send("Escape", "Stars:")
        term.tmux("send-keys", "-t", term.session, "q")
        assert wait_for_exit(term, done) == "0"
    finally:
        term.close()
