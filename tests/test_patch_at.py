"""`lineup patch --at query|key|value` and `--silence` against independent computations.

The references use plain Hugging Face only: the model's own ``forward``, with a forward hook
on each layer's query projection (Llama ``q_proj``) or fused q/k/v projection (GPT-2
``c_attn``) that puts one head's slice of the clean run's output into the corrupted run at
every position. No engine code is on the reference path: prompts and answers come from the
command's own JSON, tokenized by the model's tokenizer."""

from __future__ import annotations

import json

import pytest
import torch

from tests.cli import lineup

PART = {"query": 0, "key": 1, "value": 2}


def patch_json(*args: str) -> dict:
    result = lineup("patch", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def right_padded(tokenizer, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    rows = [tokenizer.encode(t, add_special_tokens=False) for t in texts]
    ids = torch.zeros(len(rows), max(map(len, rows)), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
    return ids, torch.tensor([len(r) - 1 for r in rows])


def hf_fractions(model, tokenizer, report: dict, projections, slice_of) -> torch.Tensor:
    """[layer, head]: the share of the clean-minus-corrupted logit difference that one head's
    slice of ``projections[layer]``'s output, taken from the clean run, brings back to the
    corrupted run. ``slice_of(head)`` gives that head's columns of the output."""
    clean, last = right_padded(tokenizer, report["prompts"])
    corrupted, last_c = right_padded(tokenizer, report["corrupted"])
    assert torch.equal(last, last_c) and clean.shape == corrupted.shape
    rows = torch.arange(len(last))
    io = torch.tensor([tokenizer.encode(a, add_special_tokens=False)[0]
                       for a, _ in report["answers"]])
    s = torch.tensor([tokenizer.encode(b, add_special_tokens=False)[0]
                      for _, b in report["answers"]])

    def logit_diff(ids: torch.Tensor) -> float:
        with torch.inference_mode():
            logits = model(ids).logits[rows, last]
        return float((logits[rows, io] - logits[rows, s]).mean())

    seen: list[torch.Tensor] = []
    handles = [p.register_forward_hook(lambda _m, _a, out: seen.append(out.clone()))
               for p in projections]
    m_clean = logit_diff(clean)
    for h in handles:
        h.remove()
    m_corrupted = logit_diff(corrupted)
    n_heads = len(report["effects"][0])
    grid = torch.empty(len(projections), n_heads)
    for layer, proj in enumerate(projections):
        for head in range(n_heads):
            cols = slice_of(head)

            def swap(_module, _args, out, layer=layer, cols=cols):
                out = out.clone()
                out[..., cols] = seen[layer][..., cols]
                return out

            handle = proj.register_forward_hook(swap)
            try:
                grid[layer, head] = logit_diff(corrupted)
            finally:
                handle.remove()
    assert abs(report["clean_metric"] - m_clean) < 1e-3
    assert abs(report["corrupted_metric"] - m_corrupted) < 1e-3
    return (grid - m_corrupted) / (m_clean - m_corrupted)


@pytest.mark.slow
def test_query_patching_on_smollm2_equals_q_proj_hooks(smollm2_lm):
    from transformers import AutoTokenizer

    report = patch_json("ioi-name-mover", "--model", "smollm2", "--count", "4", "--at", "query")
    assert report["at"] == "query" and report["position"] == "*"
    assert len(report["prompts"]) == 4
    model = smollm2_lm.model
    tokenizer = AutoTokenizer.from_pretrained(str(smollm2_lm.path), local_files_only=True)
    d_head = model.config.head_dim
    theirs = hf_fractions(model, tokenizer, report,
                          [layer.self_attn.q_proj for layer in model.model.layers],
                          lambda h: slice(h * d_head, (h + 1) * d_head))
    ours = torch.tensor(report["fractions"])
    assert ours.shape == theirs.shape == (30, 9)
    assert (ours - theirs).abs().max() <= 1e-3
    assert ours.abs().max() > 0.05  # some question matters: the grid is not flat


@pytest.mark.slow
@pytest.mark.parametrize("at", ["query", "key", "value"])
def test_qkv_patching_on_random_gpt2_equals_c_attn_hooks(at, random_gpt2):
    report = patch_json("ioi-name-mover", "--model", "random-gpt2", "--count", "2", "--at", at)
    model = random_gpt2.model
    d_model, d_head = model.config.n_embd, model.config.n_embd // model.config.n_head
    offset = PART[at] * d_model
    theirs = hf_fractions(model, random_gpt2.tokenizer, report,
                          [block.attn.c_attn for block in model.transformer.h],
                          lambda h: slice(offset + h * d_head, offset + (h + 1) * d_head))
    ours = torch.tensor(report["fractions"])
    assert ours.shape == theirs.shape == (12, 12)
    assert (ours - theirs).abs().max() <= 1e-3


def test_report_says_where_and_reads_the_strongest_cell():
    report = patch_json("ioi-name-mover", "--model", "toy", "--count", "8", "--at", "query",
                        "--pos", "END")
    assert report["position"] == "END"
    fractions = torch.tensor(report["fractions"])
    layer, head = divmod(int(fractions.argmax()), fractions.shape[1])
    pct = round(100 * float(fractions.max()))
    assert report["reading"] == (f"swapping what {layer}.{head} asks at END brings back "
                                 f"{pct}% of the gap")
    effects = torch.tensor(report["effects"])
    gap = report["clean_metric"] - report["corrupted_metric"]
    assert torch.allclose((effects - report["corrupted_metric"]) / gap, fractions, atol=1e-3)


def test_silence_is_the_judges_mean_ablation_one_head_at_a_time():
    """Each cell equals the judge's runner with that one head ablated over its means (the
    corrupted run's, per template and position): the same definition, not a copy."""
    from engine.interventions import Edit, run_edits
    from engine.judge.runs import _load_split
    from engine.models import load_model
    from engine.puzzle import find_puzzle
    from game.engine_bridge import first_prompts

    report = patch_json("ioi-name-mover", "--model", "toy", "--count", "8", "--silence")
    assert report["at"] == "silence"
    puzzle = find_puzzle("ioi-name-mover")
    lm = load_model(report["model"], device="cpu")
    ps = first_prompts(puzzle.build_prompts(lm.tokenizer, "play"), 8)
    split, _ = _load_split(lm, ps, list(puzzle.roles), play=False, cancelled=None)

    state = split.state()
    edits = [Edit.of(ablate=[(layer, h)]) for layer in range(lm.n_layers)
             for h in range(lm.n_heads)]
    expected = run_edits(lm, state, edits).mean(1).view(lm.n_layers, lm.n_heads)
    assert torch.allclose(torch.tensor(report["effects"]), expected, atol=1e-4)
    assert report["reading"].startswith("silencing ")


def test_svg_writes_the_same_picture(tmp_path):
    svg = tmp_path / "grid.svg"
    result = lineup("patch", "ioi-name-mover", "--model", "toy", "--count", "4", "--at",
                    "resid", "--svg", str(svg))
    assert result.returncode == 0, result.stderr
    text = svg.read_text()
    assert text.startswith("<svg") and "share" in text and "END" in text
    assert "swapping person" in result.stdout and "before layer" in result.stdout


def test_pos_must_name_a_person():
    result = lineup("patch", "ioi-name-mover", "--model", "toy", "--pos", "NOBODY")
    assert result.returncode == 2
    assert "no person called 'NOBODY'" in result.stderr and "END" in result.stderr


@pytest.mark.parametrize("which", ["q", "k", "v"])
def test_attribution_estimate_adds_up_over_positions(which, random_gpt2):
    """The first-order estimate is linear in the patch: swapping at every position moves the
    metric by the sum of what swapping at each position alone moves it (per head)."""
    from engine.interventions import LogitDiff, attribution_patch_grid

    lm = random_gpt2
    clean = lm.tokenize(["When Mary and John went to the store, John gave"])
    corrupted = lm.tokenize(["When Anna and Paul went to the store, Paul gave"])
    metric = LogitDiff([lm.token_id(" Mary")], [lm.token_id(" John")])
    every = attribution_patch_grid(lm, corrupted, clean, metric, which=which)
    base = attribution_patch_grid(lm, corrupted, corrupted, metric, which=which)
    parts = sum(attribution_patch_grid(lm, corrupted, clean, metric, which=which,
                                       positions=[p]) - base
                for p in range(clean.lengths[0]))
    assert torch.allclose(every - base, parts, atol=1e-3)
    assert (every - base).abs().max() > 1e-4


# A tiny random Llama is too small for a first-order picture of swapping a whole person (one
# token swapped is a change as large as the residual stream itself); its silence grid,
# where each change is one head's share, is still tested.
@pytest.mark.parametrize(("at", "model"), [("resid", "random_gpt2"), ("silence", "random_gpt2"),
                                           ("silence", "tiny_llama_dir")])
def test_first_estimate_of_person_and_silence_grids_tracks_the_exact_grid(at, model, request):
    """The screens' first picture for "swap a person" and "silence a question": the
    attribution estimate has the exact grid's shape and columns, starts from the same clean
    and corrupted figures, and follows the exact cells (it is exact to first order)."""
    from engine.models import load_model
    from engine.patching import puzzle_patch
    from engine.puzzle import find_puzzle

    lm = request.getfixturevalue(model)
    if model == "tiny_llama_dir":  # a Llama-family checkpoint with a tokenizer
        lm = load_model(str(lm), device="cpu")
    puzzle = find_puzzle("ioi-name-mover")
    exact = puzzle_patch(puzzle, lm, at=at, count=4)
    first = puzzle_patch(puzzle, lm, at=at, count=4, estimate=True)
    assert first.estimate and not exact.estimate
    assert first.columns == exact.columns and first.layers == exact.layers
    assert first.clean_metric == pytest.approx(exact.clean_metric, abs=1e-4)
    assert first.corrupted_metric == pytest.approx(exact.corrupted_metric, abs=1e-4)
    e, f = torch.tensor(exact.effects), torch.tensor(first.effects)
    baseline = exact.clean_metric if at == "silence" else exact.corrupted_metric
    assert (e - baseline).abs().max() > 1e-3, "the grid moves nothing: nothing to compare"
    corr = torch.corrcoef(torch.stack([e.flatten(), f.flatten()]))[0, 1]
    assert corr > 0.8, f"estimate and exact grid correlate only {corr:.2f}"
