"""One hooked forward over a Hugging Face GPT-2, written out layer by layer.

The forward reuses the model's own modules (layer norms, ``c_attn``, ``c_proj``, MLPs) but
spells out attention, so every intermediate has a name, can be recorded, and can be replaced.
Writing it out (instead of hooking ``GPT2LMHeadModel.forward``) is what lets interventions
start a run at any layer from cached activations and unembed only the positions they need.

Activation names follow TransformerLens, with shapes in its axis order:

==========================================  ===============================
``hook_embed``, ``hook_pos_embed``          [batch, pos, d_model]
``blocks.{L}.hook_resid_pre``               [batch, pos, d_model]
``blocks.{L}.attn.hook_q`` / ``_k`` / ``_v`` [batch, pos, head, d_head]
``blocks.{L}.attn.hook_attn_scores``        [batch, head, query_pos, key_pos]
``blocks.{L}.attn.hook_pattern``            [batch, head, query_pos, key_pos]
``blocks.{L}.attn.hook_z``                  [batch, pos, head, d_head]  (before c_proj)
``blocks.{L}.attn.hook_result``             [batch, pos, head, d_model] (each head's write;
                                            recorded only, computed from z)
``blocks.{L}.hook_attn_out``                [batch, pos, d_model]
``blocks.{L}.hook_resid_mid``               [batch, pos, d_model]
``blocks.{L}.hook_mlp_out``                 [batch, pos, d_model]
``blocks.{L}.hook_resid_post``              [batch, pos, d_model]
``ln_final.hook_normalized``                [batch, pos, d_model]
==========================================  ===============================

Batches are right-padded (see ``engine.models.Tokens``): a real token only ever attends to
earlier positions, so padding after it changes nothing and no padding mask is needed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from engine.errors import UsageError

if TYPE_CHECKING:
    import torch

    from engine.models import LoadedModel, Tokens

Hook = Callable[["torch.Tensor"], "torch.Tensor | None"]
LogitsMode = Literal["all", "last", "none"]

ATTN_KINDS = ("q", "k", "v", "attn_scores", "pattern", "z", "result")
BLOCK_KINDS = ("resid_pre", "attn_out", "resid_mid", "mlp_out", "resid_post")
GLOBAL_NAMES = ("hook_embed", "hook_pos_embed", "ln_final.hook_normalized")
ALIASES = {"attn": "pattern", "query": "q", "key": "k", "value": "v", "head_out": "result"}


def act_name(kind: str, layer: int | None = None) -> str:
    """Canonical activation name: ``act_name("pattern", 5) == "blocks.5.attn.hook_pattern"``."""
    kind = ALIASES.get(kind, kind)
    if kind in ("embed", "pos_embed"):
        return f"hook_{kind}"
    if kind in ("ln_final", "normalized"):
        return "ln_final.hook_normalized"
    if layer is None:
        raise UsageError(f"activation {kind!r} needs a layer")
    if kind in ATTN_KINDS:
        return f"blocks.{layer}.attn.hook_{kind}"
    if kind in BLOCK_KINDS:
        return f"blocks.{layer}.hook_{kind}"
    raise UsageError(f"unknown activation kind {kind!r}")


def expand_names(record: Iterable[str], n_layers: int) -> set[str]:
    """Turn kinds ("pattern": every layer) and full names into a set of full names."""
    names: set[str] = set()
    for item in record:
        kind = ALIASES.get(item, item)
        if kind in ATTN_KINDS or kind in BLOCK_KINDS:
            names.update(act_name(kind, layer) for layer in range(n_layers))
        elif kind in ("embed", "pos_embed", "ln_final", "normalized"):
            names.add(act_name(kind))
        else:
            names.add(item)
    return names


@dataclass
class Run:
    """What a forward returns: logits (per ``logits=``) and the recorded activations."""

    logits: torch.Tensor | None
    cache: dict[str, torch.Tensor] = field(default_factory=dict)

    def __getitem__(self, key: str | tuple[str, int]) -> torch.Tensor:
        if isinstance(key, tuple):
            key = act_name(*key)
        return self.cache[key]


def forward(
    lm: LoadedModel,
    tokens: Tokens,
    *,
    record: Iterable[str] = (),
    hooks: Mapping[str, Hook] | None = None,
    start_layer: int = 0,
    resid: torch.Tensor | None = None,
    stop_layer: int | None = None,
    logits: LogitsMode = "all",
) -> Run:
    """Run the model once, recording ``record`` and applying ``hooks``.

    ``hooks`` maps an activation name to a function that gets the activation and returns a
    replacement (or None to keep it). ``start_layer`` with ``resid`` (that layer's
    ``resid_pre``, [batch, pos, d_model]) skips the layers before it. ``stop_layer`` ends after
    that many layers (no logits). ``logits="last"`` unembeds only each prompt's last real token,
    giving [batch, vocab]; ``"all"`` gives [batch, pos, vocab].
    """
    import torch

    n_layers = lm.n_layers
    names = expand_names(record, n_layers)
    hooks = dict(hooks or {})
    unknown = [n for n in hooks if not _is_valid_name(n, n_layers)]
    if unknown:
        raise UsageError(f"no activation called {unknown[0]!r}")
    cache: dict[str, torch.Tensor] = {}

    def point(name: str, value: torch.Tensor) -> torch.Tensor:
        hook = hooks.get(name)
        if hook is not None:
            replaced = hook(value)
            if replaced is not None:
                value = replaced
        if name in names:
            cache[name] = value
        return value

    transformer = lm.model.transformer
    ids = tokens.ids
    if start_layer == 0 and resid is None:
        positions = torch.arange(ids.shape[1], device=ids.device)
        embed = point("hook_embed", transformer.wte(ids))
        pos_embed = point("hook_pos_embed", transformer.wpe(positions)[None].expand_as(embed))
        x = embed + pos_embed
    elif resid is not None:
        x = resid
    else:
        raise UsageError("start_layer needs the resid_pre of that layer")

    end = n_layers if stop_layer is None else stop_layer
    n_ctx = x.shape[1]
    causal = torch.ones(n_ctx, n_ctx, dtype=torch.bool, device=x.device).tril()
    rows = torch.arange(x.shape[0], device=x.device)
    last = tokens.last.to(x.device)
    # With only the last positions unembedded, the final block needs its other positions
    # only as keys and values; skip their query, output and MLP unless someone watches them.
    final_only_last = (
        logits == "last" and stop_layer is None and start_layer < n_layers
        and not any(n.startswith(f"blocks.{n_layers - 1}.") for n in (*names, *hooks))
    )
    for layer in range(start_layer, end):
        if final_only_last and layer == n_layers - 1:
            x = _final_block_last_only(lm, layer, x, rows, last)
        else:
            x = _block(lm, layer, x, causal, point, names)

    if stop_layer is not None or logits == "none":
        return Run(None, cache)
    if logits == "last" and not final_only_last:
        x = x[rows, last]
    x = point("ln_final.hook_normalized", transformer.ln_f(x))
    return Run(lm.model.lm_head(x), cache)


def _block(lm, layer: int, x, causal, point, names: set[str]):
    import torch

    block = lm.model.transformer.h[layer]
    attn = block.attn
    n_heads, d_head = lm.n_heads, lm.d_head
    batch, n_ctx, d_model = x.shape
    prefix = f"blocks.{layer}"

    x = point(f"{prefix}.hook_resid_pre", x)
    q, k, v = attn.c_attn(block.ln_1(x)).split(d_model, dim=-1)
    q = point(f"{prefix}.attn.hook_q", q.view(batch, n_ctx, n_heads, d_head))
    k = point(f"{prefix}.attn.hook_k", k.view(batch, n_ctx, n_heads, d_head))
    v = point(f"{prefix}.attn.hook_v", v.view(batch, n_ctx, n_heads, d_head))

    scores = torch.einsum("bqhd,bkhd->bhqk", q, k) * _scaling(attn, d_head, layer)
    scores = scores.masked_fill(~causal, torch.finfo(scores.dtype).min)
    scores = point(f"{prefix}.attn.hook_attn_scores", scores)
    pattern = point(f"{prefix}.attn.hook_pattern", torch.softmax(scores, dim=-1))
    z = point(f"{prefix}.attn.hook_z", torch.einsum("bhqk,bkhd->bqhd", pattern, v))
    return block_tail(lm, layer, x, z, point, names)


def _final_block_last_only(lm, layer: int, x, rows, last):
    """The final block computed for each prompt's last position only: [batch, d_model]."""
    import torch

    block = lm.model.transformer.h[layer]
    n_heads, d_head = lm.n_heads, lm.d_head
    batch, n_ctx, d_model = x.shape
    q, k, v = block.attn.c_attn(block.ln_1(x)).split(d_model, dim=-1)
    q = q[rows, last].view(batch, n_heads, d_head)
    k = k.view(batch, n_ctx, n_heads, d_head)
    v = v.view(batch, n_ctx, n_heads, d_head)
    scores = torch.einsum("bhd,bkhd->bhk", q, k) * _scaling(block.attn, d_head, layer)
    visible = torch.arange(n_ctx, device=x.device)[None, :] <= last[:, None]  # [batch, key]
    scores = scores.masked_fill(~visible[:, None, :], torch.finfo(scores.dtype).min)
    z = torch.einsum("bhk,bkhd->bhd", torch.softmax(scores, dim=-1), v)
    resid = x[rows, last] + block.attn.c_proj(z.reshape(batch, d_model))
    return resid + block.mlp(block.ln_2(resid))


