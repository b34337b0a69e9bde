"""How long each of the game's tools takes on a model that is already loaded: the time to
its first picture and to its exact grid, through the same ``game.engine_bridge.Engine`` calls
the screens make. Run ``.venv/bin/python bench/bench_tools.py [--model smollm2] [--prompts N]``;
it prints a Markdown table for bench/RESULTS.md and the load average, so a busy machine shows.
"""

from __future__ import annotations

import argparse
import os
import time

from engine.patching import KINDS

IOI = "When Mary and John went to the store, John gave a drink to"


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--puzzle", default="ioi-name-mover")
    parser.add_argument("--prompts", type=int, default=None,
                        help="prompts per grid (default: the game's, prompts_for)")
    args = parser.parse_args()

    import torch

    from engine.puzzle import find_puzzle
    from game.engine_bridge import Engine, prompts_for

    puzzle = find_puzzle(args.puzzle)
    engine = Engine(args.model, device="cpu")
    load_s, lm = timed(engine.lm, puzzle)
    args.prompts = args.prompts or prompts_for(lm.facts.heads)
    engine.lens(IOI, puzzle=puzzle)  # warm-up: first-call allocations are not a tool's cost
    rows: list[tuple[str, float, float | None]] = []
    rows.append(("think now (logit lens), one sentence", timed(engine.lens, IOI, k=3,
                                                                puzzle=puzzle)[0], None))
    rows.append(("who answers, one head", timed(engine.attention, IOI, 20, 0,
                                                 puzzle=puzzle)[0], None))
    tokens = lm.tokenize([IOI]).lengths[0]
    rows.append(("who answers: find (rank every head)",
                 timed(engine.listeners, IOI, tokens - 1, 1, puzzle=puzzle)[0], None))
    for at in KINDS:
        # the screen's first picture is the attribution estimate, then the exact grid
        first = timed(engine.patch, puzzle, at, n=args.prompts, estimate=True)[0]
        exact = timed(engine.patch, puzzle, at, n=args.prompts)[0]
        print(f"{at}: first {first:.2f} s, exact {exact:.2f} s", flush=True)
        rows.append((f"swap: {at} grid, {args.prompts} prompts", first, exact))
    load = os.getloadavg()
    print(f"model {lm.label}; {lm.facts.shape()}; torch threads {torch.get_num_threads()}; "
          f"load {load_s:.2f} s; load average before/after: see below")
    print()
    print("| tool | first picture s | exact s |")
    print("|---|---|---|")
    for name, first_s, exact_s in rows:
        print(f"| {name} | {first_s:.2f} | {'' if exact_s is None else f'{exact_s:.2f}'} |")
    print()
    print(f"load average (1, 5, 15 min) at the end: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}")


if __name__ == "__main__":
    main()
