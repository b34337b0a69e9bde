"""One hooked forward over a Hugging Face GPT-2 or Llama-family model, layer by layer.

The forward reuses the model's own modules (norms, q/k/v and output projections, MLPs, through
the per-family adapter in ``engine.adapters``) but spells out attention, so every intermediate
has a name, can be recorded, and can be replaced. Writing it out (instead of hooking the HF
model's ``forward``) is what lets interventions start a run at any layer from cached
activations and unembed only the positions they need.

Activation names follow TransformerLens, with shapes in its axis order:

==========================================  ===============================
``hook_embed``, ``hook_pos_embed``          [batch, pos, d_model] (no pos_embed: rotary)
``blocks.{L}.hook_resid_pre``               [batch, pos, d_model]
``blocks.{L}.attn.hook_q`` / ``_k`` / ``_v`` [batch, pos, head, d_head] (per query head;
                                            q and k before rotary)
``blocks.{L}.attn.hook_attn_scores``        [batch, head, query_pos, key_pos]
``blocks.{L}.attn.hook_pattern``            [batch, head, query_pos, key_pos]
``blocks.{L}.attn.hook_z``                  [batch, pos, head, d_head]  (before the output
                                            projection)
``blocks.{L}.attn.hook_result``             [batch, pos, head, d_model] (each head's write,
                                            computed from z; hooking it rebuilds attn_out)
``blocks.{L}.hook_attn_out``                [batch, pos, d_model]
``blocks.{L}.hook_resid_mid``               [batch, pos, d_model]
``blocks.{L}.hook_mlp_out``                 [batch, pos, d_model]
``blocks.{L}.hook_resid_post``              [batch, pos, d_model]
``ln_final.hook_normalized``                [batch, pos, d_model]
==========================================  ===============================

Batches are right-padded (see ``engine.models.Tokens``): a real token only ever attends to
earlier positions, so padding after it changes nothing and no padding mask is needed.

The same causality lets a patched run skip what it cannot change: an edit at position p
leaves every position before p as it was in the run it patches. ``forward(..., prefix=)``
computes only the positions from ``prefix.start`` on and takes the earlier ones' keys and
values from that run (``Prefix``); every activation then covers those positions only
(``hook_attn_scores`` and ``hook_pattern``: those queries, every key).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from engine.adapters import adapter_for, rotate
from engine.errors import UsageError

if TYPE_CHECKING:
    import torch

    from engine.loaded import LoadedModel, Tokens

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


@dataclass(frozen=True)
class Prefix:
    """Positions ``0 .. start-1`` as they were in an earlier run: ``kv(layer)`` gives their
    keys (after rotary) and values, each [batch, start, head, d_head] per query head. The
    forward then runs positions ``start ..`` only, from that layer's ``resid`` of those
    positions."""

    start: int
    kv: Callable[[int], tuple[torch.Tensor, torch.Tensor]]


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
    on_layer: Callable[[int, int], None] | None = None,
    prefix: Prefix | None = None,
    last_only: bool = False,
) -> Run:
    """Run the model once, recording ``record`` and applying ``hooks``.

    ``hooks`` maps an activation name to a function that gets the activation and returns a
    replacement (or None to keep it); every name it accepts acts (``hook_result`` included:
    hooking it rebuilds the attention output from the per-head writes). ``start_layer`` with
    ``resid`` (that layer's ``resid_pre``, [batch, pos, d_model]) skips the layers before it.
    ``stop_layer`` ends after that many layers (no logits). ``logits="last"`` unembeds only
    each prompt's last real token, giving [batch, vocab]; ``"all"`` gives [batch, pos, vocab].
    ``on_layer(done, total)`` hears after each layer (progress on a slow model; it may raise
    to stop the run). ``prefix`` (with ``resid`` of the later positions only) runs only the
    positions after it (see the module docstring); logits are then not computed.
    ``last_only`` (with ``logits="none"``) computes the final block at each prompt's last
    real token only, so a recorded final ``resid_post`` is [batch, d_model] there: what a
    patched run reads its metric from. It is ignored (full positions) when anything else
    of the final block is hooked or recorded.
    """
    import torch

    n_layers = lm.n_layers
    names = expand_names(record, n_layers)
    hooks = dict(hooks or {})
    unknown = [n for n in hooks if not _is_valid_name(n, n_layers)]
    if unknown:
        raise UsageError(f"no activation called {unknown[0]!r}")
    if "hook_pos_embed" in hooks and not _has_pos_embed(lm):
        raise UsageError("this model has no position embedding to hook (its positions are "
                         "rotary, applied to q and k)")
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

    point.hooked = hooks.keys()  # type: ignore[attr-defined]
    adapter = adapter_for(lm)
    ids = tokens.ids
    if start_layer == 0 and resid is None:
        tok, pos = adapter.embed(ids)
        x = point("hook_embed", tok)
        if pos is not None:
            x = x + point("hook_pos_embed", pos)
    elif resid is not None:
        x = resid
    else:
        raise UsageError("start_layer needs the resid_pre of that layer")

    end = n_layers if stop_layer is None else stop_layer
    skip = 0 if prefix is None else prefix.start
    if skip and (resid is None or logits != "none"):
        raise UsageError("a prefix run starts from the later positions' resid, without logits")
    n_ctx = skip + x.shape[1]
    causal = torch.ones(n_ctx, n_ctx, dtype=torch.bool, device=x.device).tril()[skip:]
    rotary = adapter.rotary(n_ctx, x.device, x.dtype)
    rows = torch.arange(x.shape[0], device=x.device)
    last = tokens.last.to(x.device)
    # With only the last positions unembedded, the final block needs its other positions
    # only as keys and values; skip their query, output and MLP unless someone watches them.
    final_name = f"blocks.{n_layers - 1}.hook_resid_post"
    final_only_last = (
        (logits == "last" or (last_only and logits == "none")) and stop_layer is None
        and start_layer < n_layers
        and not any(n.startswith(f"blocks.{n_layers - 1}.") and n != final_name
                    for n in (*names, *hooks))
        and final_name not in hooks and (logits == "none" or final_name not in names)
    )
    for layer in range(start_layer, end):
        earlier = prefix.kv(layer) if skip and prefix is not None else None
        if final_only_last and layer == n_layers - 1:
            x = _final_block_last_only(adapter, layer, x, rows, last, rotary, earlier, skip)
            if final_name in names:
                cache[final_name] = x
        else:
            x = _block(adapter, layer, x, causal, rotary, point, names, earlier)
        if on_layer is not None:
            on_layer(layer + 1 - start_layer, end - start_layer)

    if stop_layer is not None or logits == "none":
        return Run(None, cache)
    if logits == "last" and not final_only_last:
        x = x[rows, last]
    x = point("ln_final.hook_normalized", adapter.final_norm(x))
    return Run(adapter.lm_head(x), cache)


def _has_pos_embed(lm: LoadedModel) -> bool:
    return adapter_for(lm).family == "gpt2"


def _block(adapter, layer: int, x, causal, rotary, point, names: set[str], earlier=None):
    """One layer over positions ``causal.shape[0]`` from the end; ``earlier`` (keys after
    rotary, values) stands for the positions before them (``Prefix``)."""
    import torch

    prefix = f"blocks.{layer}"
    x = point(f"{prefix}.hook_resid_pre", x)
    watched = {*getattr(point, "hooked", ()), *names}
    if not any(f"{prefix}.attn.hook_{kind}" in watched for kind in _FUSED_HIDES):
        return _fused_block(adapter, layer, x, causal, rotary, point, names, earlier)
    q, k, v = adapter.qkv(layer, adapter.norm1(layer, x))
    q = point(f"{prefix}.attn.hook_q", q)
    k = point(f"{prefix}.attn.hook_k", k)
    v = point(f"{prefix}.attn.hook_v", v)
    q, k, v = _placed(q, k, v, causal, rotary, earlier)

    scores = torch.einsum("bqhd,bkhd->bhqk", q, k) * adapter.scaling(layer)
    scores = scores.masked_fill(~causal, torch.finfo(scores.dtype).min)
    scores = point(f"{prefix}.attn.hook_attn_scores", scores)
    pattern = point(f"{prefix}.attn.hook_pattern", torch.softmax(scores, dim=-1))
    z = point(f"{prefix}.attn.hook_z", torch.einsum("bhqk,bkhd->bqhd", pattern, v))
    return _tail(adapter, layer, x, z, point, names)


_FUSED_HIDES = ("k", "v", "attn_scores", "pattern")
"""What the fused attention never materialises per query head: a block whose keys, values,
scores or pattern someone hooks or records takes the spelled-out path."""


def _placed(q, k, v, causal, rotary, earlier):
    """Queries and keys rotated to their positions (the last ``causal.shape[0]`` ones), and
    the earlier positions' keys and values put before them (``Prefix``)."""
    if rotary is not None:
        skip = causal.shape[1] - causal.shape[0]
        cos, sin = (r[skip:] for r in rotary)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
    if earlier is not None:
        k, v = _with_earlier(earlier, k, v, q.shape[0])
    return q, k, v


def _with_earlier(earlier, k, v, batch: int):
    """Keys and values of every position: the earlier positions' (one copy per prompt,
    repeated over the stacked edits of a patched run) before the computed ones. Earlier keys
    kept per key/value head are repeated per query head when ``k`` is."""
    import torch

    k_before, v_before = earlier
    copies = batch // k_before.shape[0]
    group = k.shape[2] // k_before.shape[2]
    if group > 1:
        k_before = k_before.repeat_interleave(group, dim=2)
        v_before = v_before.repeat_interleave(group, dim=2)
    k = torch.cat((k_before.repeat(copies, 1, 1, 1), k), dim=1)
    v = torch.cat((v_before.repeat(copies, 1, 1, 1), v), dim=1)
    return k, v


def _fused_block(adapter, layer: int, x, causal, rotary, point, names: set[str], earlier=None):
    """``_block`` with torch's fused attention (scale, mask, softmax and the weighted sum in
    one kernel, key/value heads shared without copies): the same numbers to float rounding,
    for the runs nobody watches inside attention (most patched runs)."""
    import torch

    prefix = f"blocks.{layer}"
    q, k, v = adapter.qkv_grouped(layer, adapter.norm1(layer, x))
    q = point(f"{prefix}.attn.hook_q", q)
    q, k, v = _placed(q, k, v, causal, rotary, earlier)
    out = torch.nn.functional.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=causal,
        scale=adapter.scaling(layer), enable_gqa=k.shape[2] != q.shape[2])
    z = point(f"{prefix}.attn.hook_z", out.transpose(1, 2))
    return _tail(adapter, layer, x, z, point, names)