def block_tail(lm, layer: int, x, z, point=None, names: set[str] | None = None):
    """The rest of a block once its heads' outputs ``z`` are known: output projection, MLP,
    and both residual additions. Returns ``resid_post``. Patching grids start here."""
    if point is None:
        point = _no_point
    names = names or set()
    block = lm.model.transformer.h[layer]
    batch, n_ctx, d_model = x.shape
    prefix = f"blocks.{layer}"
    result_name = f"{prefix}.attn.hook_result"
    if result_name in names:
        point(result_name, head_writes(lm, layer, z))
    attn_out = point(f"{prefix}.hook_attn_out", block.attn.c_proj(z.reshape(batch, n_ctx, d_model)))
    x = point(f"{prefix}.hook_resid_mid", x + attn_out)
    mlp_out = point(f"{prefix}.hook_mlp_out", block.mlp(block.ln_2(x)))
    return point(f"{prefix}.hook_resid_post", x + mlp_out)


def _no_point(name: str, value):
    return value


def _scaling(attn, d_head: int, layer: int) -> float:
    """The score scale HF uses for this layer (it folds in the per-layer option itself)."""
    scaling = getattr(attn, "scaling", None)
    if scaling is not None:
        return float(scaling)
    value = d_head**-0.5 if attn.scale_attn_weights else 1.0
    return value / (layer + 1) if attn.scale_attn_by_inverse_layer_idx else value


