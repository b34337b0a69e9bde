"""Run every benchmark in bench/ in turn and print their tables (for bench/RESULTS.md).

Run: make bench   (or .venv/bin/python bench/run_all.py)
Run it on a quiet machine: the figures are ratios measured in one run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = [["bench_patching.py"], ["bench_memory.py"], ["bench_check.py"],
           ["bench_check.py", "--model", "smollm2"], ["bench_smollm2.py"], ["bench_tui.py"]]


def main() -> int:
    failed = 0
    for name, *args in SCRIPTS:
        path = HERE / name
        if not path.exists():
            continue
        print(f"\n## {' '.join([name, *args])}\n", flush=True)
        result = subprocess.run([sys.executable, str(path), *args], check=False)
        failed += result.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