def _final_block_last_only(adapter, layer: int, x, rows, last, rotary, earlier=None,
                           skip: int = 0):
    """The final block computed for each prompt's last position only: [batch, d_model].
    ``x`` covers positions ``skip ..`` (``earlier``: the keys and values before them)."""
    import torch

    batch, n_new, _ = x.shape
    n_ctx = skip + n_new
    here = last - skip  # the last token's index within x
    q, k, v = adapter.qkv(layer, adapter.norm1(layer, x))
    q = q[rows, here]  # [batch, head, d_head]
    if rotary is not None:
        cos, sin = rotary
        q = rotate(q[:, None], cos[last][:, None], sin[last][:, None])[:, 0]
        k = rotate(k, cos[skip:], sin[skip:])
    if earlier is not None:
        k, v = _with_earlier(earlier, k, v, batch)
    scores = torch.einsum("bhd,bkhd->bhk", q, k) * adapter.scaling(layer)
    visible = torch.arange(n_ctx, device=x.device)[None, :] <= last[:, None]  # [batch, key]
    scores = scores.masked_fill(~visible[:, None, :], torch.finfo(scores.dtype).min)
    z = torch.einsum("bhk,bkhd->bhd", torch.softmax(scores, dim=-1), v)
    resid = x[rows, here] + adapter.o_proj(layer, z.reshape(batch, -1))
    return resid + adapter.mlp(layer, adapter.norm2(layer, resid))


