"""The engine on the real trained model, SmolLM2-135M, checked against plain Hugging Face.

These run wherever SmolLM2 is converted (`make test` fetches and converts it; CI does too)
and skip with a reason elsewhere.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from bench.hf_loop import hf_head_grid
from engine.interventions import LogitDiff


@pytest.fixture(scope="module")
def smollm2():
    from engine.models import load_model
    from engine.smollm2 import converted_dir

    if converted_dir() is None:
        pytest.skip("SmolLM2 is not converted here (`lineup download smollm2`)")
    return load_model("smollm2", device="cpu")


@pytest.mark.slow
def test_lineup_patch_equals_plain_hf_pre_hooks(smollm2):
    """`lineup patch ... --json` against a grid computed with plain HF modules only."""
    lm = smollm2
    out = subprocess.run([sys.executable, "-m", "game", "patch", "ioi-whole-circuit", "--model",
                          "smollm2", "--count", "8", "--json"],
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert len(report["prompts"]) == 8
    ours = torch.tensor(report["effects"])
    clean, corrupted = lm.tokenize(report["prompts"]), lm.tokenize(report["corrupted"])
    assert clean.lengths == corrupted.lengths
    correct = [lm.token_id(io) for io, _ in report["answers"]]
    wrong = [lm.token_id(s) for _, s in report["answers"]]
    theirs = hf_head_grid(lm.model, corrupted.ids, clean.ids, LogitDiff(correct, wrong),
                          n_heads=lm.n_heads, d_head=lm.d_head, last=corrupted.last)
    assert ours.shape == theirs.shape == (30, 9)
    assert (ours - theirs).abs().max() <= 1e-3
    assert ours.std() > 0.05  # a real model's grid is not flat
    assert report["clean_metric"] > report["corrupted_metric"] + 1  # SmolLM2 does IOI


def _independent_induction_scores(model, vocab: int, *, half: int = 20, n: int = 6):
    """Mean attention from each token of a repeated random sequence's second copy to the
    token after its first occurrence, with HF's own eager attentions: [layer, head]."""
    generator = torch.Generator().manual_seed(1234)
    first = torch.randint(1000, vocab - 1000, (n, half), generator=generator)
    ids = torch.cat([first, first], dim=1)
    with torch.inference_mode():
        attentions = model(ids, output_attentions=True).attentions
    second = torch.arange(half, 2 * half)
    return torch.stack([a[:, :, second, second - half + 1].mean(dim=(0, 2)) for a in attentions])


@pytest.mark.slow
def test_heads_json_lists_every_head_and_finds_the_same_induction_heads(smollm2):
    out = subprocess.run([sys.executable, "-m", "game", "heads", "--model", "smollm2", "--json"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert len(rows) == 270
    assert {r["head_id"] for r in rows} == {f"L{la}H{h}" for la in range(30) for h in range(9)}
    ours = [r["head_id"] for r in sorted(rows, key=lambda r: -r["induction"])]
    scores = _independent_induction_scores(smollm2.model, smollm2.config.vocab_size)
    order = scores.flatten().argsort(descending=True).tolist()
    theirs = [f"L{i // 9}H{i % 9}" for i in order]
    assert set(ours[:3]) <= set(theirs[:6]) and set(theirs[:3]) <= set(ours[:6])
    assert scores.max() > 0.5  # the model really has induction heads
