"""Patching-grid speed against TransformerLens 4.x, on random GPT-2 (124M, real tokenizer).

Run: .venv/bin/python bench/bench_patching.py   (needs the bench extra: transformer-lens)

Prints a markdown table of seconds and ratios measured in this one run, for bench/RESULTS.md:
TransformerLens's get_act_patch_attn_head_out_all_pos vs Lineup's exact grid on 1 and 8 IOI
prompts (with the max difference between them), the issue's floor for an exact grid (one
patched run per head, each only from its own layer on, without unembedding: 144 x the mean
share of layers x one plain forward), and the attribution-patching estimate with its
correlation to the exact grid.
"""

from __future__ import annotations

import functools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from bench.tl_compare import (
    IOI_ANSWERS_8,
    IOI_CLEAN_8,
    IOI_CORRUPTED_8,
    boot_bridge,
    tl_head_grid,
)
from engine.hooks import forward
from engine.interventions import LogitDiff, attribution_patch_grid, head_patch_grid
from engine.models import load_model


def timed(fn, *args):
    start = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - start


def main() -> None:
    lm = load_model("random-gpt2", device="cpu")
    bridge = boot_bridge(lm)
    rows = []
    for n in (1, 8):
        clean = lm.tokenize(IOI_CLEAN_8[:n])
        corrupted = lm.tokenize(IOI_CORRUPTED_8[:n])
        answers = IOI_ANSWERS_8[:n]
        metric = LogitDiff([lm.token_id(a) for a, _ in answers],
                           [lm.token_id(b) for _, b in answers])
        theirs, tl_s = timed(tl_head_grid, bridge, clean.ids, corrupted.ids, metric)
        ours, ours_s = timed(head_patch_grid, lm, corrupted, clean, metric)
        approx, attr_s = timed(attribution_patch_grid, lm, corrupted, clean, metric)
        with torch.inference_mode():
            forward(lm, corrupted, logits="none")  # warm-up
            _, plain_s = timed(functools.partial(forward, logits="none"), lm, corrupted)
        layers = lm.n_layers
        floor_s = plain_s * lm.n_heads * sum(layers - layer for layer in range(layers)) / layers
        corr = torch.corrcoef(torch.stack([ours.flatten(), approx.flatten()]))[0, 1].item()
        rows.append({
            "prompts": n, "tl_s": tl_s, "ours_s": ours_s, "speedup": tl_s / ours_s,
            "max_diff": (theirs.cpu() - ours).abs().max().item(), "plain_forward_s": plain_s,
            "floor_s": floor_s, "over_floor": ours_s / floor_s, "attr_s": attr_s,
            "attr_speedup": ours_s / attr_s, "attr_corr": corr,
        })
    print("| prompts | TransformerLens s | Lineup exact s | speed-up | max abs diff | "
          "floor s | Lineup / floor | attribution s | "
          "exact / attribution | attribution corr |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['prompts']} | {r['tl_s']:.2f} | {r['ours_s']:.2f} | {r['speedup']:.1f}x | "
              f"{r['max_diff']:.1e} | {r['floor_s']:.2f} | {r['over_floor']:.2f} | "
              f"{r['attr_s']:.2f} | {r['attr_speedup']:.0f}x | {r['attr_corr']:.3f} |")


if __name__ == "__main__":
    main()