def block_tail(lm, layer: int, x, z, point=None, names: set[str] | None = None):
    """The rest of a block once its heads' outputs ``z`` are known: output projection, MLP,
    and both residual additions. Returns ``resid_post``. Patching grids start here."""
    return _tail(adapter_for(lm), layer, x, z, point or _no_point, names or set())


def _tail(adapter, layer: int, x, z, point, names: set[str]):
    batch, n_ctx = x.shape[:2]
    prefix = f"blocks.{layer}"
    result_name = f"{prefix}.attn.hook_result"
    if result_name in getattr(point, "hooked", ()):
        # A hooked head write must act: rebuild the attention output from the writes.
        result = point(result_name, _head_writes(adapter, layer, z))
        attn_out = result.sum(dim=2)
        bias = adapter.o_bias(layer)
        if bias is not None:
            attn_out = attn_out + bias
    else:
        if result_name in names:
            point(result_name, _head_writes(adapter, layer, z))
        attn_out = adapter.o_proj(layer, z.reshape(batch, n_ctx, -1))
    attn_out = point(f"{prefix}.hook_attn_out", attn_out)
    x = point(f"{prefix}.hook_resid_mid", x + attn_out)
    mlp_out = point(f"{prefix}.hook_mlp_out", adapter.mlp(layer, adapter.norm2(layer, x)))
    return point(f"{prefix}.hook_resid_post", x + mlp_out)


