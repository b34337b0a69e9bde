"""How fast the game feels: time to the first frame of `lineup`, and a toy check from the key
press to the verdict. Prints the figures; run with `.venv/bin/python bench/bench_tui.py`.

First frame: a fresh Python process is started and timed until the menu has been painted
(the app's own after-first-refresh callback; headless, 80x24), so the figure includes
interpreter start-up and every import. The model then loads in a background worker; its time
is printed too. The check: the toy model, the real judge, the reference solution of
`induction-head`, timed from pressing `c` to the verdict on screen, once the background load
has finished (as when a player reads the puzzle first): first check (prompts run) and second
(cached).

With ``--model smollm2`` (any model) it measures what issue 22 asks instead: a player opens a
puzzle, reads it for ``--wait`` seconds (30) while the game prepares the judge's runs in the
background, then presses ``c`` with the reference placed: the time from the key press to the
verdict, each trial in a fresh process with an empty LINEUP_HOME (a cold cache), median of
``--trials`` (5), and each trial's peak RSS.
"""


from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FIRST_FRAME = """
import time, sys
start = float(sys.argv[1])
import asyncio
from game.app import LineupApp
async def main():
    app = LineupApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        print(app.first_frame_at - start, app.torch_at_first_frame)
asyncio.run(main())
"""


def first_frame(runs: int = 5) -> list[float]:
    times = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", FIRST_FRAME, repr(time.time())], cwd=ROOT,
                             capture_output=True, text=True, check=True)
        seconds, torch_loaded = out.stdout.split()
        assert torch_loaded == "False", "torch was imported before the first frame"
        times.append(float(seconds))
    return times


async def toy_check() -> tuple[float, float, float, int]:
    from engine.puzzle import find_puzzle
    from game.app import LineupApp
    from game.screens.check import CheckScreen

    puzzle = find_puzzle("induction-head")
    questions = [q.as_dict() for q in puzzle.models["toy"].solution]
    app = LineupApp(model="toy")
    figures = []
    async with app.run_test(size=(100, 40)) as pilot:
        app.open_puzzle("induction-head", questions)
        await pilot.pause()
        # a player reads the puzzle first: by then the model has loaded in the background
        await app.workers.wait_for_complete()
        figures.append(app.model_loaded_after)
        for _ in range(2):
            start = time.perf_counter()
            await pilot.press("c")
            while not (isinstance(app.screen, CheckScreen) and app.screen.report is not None):
                await pilot.pause(0.01)
            figures.append(time.perf_counter() - start)
            stars = app.screen.report.stars
            await pilot.press("escape")
            await pilot.pause()
    return figures[0], figures[1], figures[2], stars


PREPARED_CHECK = """
import asyncio, resource, sys, time
from engine.models import block_for_spec
from engine.puzzle import find_puzzle
from game.app import LineupApp
from game.screens.check import CheckScreen
model, puzzle_id, wait = sys.argv[1], sys.argv[2], float(sys.argv[3])
puzzle = find_puzzle(puzzle_id)
questions = [q.as_dict() for q in puzzle.models[block_for_spec(model) or "gpt2"].solution]
async def main():
    app = LineupApp(model=model)
    async with app.run_test(size=(120, 40)) as pilot:
        app.open_puzzle(puzzle_id, questions)
        await pilot.pause()
        opened = time.perf_counter()
        while time.perf_counter() - opened < wait:
            await pilot.pause(0.5)
        start = time.perf_counter()
        await pilot.press("c")
        while not (isinstance(app.screen, CheckScreen) and app.screen.report is not None):
            await pilot.pause(0.01)
        took = time.perf_counter() - start
        print(took, app.screen.report.stars, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
              flush=True)
        app.exit()  # as q does: the background preparation stops before the process ends
        await pilot.pause()
asyncio.run(main())
"""


def prepared_check(model: str, puzzle: str, wait: float, trials: int) -> None:
    """Issue 22's in-game figure: ``c`` to verdict after ``wait`` seconds on the puzzle."""
    times, peaks = [], []
    for trial in range(trials):
        with tempfile.TemporaryDirectory(prefix="lineup-bench-") as home:
            env = {**os.environ, "LINEUP_HOME": home, "HF_HUB_OFFLINE": "1"}
            out = subprocess.run([sys.executable, "-c", PREPARED_CHECK, model, puzzle,
                                  str(wait)], cwd=ROOT, env=env, capture_output=True,
                                 text=True, check=True)
        took, stars, peak_kb = out.stdout.split()[-3:]
        times.append(float(took))
        peaks.append(int(peak_kb) / 1024)
        print(f"trial {trial + 1}: c to verdict {float(took):.2f} s, {stars} stars, "
              f"peak RSS {peaks[-1]:.0f} MB", flush=True)
    print(f"{puzzle} on {model}, c pressed {wait:.0f} s after opening: median "
          f"{statistics.median(times):.2f} s (min {min(times):.2f}, max {max(times):.2f}, "
          f"{trials} trials); peak RSS at most {max(peaks):.0f} MB; load average "
          f"{os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="measure c-to-verdict after --wait on this model")
    parser.add_argument("--puzzle", default="ioi-whole-circuit")
    parser.add_argument("--wait", type=float, default=30.0)
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    if args.model:
        prepared_check(args.model, args.puzzle, args.wait, args.trials)
        return
    os.environ.setdefault("LINEUP_HOME", tempfile.mkdtemp(prefix="lineup-bench-"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    frames = first_frame()
    print(f"first frame of lineup (fresh process, 80x24): median {statistics.median(frames):.2f} s"
          f" (min {min(frames):.2f}, max {max(frames):.2f}, {len(frames)} runs; torch not loaded)")
    loaded, first, second, stars = asyncio.run(toy_check())
    print(f"toy model loaded in the background {loaded:.2f} s after the first frame")
    print(f"toy check, key press to verdict: first {first:.2f} s (prompts run), "
          f"second {second:.2f} s (cached); {stars} stars")


if __name__ == "__main__":
    main()
