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
    """One tmux session on a private server running one command; ``done`` is the file the
    command writes the game's exit code to."""

    def __init__(self, name: str, command: str, size: tuple[int, int] = (100, 30),
                 done: Path | None = None) -> None:
        self.session = f"{name}-{os.getpid()}"
        self.socket = self.session  # a private tmux server: no other tmux user can touch it
        self.done = done
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

    def wait_for(self, *texts: str, timeout: float = 60.0, every: bool = False) -> str:
        """Poll the screen until one of ``texts`` shows (all of them, with ``every``: one
        text can be drawn before the rest of its screen); fail with the screen otherwise."""
        end = time.monotonic() + timeout
        found = all if every else any
        while time.monotonic() < end:
            shown = self.screen()
            if found(t in shown for t in texts):
                return shown
            time.sleep(0.1)
        which = "all" if every else "none"
        raise AssertionError(f"{which} of {texts!r} appeared; {self.diagnosis()}; "
                             f"the screen shows:\n{self.screen()}")

    def diagnosis(self) -> str:
        """Why the screen did not change, for a failure message: the game exited (its code),
        is working (running or waiting for the disk, CPU time growing: slow, not deaf) or
        sits idle (sleeping, no CPU used: a key it was sent went nowhere)."""
        if self.done is not None and self.done.exists():
            return f"the game has exited with code {self.done.read_text().strip()}"
        try:
            shell = int(self.tmux("display-message", "-p", "-t", self.session,
                                  "#{pane_pid}").strip())
        except (subprocess.CalledProcessError, ValueError) as exc:
            return f"tmux cannot say what runs in the pane ({exc})"
        games = [pid for pid in _children(shell) if "lineup" in _cmdline(pid)]
        if not games:
            return "the game is not running and wrote no exit code"
        before = _cpu_seconds(games[0])
        time.sleep(1.0)
        after = _cpu_seconds(games[0])
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        return (f"the game (pid {games[0]}) is in state {_state(games[0])}, used "
                f"{after - before:.2f} s of CPU in the last second and {after:.1f} s in all; "
                f"load average {load}")

    def send(self, key: str, then: str | tuple[str, ...], timeout: float = 60.0) -> str:
        """Send one key, then wait for the state it leads to."""
        self.tmux("send-keys", "-t", self.session, key)
        return self.wait_for(*((then,) if isinstance(then, str) else then), timeout=timeout)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat after the command name (which may hold spaces), or [] when gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return text[text.rindex(")") + 2:].split()


def _children(pid: int) -> list[int]:
    """Every process whose parent is ``pid``."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if len(fields) > 1 and fields[1] == str(pid):
                out.append(int(entry.name))
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _state(pid: int) -> str:
    fields = _stat(pid)
    return fields[0] if fields else "gone"


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads)."""
    fields = _stat(pid)
    if len(fields) < 13:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


def start(tmp_path: Path, name: str, *, args: str = "",
          size: tuple[int, int] = (100, 30)) -> tuple[Terminal, Path]:
    env = {"LINEUP_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1",
           "TERM": "xterm-256color"}
    for keep in ("LINEUP_SMOLLM2_DIR",):
        if os.environ.get(keep):
            env[keep] = os.environ[keep]
    done = tmp_path / f"{name}-exit-code"
    exports = " ".join(f"{k}={v}" for k, v in env.items())
    # COLUMNS and LINES are dropped: under pytest, readline (imported with pdb) has set them
    # to 80 and 24 in the C environment, tmux hands them on, and the game would size itself
    # from them instead of the pane.
    command = f"env -u COLUMNS -u LINES {exports} {LINEUP} {args}; echo $? > {done}; sleep 30"
    return Terminal(name, command, size, done), done


def wait_for_exit(term: Terminal, done: Path, timeout: float = 30.0) -> str:
    end = time.monotonic() + timeout
    while not done.exists() and time.monotonic() < end:
        time.sleep(0.1)
    assert done.exists(), term.screen()
    return done.read_text().strip()


def test_play_to_verdict_and_quit(tmp_path) -> None:
    if not LINEUP.exists():
        pytest.skip(f"the lineup command is not installed next to {sys.executable}")
    term, done = start(tmp_path, "lineup-play", args="play --model toy")
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
    from engine import smollm2

    if smollm2.converted_dir() is None:
        return "SmolLM2 is not converted here (`lineup download smollm2`)"
    return None


@pytest.mark.slow
@pytest.mark.parametrize("puzzle_id", ["induction-previous-token", "ioi-name-mover",
                                       "docstring-fetch-argument"])
def test_a_newcomer_plays_the_first_puzzles_on_smollm2(tmp_path, puzzle_id) -> None:
    """A newcomer's first minutes on the real SmolLM2: `lineup play` the first puzzle of a
    ladder (the docstring ladder's too, found on SmolLM2 itself), place the reference one
    dialog step at a time, check, read "Solved!"."""
    from engine.puzzle import find_puzzle

    why = smollm2_ready()
    if why:
        pytest.skip(why)
    if not LINEUP.exists():
        pytest.skip(f"the lineup command is not installed next to {sys.executable}")
    puzzle = find_puzzle(puzzle_id)
    if "smollm2" not in puzzle.models:
        pytest.skip(f"{puzzle_id} has no smollm2 block yet (locked on SmolLM2)")
    term, done = start(tmp_path, f"lineup-{puzzle_id}",
                       args=f"play {puzzle_id} --model smollm2", size=(120, 40))
    try:
        # The footer ("Add question") can be drawn before the title and the line of people.
        shown = term.wait_for("Add question", puzzle.title, every=True)
        # the game fills the pane, not 80 columns (tmux drops a line's trailing blanks, so
        # the widest line may end a column short of 120)
        assert max(len(line) for line in shown.splitlines()) > 110
        for key, then in question_keys(puzzle_id, "smollm2"):
            term.send(key, then)
        shown = term.send("c", ("Solved!", "Not yet."), timeout=900)
        assert "Solved!" in shown, shown
        assert "faithfulness" in shown
        assert "Traceback" not in shown
        term.send("Escape", "Add question")
        term.send("Escape", "Stars:")
        term.tmux("send-keys", "-t", term.session, "q")
        assert wait_for_exit(term, done) == "0"
    finally:
        term.close()
