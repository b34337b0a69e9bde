"""The puzzle's metric: the one implementation the judge, ``lineup patch`` and the game use.

A puzzle reads one number per prompt at its metric position (``PromptSet.at``):

- ``logit_diff``: logit(correct) - logit(wrong), e.g. IOI's logit(IO) - logit(S);
- ``logprob``: log-probability of the correct token;
- ``greater_than``: probability mass on the correct numbers minus the mass on the wrong ones
  (``correct[i]`` / ``wrong[i]`` are sets of token ids).

``PuzzleMetric`` takes last-position logits ``[B, vocab]`` and returns ``[B]``; ``B`` may be
a multiple of the prompt count (several copies of the batch stacked copy-major, as the
patching grids run them), and the answers are tiled to match, like
``engine.interventions.LogitDiff`` (the plain logit-difference building block).
``PuzzleMetric.on_resid(lm)`` is the same metric read from the final residual stream at the
metric position (``[B, d_model]``, before the final layer norm), which is what the judge
patches and differentiates. Values are float32 whatever the model's dtype.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from engine.loaded import LoadedModel

KINDS = ("logit_diff", "logprob", "greater_than")


class PuzzleMetric:
    """The puzzle's metric on last-position logits [B, vocab] -> [B] (tiles stacked copies)."""

    def __init__(self, kind: str, correct: Sequence[Sequence[int]],
                 wrong: Sequence[Sequence[int]]) -> None:
        import torch

        if kind not in KINDS:
            raise ValueError(f"unknown metric {kind!r}; known: {', '.join(KINDS)}")
        if len(correct) != len(wrong) and kind != "logprob":
            raise ValueError("one correct and one wrong answer set per prompt")
        self.kind = kind
        self.n = len(correct)
        self.correct = [list(c) for c in correct]
        self.wrong = [list(w) for w in wrong] if wrong else [[] for _ in correct]
        # one id per prompt for logit_diff / logprob (0 stands in for a missing answer)
        self._correct = torch.tensor([c[0] if c else 0 for c in self.correct], dtype=torch.long)
        self._wrong = torch.tensor([w[0] if w else 0 for w in self.wrong], dtype=torch.long)
        self._sign: dict[tuple[str, int], torch.Tensor] = {}

    @classmethod
    def from_prompts(cls, ps: Any) -> PuzzleMetric:
        """From an ``engine.puzzle.PromptSet`` (read by its fields: the metric sits below the
        puzzle layer, so that the test models can use it too)."""
        return cls(ps.metric.kind, ps.correct, ps.wrong)

    def __len__(self) -> int:
        return self.n

    def sign(self, vocab: int, device: torch.device | str) -> torch.Tensor:
        """[n, vocab]: +1 on each prompt's correct ids, -1 on its wrong ones (greater_than)."""
        import torch

        key = (str(device), vocab)
        if key not in self._sign:
            sign = torch.zeros(self.n, vocab)
            for i, (c, w) in enumerate(zip(self.correct, self.wrong, strict=True)):
                sign[i, c] = 1.0
                sign[i, w] = -1.0
            self._sign[key] = sign.to(device)
        return self._sign[key]

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        import torch

        logits = logits.float()
        batch = logits.shape[0]
        if self.n == 0 or batch % self.n:
            raise ValueError(f"{batch} rows is not a whole number of copies of {self.n} prompts")
        copies = batch // self.n
        rows = torch.arange(batch, device=logits.device)
        if self.kind == "greater_than":
            probs = torch.softmax(logits, -1).view(copies, self.n, -1)
            sign = self.sign(probs.shape[-1], logits.device)
            return (probs * sign[None]).sum(-1).view(-1)
        correct = self._correct.to(logits.device).repeat(copies)
        if self.kind == "logprob":
            return torch.log_softmax(logits, -1)[rows, correct]
        wrong = self._wrong.to(logits.device).repeat(copies)
        return logits[rows, correct] - logits[rows, wrong]

    def on_resid(self, lm: LoadedModel) -> Callable[[torch.Tensor], torch.Tensor]:
        """The metric read from the final residual stream at the metric position
        ([B, d_model], before the final norm), through the model's own final norm and
        unembedding (``engine.hooks.unembed``, for every model family)."""
        from engine.hooks import unembed

        def metric(resid: torch.Tensor) -> torch.Tensor:
            return self(unembed(lm, resid))

        return metric

    def answered(self, logits: torch.Tensor) -> torch.Tensor:
        """[B] bool: whether each prompt is answered right. ``logit_diff`` and
        ``greater_than``: the metric is above zero (IO ahead of S; more mass above the year);
        ``logprob``: the correct token is the top guess."""
        import torch

        values = self(logits)
        if self.kind != "logprob":
            return values > 0
        copies = logits.shape[0] // self.n
        target = self._correct.to(logits.device).repeat(copies)
        return torch.argmax(logits.float(), -1) == target
