"""Do the judge's verdicts on each reference solution change with the prompts' seed?

    .venv/bin/python bench/seed_stability.py [--models toy,planted-gpt2,smollm2]
        [--seeds 5] [--json OUT] [--puzzle ID ...]

Why: a verdict is a claim about the model, not about 32 sampled sentences. Each puzzle's
reference (its placed questions, the givens added by the judge) is graded on ``--seeds``
prompt seeds (the puzzle's own play and held-out seeds, then each shifted by 1000, 2000,
...), with the puzzle's own prompt counts, and the script prints, per model block and puzzle,
the stars on each seed and how many questions got more than one verdict across the seeds.

``planted-gpt2`` grades the gpt2 blocks (its heads sit where GPT-2's are; greater-than is
not planted); ``toy`` each puzzle's own toy; ``smollm2`` is skipped when not converted.
Set ``LINEUP_HOME`` to a fresh folder to measure without any cached runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SEED_STEP = 1000
PLANTED_SKIP = {"greater-than"}  # nothing of it is planted


def reseeded(puzzle, k: int):
    """The puzzle with its play and held-out seeds shifted by ``k * SEED_STEP``."""
    p = puzzle.prompts
    return dataclasses.replace(puzzle, prompts=dataclasses.replace(
        p, seed=p.seed + k * SEED_STEP, heldout_seed=p.heldout_seed + k * SEED_STEP))


def run_model(spec: str, seeds: int, only: list[str]) -> list[dict]:
    from engine.judge import grade, load_for, model_spec_for
    from engine.puzzle import Circuit, load_all

    loaded: dict[str, object] = {}

    block_name = "gpt2" if spec.startswith("planted") else spec
    rows = []
    for puzzle in sorted(load_all(), key=lambda p: p.id):
        if only and puzzle.id not in only:
            continue
        block = puzzle.block(block_name)
        if block is None or not block.solution:
            continue
        if spec.startswith("planted") and puzzle.ladder not in ("ioi", "induction"):
            continue
        name = model_spec_for(puzzle, spec)
        lm = loaded.get(name) or loaded.setdefault(name, load_for(puzzle, spec))
        placed = [q for q in block.solution if q not in block.given]
        stars, verdicts, seconds = [], [], []
        for k in range(seeds):
            t = time.perf_counter()
            report = grade(reseeded(puzzle, k), Circuit(puzzle.id, placed), lm)
            seconds.append(time.perf_counter() - t)
            stars.append(report.stars)
            verdicts.append({f"{q.round} {q.asker} {q.card} {q.responder or ''}".strip():
                             q.verdict for q in report.questions})
        keys = sorted({key for v in verdicts for key in v})
        changed = {key: [v.get(key, "-") for v in verdicts] for key in keys
                   if len({v.get(key, "-") for v in verdicts}) > 1}
        rows.append({"model": spec, "puzzle": puzzle.id, "stars": stars,
                     "stars_changed": len(set(stars)) > 1,
                     "questions": len(keys), "verdicts_changed": changed,
                     "seconds": round(sum(seconds), 1)})
        print(_line(rows[-1]), flush=True)
    return rows


def _line(row: dict) -> str:
    mode = Counter(row["stars"]).most_common(1)[0][0]
    off = sum(s != mode for s in row["stars"])
    changed = "; ".join(f"{k}: {'/'.join(v)}" for k, v in row["verdicts_changed"].items())
    return (f"| {row['model']} | {row['puzzle']} | {' '.join(map(str, row['stars']))} | {off} | "
            f"{len(row['verdicts_changed'])}/{row['questions']} | {changed or '-'} |")


HEADER = ("| model | puzzle | stars per seed | seeds off the usual stars | questions whose "
          "verdict changes | which (verdict per seed) |\n| --- | --- | --- | --- | --- | --- |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="toy,planted-gpt2,smollm2")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--puzzle", action="append", default=[])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    from engine.smollm2 import converted_dir

    print(HEADER, flush=True)
    rows: list[dict] = []
    for spec in args.models.split(","):
        if spec == "smollm2" and converted_dir() is None:
            print(f"| {spec} | (not converted here: skipped) | | | | |", flush=True)
            continue
        rows += run_model(spec, args.seeds, args.puzzle)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
