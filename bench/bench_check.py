"""How long `lineup check` takes: cold (model load + runs), warm, and a changed circuit.

    .venv/bin/python bench/bench_check.py [--model random-gpt2|toy|smollm2] [--puzzle ID]

Each measurement runs `python -m game check --json` in a fresh process with a private
LINEUP_HOME (so "cold" really is cold) and reads the judge's own timing_s; peak RSS comes
from the child's rusage. Targets (issue 6): random-gpt2 with 32 IOI prompts, cold <= 10 s
total, a changed circuit <= 1 s of judging; the toy <= 0.5 s of judging; peak RSS <= 2 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(home: Path, puzzle: str, circuit: Path, model: str) -> tuple[dict, float, float]:
    env = {**os.environ, "LINEUP_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "game", "check", puzzle, str(circuit),
                           "--model", model, "--json"], capture_output=True, text=True,
                          cwd=ROOT, env=env)
    wall = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if done.returncode not in (0, 1):
        sys.exit(f"check failed ({done.returncode}): {done.stderr}")
    return json.loads(done.stdout), wall, max(rss, before) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="random-gpt2")
    parser.add_argument("--puzzle", default="ioi-whole-circuit")
    args = parser.parse_args()
    from engine.models import block_for_spec
    from engine.puzzle import Circuit, find_puzzle

    puzzle = find_puzzle(args.puzzle)
    block = block_for_spec(args.model) or "gpt2"
    solution = list(puzzle.models[block].solution)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        first = Path(tmp) / "first.yaml"
        first.write_text(Circuit(puzzle.id, solution).to_yaml())
        changed = Path(tmp) / "changed.yaml"
        changed.write_text(Circuit(puzzle.id, solution[:-1]).to_yaml())
        for label, path in (("cold", first), ("warm, same circuit", first),
                            ("warm, changed circuit", changed)):
            report, wall, rss = run(home, puzzle.id, path, args.model)
            t = report["timing_s"]
            rows.append((label, wall, t.get("model_load", 0), t.get("runs", 0),
                         t.get("judging", 0), rss))
    print(f"lineup check {puzzle.id} --model {args.model} ({os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f})")
    print(f"{'run':<24}{'wall s':>8}{'load s':>8}{'runs s':>8}{'judge s':>9}{'peak MB':>9}")
    for label, wall, load, runs, judging, rss in rows:
        print(f"{label:<24}{wall:>8.2f}{load:>8.2f}{runs:>8.2f}{judging:>9.2f}{rss:>9.0f}")


if __name__ == "__main__":
    main()
