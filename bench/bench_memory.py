"""Peak memory of a forward that records only attention patterns, 32 IOI prompts, random GPT-2.

Run: .venv/bin/python bench/bench_memory.py
Each measurement runs in a fresh process so the peak belongs to it alone (ru_maxrss).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
from engine.models import load_model
from engine.hooks import run_with_cache
lm = load_model("random-gpt2", device="cpu")
loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
names = ["John", "Mary", "Tom", "Anna", "Paul", "Kate", "Mark", "Lisa"]
texts = [f"When {{a}} and {{b}} went to the store, {{a}} gave a drink to"
         for a in names for b in names if a != b][:32]
start = time.perf_counter()
logits, cache = run_with_cache(lm, lm.tokenize(texts), names=["pattern"], logits="last")
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"after_load_mb": loaded / 1024, "peak_mb": peak / 1024,
                  "forward_s": seconds, "prompts": len(texts), "entries": len(cache)}}))
"""


def main() -> None:
    out = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT))],
                         capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print("| prompts | RSS after model load MB | peak RSS MB | forward s |")
    print("|---|---|---|---|")
    print(f"| {result['prompts']} | {result['after_load_mb']:.0f} | {result['peak_mb']:.0f} | "
          f"{result['forward_s']:.2f} |")


if __name__ == "__main__":
    main()
