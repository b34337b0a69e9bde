"""Head scores: which heads look like previous-token, duplicate-token, induction or copy heads.

The attention scores are measured on random token sequences repeated twice (the standard
test: on a repeat, an induction head at the second copy of a token attends to the token that
followed its first copy). With ``n`` the length of one half and ``i`` a position:

- previous-token: mean attention from ``i`` to ``i - 1`` over the whole sequence;
- duplicate-token: mean attention from ``i`` in the second half to ``i - n`` (same token);
- induction: mean attention from ``i`` in the second half to ``i - n + 1`` (what followed it).

The copy score reads weights, not attention: for sampled tokens, the head's OV circuit applied
to the token's effective embedding (embedding plus layer 0's MLP on it, the way a name looks
to a later head) is unembedded, and the score is the share of tokens whose own id lands in
the top 5 (among 2,000 sampled tokens, so a 50k vocabulary stays cheap). ``negative_copy``
is the share in the bottom 5 (heads that write *against* what
they read, like IOI's negative name movers).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from engine.errors import UsageError

if TYPE_CHECKING:
    import torch

    from engine.loaded import LoadedModel, Tokens

COPY_TOP_K = 5
SCORE_NAMES = ("previous_token", "duplicate_token", "induction", "copy", "negative_copy")


@dataclass
class HeadScore:
    layer: int
    head: int
    previous_token: float
    duplicate_token: float
    induction: float
    copy: float
    negative_copy: float

    @property
    def name(self) -> str:
        return f"{self.layer}.{self.head}"

    def to_json(self) -> dict[str, object]:
        return {"head_id": f"L{self.layer}H{self.head}", **asdict(self)}


def context_length(lm: LoadedModel) -> int:
    """How many positions the model reads (``LoadedModel.n_ctx``, from ``ModelFacts``)."""
    return lm.n_ctx


def candidate_token_ids(lm: LoadedModel) -> torch.Tensor:
    """Ordinary tokens of the vocabulary: everything but special and added tokens."""
    import torch

    tokenizer = lm.tokenizer
    vocab = min(len(tokenizer), lm.facts.vocab_size)
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    special |= set(getattr(tokenizer, "added_tokens_decoder", {}) or {})
    keep = [i for i in range(vocab) if i not in special]
    return torch.tensor(keep, dtype=torch.long)


def repeated_random_tokens(
    lm: LoadedModel, *, n_sequences: int = 8, half: int | None = None, seed: int = 0
) -> tuple[torch.Tensor, int, int]:
    """[n_sequences, prefix + 2*half] ids: an optional BOS, then a random half twice.
    Returns (ids, prefix length, half length)."""
    import torch

    n_positions = context_length(lm)
    bos = getattr(lm.tokenizer, "bos_token_id", None)
    prefix = 1 if bos is not None and bos < lm.facts.vocab_size else 0
    half = half or min(20, (n_positions - prefix) // 2)
    pool = candidate_token_ids(lm)
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n_sequences):
        picks = pool[torch.randperm(len(pool), generator=generator)[:half]]
        if len(picks) < half:  # tiny vocabularies: sample with replacement
            picks = pool[torch.randint(len(pool), (half,), generator=generator)]
        rows.append(torch.cat([torch.tensor([bos] * prefix, dtype=torch.long), picks, picks]))
    return torch.stack(rows), prefix, half


def attention_scores(lm: LoadedModel, *, n_sequences: int = 8, seed: int = 0) -> torch.Tensor:
    """[3, layer, head]: previous-token, duplicate-token and induction scores."""
    import torch

    from engine.hooks import act_name, forward
    from engine.loaded import Tokens

    ids, prefix, half = repeated_random_tokens(lm, n_sequences=n_sequences, seed=seed)
    tokens = Tokens(ids=ids.to(lm.device), lengths=[ids.shape[1]] * len(ids))
    with torch.inference_mode():
        run = forward(lm, tokens, record=["pattern"], logits="none")
    first = prefix + 1
    second = torch.arange(prefix + half, prefix + 2 * half)
    every = torch.arange(first, prefix + 2 * half)
    out = torch.empty(3, lm.n_layers, lm.n_heads)
    for layer in range(lm.n_layers):
        pattern = run.cache[act_name("pattern", layer)].float()  # [b, head, q, k]
        out[0, layer] = pattern[:, :, every, every - 1].mean(dim=(0, 2)).cpu()
        out[1, layer] = pattern[:, :, second, second - half].mean(dim=(0, 2)).cpu()
        out[2, layer] = pattern[:, :, second, second - half + 1].mean(dim=(0, 2)).cpu()
    return out


def copy_scores(
    lm: LoadedModel, *, n_tokens: int = 100, n_compared: int = 2000, seed: int = 0
) -> torch.Tensor:
    """[2, layer, head]: share of sampled tokens each head's OV circuit ranks in the top 5
    (copy) and in the bottom 5 (negative copy). Ranks are taken among ``n_compared`` tokens
    (the sampled ones included), which keeps the score cheap on a 50k vocabulary."""
    import torch

    from engine.hooks import attn_inputs, final_norm, mlp_out, token_embed, unembed_weight, w_out

    pool = candidate_token_ids(lm)
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(pool), generator=generator)
    compared = pool[order[:n_compared]].to(lm.device)
    n_sample = min(n_tokens, len(compared))
    sample = compared[:n_sample]
    weight, bias = unembed_weight(lm)
    unembed = weight[compared]  # [compared, d_model]
    out = torch.empty(2, lm.n_layers, lm.n_heads)
    with torch.inference_mode():
        # A token as later heads see it: its embedding plus what the first MLP adds to it.
        embed = token_embed(lm, sample)  # [t, d_model]
        embed = embed + mlp_out(lm, 0, embed)
        rows = torch.arange(n_sample, device=sample.device)
        for layer in range(lm.n_layers):
            v = attn_inputs(lm, layer, embed)[2]  # [t, head, d_head]
            written = torch.einsum("thd,hdm->htm", v, w_out(lm, layer))  # [head, t, d_model]
            logits = final_norm(lm, written) @ unembed.T  # [head, t, compared]
            if bias is not None:
                logits = logits + bias[compared]
            own = logits[:, rows, rows][..., None]  # sample i is compared[i]
            # Ties count against the token (>=, minus itself), so a head that writes nothing,
            # giving every token the same logit, never looks like a copier.
            at_least = (logits >= own).sum(-1) - 1
            at_most = (logits <= own).sum(-1) - 1
            out[0, layer] = (at_least < COPY_TOP_K).float().mean(-1).cpu()
            out[1, layer] = (at_most < COPY_TOP_K).float().mean(-1).cpu()
    return out


def head_scores(lm: LoadedModel, *, seed: int = 0) -> list[HeadScore]:
    """Every head's detector scores, layer by layer."""
    attention = attention_scores(lm, seed=seed)
    copying = copy_scores(lm, seed=seed)
    return [
        HeadScore(
            layer=layer,
            head=head,
            previous_token=round(float(attention[0, layer, head]), 4),
            duplicate_token=round(float(attention[1, layer, head]), 4),
            induction=round(float(attention[2, layer, head]), 4),
            copy=round(float(copying[0, layer, head]), 4),
            negative_copy=round(float(copying[1, layer, head]), 4),
        )
        for layer in range(lm.n_layers)
        for head in range(lm.n_heads)
    ]


