"""How fast the game feels: time to the first frame of `lineup`, and a toy check from the key
press to the verdict. Prints the figures; run with `.venv/bin/python bench/bench_tui.py`.

First frame: a fresh Python process is started and timed until the menu has been painted
(the app's own after-first-refresh callback; headless, 80x24), so the figure includes
interpreter start-up and every import. The model then loads in a background worker; its time
is printed too. The check: the toy model, the real judge, the reference solution of
`induction-head`, timed from pressing `c` to the verdict on screen, once the background load
has finished (as when a player reads the puzzle first): first check (prompts run) and second
(cached).
"""

from __future__ import annotations

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


def main() -> None:
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