def _no_point(name: str, value):
    return value


def _head_writes(adapter, layer: int, z: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.einsum("bphd,hdm->bphm", z, adapter.w_out(layer))


def head_writes(lm: LoadedModel, layer: int, z: torch.Tensor) -> torch.Tensor:
    """Each head's write into the residual stream (no output bias): [batch, pos, head, d_model]."""
    return _head_writes(adapter_for(lm), layer, z)


def w_out(lm: LoadedModel, layer: int) -> torch.Tensor:
    """The output projection split per head: [head, d_head, d_model]."""
    return adapter_for(lm).w_out(layer)


# ---- family-neutral pieces for code that computes part of a forward by hand ------------


def embed(lm: LoadedModel, ids: torch.Tensor) -> torch.Tensor:
    """The residual stream entering layer 0 (token plus position embedding, where the
    family has one): [batch, pos, d_model]."""
    tok, pos = adapter_for(lm).embed(ids)
    return tok if pos is None else tok + pos


def token_embed(lm: LoadedModel, ids: torch.Tensor) -> torch.Tensor:
    """Token embeddings only: [..., d_model]."""
    return adapter_for(lm).token_embed(ids)


def attn_inputs(lm: LoadedModel, layer: int, resid_pre: torch.Tensor):
    """(q, k, v) of ``layer`` computed from a residual stream [..., d_model]: each
    [..., n_heads, d_head], per query head, q and k before rotary (as ``hook_q``/``hook_k``)."""
    adapter = adapter_for(lm)
    return adapter.qkv(layer, adapter.norm1(layer, resid_pre))


def keys_values(lm: LoadedModel, layer: int, resid_pre: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Keys (after rotary) and values of ``layer`` for positions ``0 ..`` of a residual
    stream [batch, pos, d_model], per key/value head: what a ``Prefix`` stands for."""
    adapter = adapter_for(lm)
    _q, k, v = adapter.qkv_grouped(layer, adapter.norm1(layer, resid_pre))
    rotary = adapter.rotary(resid_pre.shape[1], resid_pre.device, resid_pre.dtype)
    if rotary is not None:
        k = rotate(k, *rotary)
    return k, v


def mlp_out(lm: LoadedModel, layer: int, resid_mid: torch.Tensor) -> torch.Tensor:
    """The MLP's write given the residual stream entering it: [..., d_model]."""
    adapter = adapter_for(lm)
    return adapter.mlp(layer, adapter.norm2(layer, resid_mid))


def final_norm(lm: LoadedModel, resid: torch.Tensor) -> torch.Tensor:
    return adapter_for(lm).final_norm(resid)


def unembed(lm: LoadedModel, resid: torch.Tensor) -> torch.Tensor:
    """Logits of a residual stream read as the final layers would: final norm, then the
    unembedding. [..., d_model] -> [..., vocab]."""
    adapter = adapter_for(lm)
    return adapter.lm_head(adapter.final_norm(resid))


def unembed_weight(lm: LoadedModel) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(W_U [vocab, d_model], bias [vocab] or None)."""
    adapter = adapter_for(lm)
    return adapter.unembed_weight(), adapter.unembed_bias()


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