def head_writes(lm: LoadedModel, layer: int, z: torch.Tensor) -> torch.Tensor:
    """Each head's write into the residual stream (no output bias): [batch, pos, head, d_model]."""
    import torch

    return torch.einsum("bphd,hdm->bphm", z, w_out(lm, layer))


def w_out(lm: LoadedModel, layer: int) -> torch.Tensor:
    """The output projection split per head: [head, d_head, d_model] (Conv1D is input x output)."""
    weight = lm.model.transformer.h[layer].attn.c_proj.weight
    return weight.view(lm.n_heads, lm.d_head, lm.d_model)


def _is_valid_name(name: str, n_layers: int) -> bool:
    if name in GLOBAL_NAMES:
        return True
    parts = name.split(".")
    if len(parts) < 3 or parts[0] != "blocks" or not parts[1].isdigit():
        return False
    if not 0 <= int(parts[1]) < n_layers:
        return False
    tail = ".".join(parts[2:])
    return tail in {f"attn.hook_{k}" for k in ATTN_KINDS} | {f"hook_{k}" for k in BLOCK_KINDS}


def run_with_cache(
    lm: LoadedModel,
    tokens: Tokens,
    names: Iterable[str] = ("pattern",),
    *,
    logits: LogitsMode = "all",
) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
    """Read-only forward that records ``names`` (kinds or full names)."""
    import torch

    with torch.inference_mode():
        run = forward(lm, tokens, record=names, logits=logits)
    return run.logits, run.cache