def top_heads(scores: list[HeadScore], score: str, k: int = 3) -> list[HeadScore]:
    """The ``k`` heads highest on one score."""
    return sorted(scores, key=lambda s: getattr(s, score), reverse=True)[:k]


@dataclass
class Listening:
    """How much one head's asker listens to one person, against an even spread over everyone
    it can hear (``baseline`` = 1 / (asker position + 1), averaged over prompts)."""

    layer: int
    head: int
    attention: float  # mean attention from the asker to the person
    baseline: float

    @property
    def lift(self) -> float:
        """Attention as a multiple of the even spread: 1 is no preference."""
        return self.attention / self.baseline if self.baseline > 0 else 0.0


def rank_listening(lm: LoadedModel, tokens: Tokens, askers: Sequence[int],
                   responders: Sequence[int], layers: Iterable[int] | None = None
                   ) -> list[Listening]:
    """Every head of ``layers`` (default: all) ranked by how much each prompt's asker
    (``askers[i]``) listens to its responder (``responders[i]``), most first: one forward,
    so a player finds the heads instead of paging through them."""
    import torch

    from engine.hooks import act_name, forward

    layers = list(range(lm.n_layers)) if layers is None else list(layers)
    asker = torch.as_tensor(list(askers), device=tokens.ids.device)
    responder = torch.as_tensor(list(responders), device=tokens.ids.device)
    if bool((responder > asker).any()):
        raise UsageError("a person can only listen to people behind them (or themselves)")
    rows = torch.arange(len(tokens), device=tokens.ids.device)
    names = [act_name("pattern", layer) for layer in layers]
    with torch.inference_mode():
        run = forward(lm, tokens, record=names, logits="none",
                      stop_layer=max(layers) + 1 if layers else 0)
    baseline = float((1.0 / (asker.float() + 1)).mean())
    out = []
    for layer, name in zip(layers, names, strict=True):
        att = run.cache[name][rows, :, asker, responder].float().mean(0)  # [head]
        out += [Listening(layer, h, round(float(a), 4), round(baseline, 4))
                for h, a in enumerate(att.tolist())]
    return sorted(out, key=lambda r: (-r.attention, r.layer, r.head))
