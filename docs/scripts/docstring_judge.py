"""What the judge says about candidate circuits of the docstring ladder on SmolLM2-135M.

Prints, for each circuit below, whether it is solved, its stars and faithfulness (play
prompts; held-out when the play prompts pass), and each question's verdict, heads, effect and
message: the references, the reference with a step left out, and the questions the judge
refuses (END asking the described names in layers 16-20, the negative copier 23.3).

The first grade of a puzzle runs the model on its prompts (about a minute on two cores); the
rest reuse those runs (seconds each). 8.5 minutes in all on a loaded two-core machine.

    HF_HUB_OFFLINE=1 .venv/bin/python docs/scripts/docstring_judge.py
"""

from __future__ import annotations

import copy
import os
import sys
import time
from dataclasses import replace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
WHOLE = "docstring-whole-circuit"


def main() -> None:
    from engine.judge import grade
    from engine.models import load_model
    from engine.puzzle import Circuit, Question, find_puzzle

    lm = load_model("smollm2", device="cpu")
    q = Question
    # The withdrawn puzzle 3 (docs/smollm2-circuits.md, section 9): puzzle 2 with its own
    # prompt seeds, nothing given, and pass lines 0.40 / 0.35.
    whole = copy.deepcopy(find_puzzle("docstring-already-described"))
    whole.id = WHOLE
    whole.prompts.seed, whole.prompts.heldout_seed = 921, 922
    block = whole.models["smollm2"]
    block.given = []
    block.thresholds = replace(block.thresholds, faithfulness=0.40, heldout=0.35)

    def show(pid: str, questions: list[Question], *, rounds: dict | None = None) -> None:
        puzzle = whole if pid == WHOLE else find_puzzle(pid)
        if rounds is not None:  # the same prompts with other rounds (a what-if, not shipped)
            puzzle = copy.deepcopy(puzzle)
            block = puzzle.models["smollm2"]
            block.rounds, block.kept = rounds["rounds"], rounds["kept"]
        t0 = time.perf_counter()
        r = grade(puzzle, Circuit(pid, questions), lm)
        held = "-" if r.heldout_faithfulness is None else f"{r.heldout_faithfulness:.2f}"
        print(f"== {pid}: {', '.join(str(x) for x in questions)}")
        print(f"   solved {r.solved}, {r.stars} stars, faithfulness {r.faithfulness:.2f} "
              f"(held-out {held}), metric full {r.metric_full:.2f}, every head silenced "
              f"{r.metric_ablated:.2f} ({time.perf_counter() - t0:.0f} s)")
        for x in r.questions:
            heads = ", ".join(h.head for h in x.heads[:8])
            print(f"   {x.round} {x.asker} {x.card} {x.responder or ''}: {x.verdict}, "
                  f"effect {x.effect:.2f}, heads {heads or '-'}")
            print(f"      {x.message}")
        sys.stdout.flush()

    fetch = q("late", "END", "name-mover", "C")
    dup_b = q("early", "B2", "duplicate-token", "B1")
    dup_a = q("early", "A2", "duplicate-token", "A1")
    sceptic = q("late", "END", "negative-name-mover", "B2")
    show("docstring-fetch-argument", [fetch])
    show("docstring-fetch-argument", [q("late", "END", "copy", "C")])
    show("docstring-fetch-argument", [fetch, sceptic])
    show("docstring-already-described", [dup_b, fetch])
    show("docstring-whole-circuit", [dup_b, fetch])
    show("docstring-whole-circuit", [fetch])
    show("docstring-whole-circuit", [dup_b, dup_a, fetch])
    show("docstring-whole-circuit", [dup_b, fetch, sceptic])
    # the layers the ladder keeps (16-20), played as a round of their own
    middle = {"rounds": {"middle": (16, 20), "late": (21, 29)}, "kept": [(0, 15)]}
    show("docstring-whole-circuit",
         [q("middle", "END", "copy", "C"), q("middle", "END", "s-inhibition", "B2"),
          fetch, sceptic], rounds=middle)
    show("docstring-whole-circuit", [q("middle", "END", "name-mover", "C"), fetch],
         rounds=middle)


if __name__ == "__main__":
    main()
