"""The logit lens: "what do you think right now?" asked of every person after every layer.

The residual stream after each layer is put through the final layer norm and the unembedding,
as if the model stopped there. Entry 0 is the embeddings (before any layer); entry L+1 is
after layer L, and the last entry equals the model's real prediction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.errors import UsageError

if TYPE_CHECKING:
    import torch

    from engine.loaded import LoadedModel, Tokens


@dataclass
class LensPosition:
    token: str
    top: list[tuple[str, float]]


@dataclass
class LensLayer:
    layer: int  # 0 = embeddings, L + 1 = after layer L
    label: str
    positions: list[LensPosition]


@dataclass
class LensReport:
    model: str
    text: str
    tokens: list[str]
    layers: list[LensLayer]

    def to_json(self) -> dict[str, object]:
        return {
            "model": self.model,
            "text": self.text,
            "tokens": self.tokens,
            "layers": [
                {
                    "layer": entry.layer,
                    "label": entry.label,
                    "positions": [
                        {"token": p.token, "top": [[tok, prob] for tok, prob in p.top]}
                        for p in entry.positions
                    ],
                }
                for entry in self.layers
            ],
        }


def residual_stages(lm: LoadedModel, tokens: Tokens) -> list[torch.Tensor]:
    """The residual stream after the embeddings and after each layer: n_layers + 1 tensors
    of [batch, pos, d_model], from one forward."""
    import torch

    from engine.hooks import act_name, forward

    names = [act_name("resid_pre", 0)] + [
        act_name("resid_post", layer) for layer in range(lm.n_layers)
    ]
    with torch.inference_mode():
        run = forward(lm, tokens, record=names, logits="none")
    return [run.cache[n] for n in names]


def unembed(lm: LoadedModel, resid: torch.Tensor) -> torch.Tensor:
    """Read a residual stream as the model's final layers would: final norm, then the
    unembedding (``engine.hooks.unembed``, without autograd)."""
    import torch

    from engine.hooks import unembed as read_out

    with torch.inference_mode():
        return read_out(lm, resid)


def lens_logits(lm: LoadedModel, tokens: Tokens) -> torch.Tensor:
    """[n_layers + 1, batch, pos, vocab]: the unembedded residual stream at every stage.
    Large for long texts (a vocabulary per position per stage); ``logit_lens`` keeps only
    each stage's top guesses instead."""
    import torch

    return torch.stack([unembed(lm, s) for s in residual_stages(lm, tokens)])


def logit_lens(lm: LoadedModel, text: str, *, k: int = 5) -> LensReport:
    """Each position's top ``k`` guesses (with probabilities) after each layer."""
    import torch

    if not text.strip():
        raise UsageError("the text is empty: give a sentence to look at")
    tokens = lm.tokenize([text])
    if tokens.lengths[0] > lm.n_ctx:
        raise UsageError(f"the text is {tokens.lengths[0]} tokens; this model reads at most "
                         f"{lm.n_ctx}")
    ids = tokens.ids[0].tolist()
    words = lm.token_strings(ids)
    layers = []
    for stage, resid in enumerate(residual_stages(lm, tokens)):
        probs = torch.softmax(unembed(lm, resid[0]).float(), dim=-1)  # [pos, vocab]
        values, indices = probs.topk(k, dim=-1)
        label = "embeddings" if stage == 0 else f"after layer {stage - 1}"
        positions = [
            LensPosition(
                token=words[pos],
                top=[
                    (lm.tokenizer.decode([int(i)]), round(float(p), 4))
                    for p, i in zip(values[pos], indices[pos], strict=True)
                ],
            )
            for pos in range(len(ids))
        ]
        layers.append(LensLayer(layer=stage, label=label, positions=positions))
    return LensReport(model=lm.name, text=text, tokens=words, layers=layers)


def answer_ranks(lm: LoadedModel, tokens: Tokens, answers: torch.Tensor) -> torch.Tensor:
    """[n_layers + 1, batch]: the rank (0 = top) of each prompt's answer token at its last
    position, after each stage. Shows in which layer the answer appears."""
    import torch

    rows = torch.arange(len(tokens))
    last = tokens.last
    ranks = []
    for resid in residual_stages(lm, tokens):
        logits = unembed(lm, resid[rows, last])  # [batch, vocab]
        own = logits[rows, answers.to(logits.device)]
        ranks.append((logits > own[:, None]).sum(-1))
    return torch.stack(ranks)
