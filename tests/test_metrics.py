"""engine.metrics: the one puzzle-metric implementation (judge, lineup patch, the game)."""

from __future__ import annotations

import pytest
import torch

from engine.metrics import PuzzleMetric


def logits_for(rows: list[dict[int, float]], vocab: int = 6) -> torch.Tensor:
    out = torch.zeros(len(rows), vocab)
    for i, row in enumerate(rows):
        for token, value in row.items():
            out[i, token] = value
    return out


def test_logit_diff_is_correct_minus_wrong():
    metric = PuzzleMetric("logit_diff", [[1], [2]], [[3], [4]])
    logits = logits_for([{1: 2.0, 3: 0.5}, {2: -1.0, 4: 1.0}])
    assert metric(logits).tolist() == pytest.approx([1.5, -2.0])


def test_logprob_is_the_log_probability_of_the_correct_token():
    metric = PuzzleMetric("logprob", [[0], [5]], [[], []])
    logits = logits_for([{0: 3.0}, {5: -2.0, 1: 1.0}])
    expected = torch.log_softmax(logits, -1)[[0, 1], [0, 5]]
    assert metric(logits).tolist() == pytest.approx(expected.tolist())
    uniform = PuzzleMetric("logprob", [[2]], [[]])(torch.zeros(1, 4))
    assert float(uniform) == pytest.approx(float(torch.log(torch.tensor(0.25))))


def test_greater_than_is_mass_above_minus_mass_at_or_below():
    metric = PuzzleMetric("greater_than", [[3, 4], [4]], [[0, 1, 2], [0, 1, 2, 3]])
    logits = logits_for([{3: 1.0, 0: 0.5}, {4: 2.0}], vocab=5)
    probs = torch.softmax(logits, -1)
    expected = [float(probs[0, 3] + probs[0, 4] - probs[0, :3].sum()),
                float(probs[1, 4] - probs[1, :4].sum())]
    assert metric(logits).tolist() == pytest.approx(expected, abs=1e-6)
    # everything on the correct numbers: +1; everything on the wrong ones: -1
    sure = logits_for([{3: 50.0}, {0: 50.0}], vocab=5)
    assert metric(sure).tolist() == pytest.approx([1.0, -1.0], abs=1e-6)


@pytest.mark.parametrize("kind", ["logit_diff", "logprob", "greater_than"])
def test_stacked_copies_are_tiled(kind):
    correct, wrong = [[1], [2], [3]], [[0], [4], [0]]
    if kind == "greater_than":
        correct, wrong = [[1, 2], [2], [3, 5]], [[0], [4, 5], [0, 1]]
    metric = PuzzleMetric(kind, correct, wrong)
    gen = torch.Generator().manual_seed(0)
    copies = [torch.randn(3, 6, generator=gen) for _ in range(4)]
    stacked = metric(torch.cat(copies))
    assert stacked.shape == (12,)
    for c, logits in enumerate(copies):
        assert stacked[3 * c: 3 * c + 3].tolist() == pytest.approx(metric(logits).tolist())
    with pytest.raises(ValueError, match="copies"):
        metric(torch.zeros(4, 6))  # not a whole number of copies of 3 prompts


def test_half_precision_logits_give_float32():
    metric = PuzzleMetric("logit_diff", [[1]], [[0]])
    assert metric(torch.tensor([[0.0, 1.0]], dtype=torch.float16)).dtype == torch.float32


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown metric"):
        PuzzleMetric("accuracy", [[1]], [[0]])


@pytest.mark.parametrize("puzzle_id", ["ioi-whole-circuit", "induction-two-step"])
def test_on_resid_matches_the_logits_and_the_judge_uses_it(puzzle_id):
    from engine.hooks import act_name, forward
    from engine.judge import LastMetric
    from engine.judge.runs import _metric_fn
    from engine.models import load_model, pad_rows
    from engine.puzzle import find_puzzle

    lm = load_model("toy", device="cpu")
    ps = find_puzzle(puzzle_id).build_prompts(lm.tokenizer, "play")
    tokens = pad_rows(ps.token_ids[:6], device="cpu")
    final = act_name("resid_post", lm.n_layers - 1)
    run = forward(lm, tokens, record=[final], logits="last")
    metric = PuzzleMetric(ps.metric.kind, ps.correct[:6], ps.wrong[:6])
    rows = torch.arange(6)
    resid = run.cache[final][rows, torch.tensor(ps.at[:6])]
    assert all(a == len(ids) - 1 for a, ids in zip(ps.at[:6], ps.token_ids[:6], strict=True))
    from_logits = metric(run.logits)
    assert metric.on_resid(lm)(resid).tolist() == pytest.approx(from_logits.tolist(), abs=1e-4)
    # the judge and `lineup patch` / the game read the same numbers
    assert LastMetric(ps)(forward(lm, pad_rows(ps.token_ids), logits="last").logits)[
        :6].tolist() == pytest.approx(from_logits.tolist(), abs=1e-4)
    run_all = forward(lm, pad_rows(ps.token_ids), record=[final], logits="none")
    resid_all = run_all.cache[final][torch.arange(len(ps)), torch.tensor(ps.at)]
    assert _metric_fn(lm, ps)(resid_all)[:6].tolist() == pytest.approx(from_logits.tolist(),
                                                                        abs=1e-4)
