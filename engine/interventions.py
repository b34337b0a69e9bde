"""Changing what a head, a position or a path contributes, and measuring what follows.

Every intervention is a set of hooks on ``engine.hooks.forward``:

- ablation: a head's output (``hook_z``) replaced by zero, or by its mean over another set of
  prompts, position by position (mean ablation, the IOI paper's knock-out);
- activation patching: a head's output, or the residual stream at a layer, copied from a
  *source* run into a *target* run, at all positions or chosen ones. Denoising is target =
  corrupted, source = clean; noising is the other way round;
- Q/K/V patching: only a head's query (the question), key (who answers) or value (the answer)
  taken from the source run;
- path patching: a sender head's source output reaching a receiver head's Q, K or V input by the
  direct path only, everything else as in the target run.

Head outputs are patched before the output projection (``hook_z``); because the projection is
linear this is the same as patching each head's write into the residual stream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from engine.errors import UsageError
from engine.hooks import Hook, act_name, attn_inputs, forward, w_out

if TYPE_CHECKING:
    import torch

    from engine.loaded import LoadedModel, Tokens

HeadIndex = tuple[int, int]
Metric = Callable[["torch.Tensor"], "torch.Tensor"]
"""Takes last-position logits [n, vocab] and returns one value per row, [n]. Grids call it on
several copies of the batch stacked (n a multiple of the batch), so it tiles its answers."""


class LogitDiff:
    """logit(correct) - logit(wrong) at the last position, one value per prompt; the IOI
    metric. Answers are token ids per prompt."""

    def __init__(self, correct: Sequence[int], wrong: Sequence[int]) -> None:
        import torch

        self.correct = torch.as_tensor(list(correct), dtype=torch.long)
        self.wrong = torch.as_tensor(list(wrong), dtype=torch.long)

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        import torch

        copies = logits.shape[0] // len(self.correct)
        correct = self.correct.to(logits.device).repeat(copies)
        wrong = self.wrong.to(logits.device).repeat(copies)
        rows = torch.arange(logits.shape[0], device=logits.device)
        return logits[rows, correct] - logits[rows, wrong]


def _group_by_layer(
    heads: Iterable[HeadIndex], n_layers: int, n_heads: int
) -> dict[int, list[int]]:
    by_layer: dict[int, list[int]] = {}
    for layer, head in heads:
        if not (0 <= layer < n_layers and 0 <= head < n_heads):
            raise UsageError(f"no head {layer}.{head} in a model of {n_layers}x{n_heads}")
        by_layer.setdefault(layer, []).append(head)
    return by_layer


def _same_shape(target: Tokens, source: Tokens) -> None:
    if list(target.lengths) != list(source.lengths):
        raise UsageError("patching needs source and target prompts of the same token lengths")


# --------------------------------------------------------------------------- ablation


def mean_z(lm: LoadedModel, reference: Tokens,
           templates: Sequence[int] | None = None) -> dict[int, torch.Tensor]:
    """Each layer's head outputs averaged over the reference prompts, per position:
    {layer: [pos, head, d_head]} (``group_means`` with one group, or with ``templates``
    the means of the first prompt's template). Positions only some prompts reach average
    over those."""
    import torch

    with torch.inference_mode():
        run = forward(lm, reference, record=["z"], logits="none")
    return {
        layer: group_means(run[act_name("z", layer)], reference.lengths, templates)[0]
        for layer in range(lm.n_layers)
    }


def ablation_hooks(
    lm: LoadedModel,
    heads: Iterable[HeadIndex],
    *,
    method: Literal["mean", "zero"] = "mean",
    means: dict[int, torch.Tensor] | None = None,
) -> dict[str, Hook]:
    """Hooks that knock the given heads out."""
    by_layer = _group_by_layer(heads, lm.n_layers, lm.n_heads)
    if method == "mean" and means is None:
        raise UsageError("mean ablation needs means (see mean_z) or reference prompts")
    if method not in ("mean", "zero"):
        raise UsageError(f"unknown ablation method {method!r}")

    def make(layer: int, head_list: list[int]) -> Hook:
        def hook(z: torch.Tensor) -> torch.Tensor:
            z = z.clone()
            if method == "zero":
                z[:, :, head_list] = 0.0
            else:
                mean = _fit_positions(means[layer], z.shape[1])  # type: ignore[index]
                z[:, :, head_list] = mean[None, :, head_list]
            return z

        return hook

    return {act_name("z", layer): make(layer, hs) for layer, hs in by_layer.items()}


def _fit_positions(mean: torch.Tensor, n_ctx: int) -> torch.Tensor:
    """Means for ``n_ctx`` positions: cut, or padded with the mean over all positions."""
    import torch

    if mean.shape[0] >= n_ctx:
        return mean[:n_ctx]
    filler = mean.mean(0, keepdim=True).expand(n_ctx - mean.shape[0], *mean.shape[1:])
    return torch.cat([mean, filler], dim=0)


def ablate_heads(
    lm: LoadedModel,
    tokens: Tokens,
    heads: Iterable[HeadIndex],
    *,
    method: Literal["mean", "zero"] = "mean",
    reference: Tokens | None = None,
    means: dict[int, torch.Tensor] | None = None,
    logits: Literal["all", "last"] = "all",
) -> torch.Tensor:
    """Logits with the given heads knocked out (mean over ``reference``, or zero)."""
    import torch

    if method == "mean" and means is None:
        if reference is None:
            raise UsageError("mean ablation needs reference prompts")
        means = mean_z(lm, reference)
    hooks = ablation_hooks(lm, heads, method=method, means=means)
    with torch.inference_mode():
        return forward(lm, tokens, hooks=hooks, logits=logits).logits


# --------------------------------------------------------------------------- activation patching


def _positions_mask(positions: Sequence[int] | torch.Tensor | None, tokens: Tokens):
    """[batch, pos] bool: where to patch. ``positions`` is one index per prompt, or None (all)."""
    import torch

    batch, n_ctx = tokens.ids.shape
    if positions is None:
        return torch.ones(batch, n_ctx, dtype=torch.bool, device=tokens.ids.device)
    index = torch.as_tensor(positions, device=tokens.ids.device).reshape(batch, -1)
    mask = torch.zeros(batch, n_ctx, dtype=torch.bool, device=tokens.ids.device)
    mask.scatter_(1, index, True)
    return mask


def patch_heads(
    lm: LoadedModel,
    target: Tokens,
    source: Tokens,
    heads: Iterable[HeadIndex],
    *,
    positions: Sequence[int] | torch.Tensor | None = None,
    which: Literal["z", "q", "k", "v"] = "z",
    logits: Literal["all", "last"] = "all",
) -> torch.Tensor:
    """Logits of ``target`` with the heads' output (or only their q, k or v) from ``source``.

    ``positions``: per prompt, the position(s) to patch; None patches every position.
    """
    import torch

    _same_shape(target, source)
    by_layer = _group_by_layer(heads, lm.n_layers, lm.n_heads)
    names = [act_name(which, layer) for layer in by_layer]
    with torch.inference_mode():
        source_run = forward(lm, source, record=names, logits="none")
        mask = _positions_mask(positions, target)[:, :, None, None]
        hooks: dict[str, Hook] = {}
        for layer, head_list in by_layer.items():
            name = act_name(which, layer)
            hooks[name] = _replace_heads(source_run.cache[name], head_list, mask)
        return forward(lm, target, hooks=hooks, logits=logits).logits


def _replace_heads(source: torch.Tensor, head_list: list[int], mask: torch.Tensor) -> Hook:
    """A hook putting ``source``'s heads into the activation where ``mask`` holds."""
    import torch

    def hook(act: torch.Tensor) -> torch.Tensor:
        act = act.clone()
        act[:, :, head_list] = torch.where(mask, source[:, :, head_list], act[:, :, head_list])
        return act

    return hook


def patch_resid(
    lm: LoadedModel,
    target: Tokens,
    source: Tokens,
    layer: int,
    *,
    positions: Sequence[int] | torch.Tensor | None = None,
    kind: Literal["resid_pre", "resid_mid", "resid_post"] = "resid_pre",
    logits: Literal["all", "last"] = "all",
) -> torch.Tensor:
    """Logits of ``target`` with the residual stream at ``layer`` taken from ``source``
    (the essay's "replace a person by their counterpart from another sentence")."""
    import torch

    _same_shape(target, source)
    if not 0 <= layer < lm.n_layers:
        raise UsageError(f"no layer {layer} in a model of {lm.n_layers} layers")
    name = act_name(kind, layer)
    with torch.inference_mode():
        src = forward(lm, source, record=[name], stop_layer=layer + 1).cache[name]
        mask = _positions_mask(positions, target)[:, :, None]

        def hook(act: torch.Tensor) -> torch.Tensor:
            return torch.where(mask, src, act)

        return forward(lm, target, hooks={name: hook}, logits=logits).logits


def path_patch(
    lm: LoadedModel,
    target: Tokens,
    source: Tokens,
    sender: HeadIndex,
    receiver: HeadIndex,
    *,
    which: Literal["q", "k", "v"] = "q",
    logits: Literal["all", "last"] = "all",
) -> torch.Tensor:
    """Logits of ``target`` when only the receiver's Q/K/V input sees the sender's ``source``
    output, through the direct residual path; every other head reads the target run.

    Because the change sits in the receiver's own layer, all earlier computation equals the
    target run: the receiver's new input is that run's ``resid_pre`` plus the sender's change
    in its residual write. For a model whose query heads share key/value heads, the receiver's
    k or v is its own query head's copy of the shared one: only that query head sees it.
    """
    import torch

    _same_shape(target, source)
    (s_layer, s_head), (r_layer, r_head) = sender, receiver
    _group_by_layer([sender, receiver], lm.n_layers, lm.n_heads)
    if s_layer >= r_layer:
        raise UsageError(
            f"sender {s_layer}.{s_head} must sit in an earlier layer than the receiver"
        )
    z_name, resid_name = act_name("z", s_layer), act_name("resid_pre", r_layer)
    with torch.inference_mode():
        z_source = forward(lm, source, record=[z_name], stop_layer=s_layer + 1).cache[z_name]
        target_run = forward(lm, target, record=[z_name, resid_name], stop_layer=r_layer + 1)
        dz = z_source[:, :, s_head] - target_run.cache[z_name][:, :, s_head]  # [b, pos, d_head]
        delta = dz @ w_out(lm, s_layer)[s_head]  # [b, pos, d_model]
        resid = target_run.cache[resid_name] + delta
        part = {"q": 0, "k": 1, "v": 2}[which]
        new = attn_inputs(lm, r_layer, resid)[part][:, :, r_head]

        def hook(act: torch.Tensor) -> torch.Tensor:
            act = act.clone()
            act[:, :, r_head] = new
            return act

        return forward(lm, target, hooks={act_name(which, r_layer): hook}, logits=logits).logits


# --------------------------------------------------------------------------- the one runner

ALL = "*"
"""The position name that means every position of the prompt."""


@dataclass(frozen=True)
class Edit:
    """What to change in one patched run. Frozen and hashable, so results can be memoised
    by ``Edit.key()``. Positions are names (``PatchState.positions``, e.g. the puzzle's roles:
    one position per prompt) or ``ALL``.

    - ``ablate``: heads (layer, head) set to their ablation means at every position (see
      ``group_means``);
    - ``z``: (layer, head, at): the head's output at ``at`` taken from the source run;
    - ``mlp``: (layer, at): the MLP's output at ``at`` from the source run;
    - ``resid``: (layer, at): the residual stream entering ``layer`` at ``at`` from the source;
    - ``q_path``: (layer, head, at): the head's source-minus-target write at ``at`` reaches the
      *queries* of every head of every later layer at ``at`` by the direct path, and nothing
      else (the head's own output stays the target's). Its effect is what the head does
      through later heads' questions, as path patching measures it;
    - ``qkv``: (which, layer, head, at), which in q/k/v: only the head's query, key or value at
      ``at`` from the source run. Keys and values are per *query* head (see
      ``engine.adapters``): for heads that share them, only that query head sees the change.
    """

    ablate: frozenset[HeadIndex] = frozenset()
    z: tuple[tuple[int, int, str], ...] = ()
    mlp: tuple[tuple[int, str], ...] = ()
    resid: tuple[tuple[int, str], ...] = ()
    q_path: tuple[tuple[int, int, str], ...] = ()
    qkv: tuple[tuple[str, int, int, str], ...] = ()

    @staticmethod
    def of(*, ablate: Iterable[HeadIndex] = (), z: Iterable[tuple[int, int, str]] = (),
           mlp: Iterable[tuple[int, str]] = (), resid: Iterable[tuple[int, str]] = (),
           q_path: Iterable[tuple[int, int, str]] = (),
           qkv: Iterable[tuple[str, int, int, str]] = ()) -> Edit:
        """An edit with its parts sorted, so that equal edits are equal objects."""
        qkv = tuple(sorted(set(qkv)))
        if any(which not in ("q", "k", "v") for which, *_ in qkv):
            raise UsageError("a qkv edit patches q, k or v")
        return Edit(frozenset(ablate), tuple(sorted(set(z))), tuple(sorted(set(mlp))),
                    tuple(sorted(set(resid))), tuple(sorted(set(q_path))), qkv)

    def key(self) -> str:
        """A stable text key (for memos and cache files)."""
        return (";".join(f"{a}.{b}" for a, b in sorted(self.ablate)) + "|"
                + ";".join(f"{a}.{b}@{r}" for a, b, r in self.z) + "|"
                + ";".join(f"{a}@{r}" for a, r in self.mlp)
                + ("|r:" + ";".join(f"{a}@{r}" for a, r in self.resid) if self.resid else "")
                + ("|q:" + ";".join(f"{a}.{b}@{r}" for a, b, r in self.q_path)
                   if self.q_path else "")
                + ("|a:" + ";".join(f"{w}{a}.{b}@{r}" for w, a, b, r in self.qkv)
                   if self.qkv else ""))

    def first_layer(self, n_layers: int) -> int:
        """The first layer this edit changes (``n_layers - 1`` for an empty edit)."""
        layers = ([a for a, _ in self.ablate] + [a for a, _, _ in self.z]
                  + [a for a, _ in self.mlp] + [a for a, _ in self.resid]
                  + [a for a, _, _ in self.q_path] + [a for _, a, _, _ in self.qkv])
        return min(min(layers, default=n_layers - 1), n_layers - 1)


@dataclass
class PatchState:
    """Everything the runner needs about one batch of target prompts, cached once.

    ``tokens``: the target prompts (N). ``at``: where the metric is read [N]. ``metric``:
    the final residual stream at ``at`` [B, d_model] -> [B] (B a multiple of N, copies
    stacked copy-major; see ``engine.metrics.PuzzleMetric.on_resid``). ``positions``: named
    positions, one per prompt [N]. ``means``: ablation means [L, N, pos, head, d_head].
    ``source_z`` [L, N, pos, head, d_head], ``source_mlp`` [L, N, pos, d_model],
    ``source_resid`` [L, N, pos, d_model]: the source run, for the edits that need it.
    ``target_resid``: the target's ``resid_pre`` per layer [L, N, pos, d_model]; with it a
    patched run starts at the first layer its edit changes instead of at the embedding.
    ``source_qkv``: the source run's ``hook_q``/``_k``/``_v`` per layer, for ``qkv`` edits.
    """

    tokens: Tokens
    at: torch.Tensor
    metric: Callable[[torch.Tensor], torch.Tensor]
    positions: dict[str, torch.Tensor]
    means: torch.Tensor | None = None
    source_z: torch.Tensor | None = None
    source_mlp: torch.Tensor | None = None
    source_resid: torch.Tensor | None = None
    target_resid: torch.Tensor | None = None
    source_qkv: dict[str, torch.Tensor] | None = None
    """{"q" | "k" | "v": [L, N, pos, head, d_head]}: the source run's queries, keys, values."""

    @property
    def n(self) -> int:
        return len(self.tokens)

    def where(self, at: str) -> torch.Tensor | None:
        """Positions [N] of a name, or None for every position."""
        if at == ALL:
            return None
        if at not in self.positions:
            raise UsageError(f"no position called {at!r}")
        return self.positions[at]


RUNNER = {"batches": 0, "copies": 0}
"""What ``run_edits`` ran in this process: stacked batches and patched copies (one copy =
every prompt once). For tests and benchmarks."""


def run_edits(lm: LoadedModel, state: PatchState, edits: Sequence[Edit], *,
              max_batch: int = 512) -> torch.Tensor:
    """The per-prompt metric [K, N] of each edit's patched run, in stacked batches: copies
    that start at the same layer share a batch of at most ``max_batch`` rows."""
    import torch

    from engine.loaded import Tokens

    n = state.n
    final = act_name("resid_post", lm.n_layers - 1)
    per_chunk = max(1, max_batch // max(n, 1))

    def start(edit: Edit) -> int:
        return 0 if state.target_resid is None else edit.first_layer(lm.n_layers)

    order = sorted(range(len(edits)), key=lambda i: start(edits[i]))
    chunks: list[list[int]] = []
    for i in order:
        if chunks and len(chunks[-1]) < per_chunk and start(edits[chunks[-1][0]]) == start(
                edits[i]):
            chunks[-1].append(i)
        else:
            chunks.append([i])
    RUNNER["batches"] += len(chunks)
    RUNNER["copies"] += len(edits)
    results: dict[int, torch.Tensor] = {}
    rows = torch.arange(n, device=state.tokens.ids.device)
    for idx in chunks:
        chunk = [edits[i] for i in idx]
        k = len(chunk)
        first = start(chunk[0])
        hooks = _edit_hooks(lm, state, chunk, first)
        tokens = Tokens(ids=state.tokens.ids.repeat(k, 1), lengths=list(state.tokens.lengths) * k)
        with torch.no_grad():
            if state.target_resid is not None:  # start from the cache, even at layer 0
                run = forward(lm, tokens, record=[final], hooks=hooks, logits="none",
                              start_layer=first, resid=state.target_resid[first].repeat(k, 1, 1))
            else:
                run = forward(lm, tokens, record=[final], hooks=hooks, logits="none")
            resid = run.cache[final].view(k, n, *run.cache[final].shape[1:])
            at = resid[:, rows, state.at]  # [k, N, d_model]
            values = state.metric(at.reshape(k * n, -1)).view(k, n)
        for j, i in enumerate(idx):
            results[i] = values[j].float().cpu()
        del run
    if not edits:
        return torch.empty(0, n)
    return torch.stack([results[i] for i in range(len(edits))])


def _edit_hooks(lm: LoadedModel, state: PatchState, chunk: Sequence[Edit], first: int
                ) -> dict[str, Hook]:
    """The hooks that apply a stack of edits (copy c of the batch gets ``chunk[c]``)."""
    import torch

    k, n, L = len(chunk), state.n, lm.n_layers
    rows = torch.arange(n, device=state.tokens.ids.device)
    parts: dict[str, list[Hook]] = {}

    def add(name: str, fn: Hook) -> None:
        parts.setdefault(name, []).append(fn)

    def need(tensor: torch.Tensor | None, what: str) -> torch.Tensor:
        if tensor is None:
            raise UsageError(f"this patch needs the source run's {what}")
        return tensor

    for layer in range(first, L):
        ablate = torch.zeros(k, lm.n_heads, dtype=torch.bool, device=rows.device)
        z_edits = [(c, h, at) for c, e in enumerate(chunk) for (l_, h, at) in e.z if l_ == layer]
        for c, e in enumerate(chunk):
            for l_, h in e.ablate:
                if l_ == layer:
                    ablate[c, h] = True
        if bool(ablate.any()) or z_edits:
            means = need(state.means, "ablation means")[layer] if bool(ablate.any()) else None
            src = need(state.source_z, "head outputs")[layer] if z_edits else None
            add(act_name("z", layer), _z_hook(state, k, ablate, means, z_edits, src, rows))
        mlp_edits = [(c, at) for c, e in enumerate(chunk) for (l_, at) in e.mlp if l_ == layer]
        if mlp_edits:
            add(act_name("mlp_out", layer),
                _replace_at(state, k, mlp_edits, need(state.source_mlp, "MLP outputs")[layer],
                            rows))
        resid_edits = [(c, at) for c, e in enumerate(chunk) for (l_, at) in e.resid
                       if l_ == layer]
        if resid_edits:
            add(act_name("resid_pre", layer),
                _replace_at(state, k, resid_edits,
                            need(state.source_resid, "residual stream")[layer], rows))
        for which in ("q", "k", "v"):
            head_edits = [(c, h, at) for c, e in enumerate(chunk) for (w, l_, h, at) in e.qkv
                          if w == which and l_ == layer]
            if head_edits:
                sources = need(state.source_qkv, "queries, keys and values")
                add(act_name(which, layer),
                    _heads_from(state, k, head_edits, need(sources.get(which), which)[layer],
                                rows))
    senders = [(c, s) for c, e in enumerate(chunk) for s in e.q_path]
    if senders:
        _q_path_hooks(lm, state, k, senders, first, rows, add)

    def compose(fns: list[Hook]) -> Hook:
        def hook(value: torch.Tensor) -> torch.Tensor:
            for fn in fns:
                out = fn(value)
                if out is not None:
                    value = out
            return value

        return hook

    return {name: fns[0] if len(fns) == 1 else compose(fns) for name, fns in parts.items()}


def _z_hook(state: PatchState, k: int, ablate, means, z_edits, src, rows) -> Hook:
    import torch

    n = state.n

    def hook(z: torch.Tensor) -> torch.Tensor:
        z5 = z.view(k, n, *z.shape[1:]).clone()  # [K, N, pos, H, d]
        if means is not None:
            z5 = torch.where(ablate[:, None, None, :, None], means[None, :, : z5.shape[2]], z5)
        for c, h, at in z_edits:
            p = state.where(at)
            if p is None:
                z5[c, :, :, h] = src[:, : z5.shape[2], h]
            else:
                z5[c, rows, p, h] = src[rows, p, h]
        return z5.view(z.shape)

    return hook


def _heads_from(state: PatchState, k: int, edits, src, rows) -> Hook:
    """A hook putting the source's head slices [N, pos, head, d] into copy c at (head, at)."""
    n = state.n

    def hook(act: torch.Tensor) -> torch.Tensor:
        a = act.view(k, n, *act.shape[1:]).clone()  # [K, N, pos, H, d]
        for c, h, at in edits:
            p = state.where(at)
            if p is None:
                a[c, :, :, h] = src[:, : a.shape[2], h]
            else:
                a[c, rows, p, h] = src[rows, p, h]
        return a.view(act.shape)

    return hook


def _replace_at(state: PatchState, k: int, edits, src, rows) -> Hook:
    """A hook putting the source's activation [N, pos, ...] in copy c at each edit's place."""
    n = state.n

    def hook(act: torch.Tensor) -> torch.Tensor:
        a = act.view(k, n, *act.shape[1:]).clone()
        for c, at in edits:
            p = state.where(at)
            if p is None:
                a[c] = src[:, : a.shape[2]]
            else:
                a[c, rows, p] = src[rows, p]
        return a.view(act.shape)

    return hook


def _q_path_hooks(lm, state: PatchState, k: int, senders, first: int, rows, add) -> None:
    """Path patching into every later head's query at the sender's position: the sender's
    write changes (source minus the live run, through the output projection) are collected at
    its layer and added to the residual stream that later layers' queries are computed from,
    and only there."""

    n = state.n
    src = state.source_z
    if src is None:
        raise UsageError("path patching needs the source run's head outputs")
    deltas: dict[int, list[tuple[int, torch.Tensor, torch.Tensor]]] = {}  # layer -> (c, pos, d)
    live: dict[int, torch.Tensor] = {}
    by_layer: dict[int, list[tuple[int, int, str]]] = {}
    for c, (layer, h, at) in senders:
        if at == ALL:
            raise UsageError("path patching needs one position per prompt, not every position")
        by_layer.setdefault(layer, []).append((c, h, at))

    def capture(layer: int, entries) -> Hook:
        def hook(z: torch.Tensor) -> None:
            z5 = z.view(k, n, *z.shape[1:])
            w = w_out(lm, layer)
            for c, h, at in entries:
                p = state.where(at)
                dz = src[layer][rows, p, h] - z5[c, rows, p, h]  # [N, d_head]
                deltas.setdefault(layer, []).append((c, p, dz @ w[h]))
            return None

        return hook

    for layer, entries in by_layer.items():
        add(act_name("z", layer), capture(layer, entries))
    lowest = min(by_layer)
    for layer in range(max(first, lowest + 1), lm.n_layers):
        def keep(resid: torch.Tensor, layer: int = layer) -> None:
            live[layer] = resid
            return None

        def query(q: torch.Tensor, layer: int = layer) -> torch.Tensor:
            q5 = q.view(k, n, *q.shape[1:]).clone()
            resid = live[layer].view(k, n, *live[layer].shape[1:])
            total: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}
            for sender_layer, items in deltas.items():
                if sender_layer >= layer:
                    continue
                for c, p, d in items:  # senders of one copy at one position add up
                    slot = (c, id(p))
                    total[slot] = (p, total[slot][1] + d) if slot in total else (p, d)
            for (c, _), (p, d) in total.items():
                x = resid[c, rows, p] + d  # [N, d_model]
                q5[c, rows, p] = attn_inputs(lm, layer, x)[0]
            return q5.view(q.shape)

        add(act_name("resid_pre", layer), keep)
        add(act_name("q", layer), query)


def group_means(acts: torch.Tensor, lengths: Sequence[int],
                groups: Sequence[int] | None = None) -> torch.Tensor:
    """The mean-ablation definition, used everywhere: for each prompt, the mean of ``acts``
    [N, pos, ...] over the prompts of its group (a puzzle's template), position by position;
    positions a prompt does not reach (padding) do not count. Returns [N, pos, ...]."""
    import torch

    n, width = acts.shape[0], acts.shape[1]
    device = acts.device
    lengths_t = torch.as_tensor(list(lengths), device=device)
    present = (torch.arange(width, device=device)[None] < lengths_t[:, None]).to(acts.dtype)
    g = torch.as_tensor(list(groups) if groups else [0] * n, device=device)
    flat = acts.reshape(n, width, -1)
    out = torch.empty_like(flat)
    for t in g.unique():
        member = g == t
        w = present[member]  # [m, pos]
        total = (flat[member] * w[:, :, None]).sum(0)  # [pos, x]
        out[member] = (total / w.sum(0).clamp(min=1)[:, None])[None]
    return out.reshape(acts.shape)


# --------------------------------------------------------------------------- patching grids


@dataclass
class HeadPatchGrid:
    """A head-patching grid and the two unpatched baselines, read from the same two runs."""

    effects: torch.Tensor  # [layer, head]: mean metric with that head patched
    target_metric: float  # mean metric of the target run, nothing patched
    source_metric: float  # mean metric of the source run


def head_patch_grid(
    lm: LoadedModel,
    target: Tokens,
    source: Tokens,
    metric: Metric,
    *,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    max_batch: int = 512,
) -> torch.Tensor:
    """The metric (mean over prompts) after patching each head's output, at all positions,
    from ``source`` into ``target``: [layer, head]. Denoising: target = corrupted prompts,
    source = clean prompts. See ``head_patch_grid_run`` for the baselines too."""
    return head_patch_grid_run(
        lm, target, source, metric, progress=progress, cancelled=cancelled, max_batch=max_batch
    ).effects


def head_patch_grid_run(
    lm: LoadedModel,
    target: Tokens,
    source: Tokens,
    metric: Metric,
    *,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    max_batch: int = 512,
) -> HeadPatchGrid:
    """``head_patch_grid`` with the unpatched target and source metrics (``patch_grid`` with
    ``at="head"``)."""
    grid = patch_grid(lm, target, source, metric, at="head", progress=progress,
                      cancelled=cancelled, max_batch=max_batch)
    return HeadPatchGrid(effects=grid.effects, target_metric=grid.target_metric,
                         source_metric=grid.source_metric)


PATCH_AT = {"head": "z", "query": "q", "key": "k", "value": "v", "resid": "resid_pre"}
"""What ``patch_grid(at=...)`` swaps: a head's output (``hook_z``), its query, key or value,
or the residual stream entering a layer at one person's position."""


@dataclass
class PatchGrid:
    """One grid of patched (or silenced) runs and the two unpatched baselines.

    ``effects`` [layer, column]: the mean metric with that one cell changed; columns are the
    heads, or the positions' names for ``at="resid"``. ``target_metric`` is the run that is
    changed (corrupted when patching, clean when silencing), ``source_metric`` the other."""

    at: str  # head | query | key | value | resid | silence
    position: str  # where a head is patched (ALL or a position's name); resid: per column
    columns: list[str]
    effects: torch.Tensor
    target_metric: float
    source_metric: float


def patch_grid(
    lm: LoadedModel,
    target: Tokens,
    source: Tokens,
    metric: Metric,
    *,
    at: str = "head",
    position: str = ALL,
    positions: dict[str, Sequence[int]] | None = None,
    templates: Sequence[int] | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    max_batch: int = 512,
) -> PatchGrid:
    """Every cell of one kind of intervention, one head (or one person) at a time, through
    ``run_edits`` (the one runner): each layer's runs start from the target's cached
    ``resid_pre`` and all of a layer's cells run in one stacked batch.

    - ``at`` in head/query/key/value: that part of one head, from ``source`` into ``target``,
      at ``position`` (a name in ``positions``, one index per prompt) or at every position;
    - ``at="resid"``: the residual stream entering each layer at each named position;
    - ``at="silence"``: each head mean-ablated in ``target`` at every position, the means
      taken over ``source`` per template and position (``group_means``, the judge's knock-out;
      ``templates`` gives each source prompt's template).

    Denoising is target = corrupted, source = clean; silencing is target = clean, source =
    corrupted. ``metric`` reads last-position logits.
    """
    import torch

    from engine.hooks import unembed

    if at not in (*PATCH_AT, "silence"):
        raise UsageError(f"cannot patch at {at!r}: use {', '.join(PATCH_AT)} or silence")
    _same_shape(target, source)
    positions = dict(positions or {})
    if at == "resid" and not positions:
        raise UsageError("patching the residual stream needs named positions")
    if position != ALL and position not in positions:
        raise UsageError(f"no position called {position!r}; there are: "
                         f"{', '.join(positions) or 'none'}")
    L, device = lm.n_layers, target.ids.device
    kind = PATCH_AT.get(at, "z")
    names = [act_name(kind, layer) for layer in range(L)]
    resid_names = [act_name("resid_pre", layer) for layer in range(L)]
    final = act_name("resid_post", L - 1)
    last = target.last.to(device)
    rows = torch.arange(len(target), device=device)
    columns = list(positions) if at == "resid" else [str(h) for h in range(lm.n_heads)]
    grid = torch.empty(L, len(columns))
    with torch.inference_mode():
        source_run = forward(lm, source, record=[*names, final], logits="none")
        target_run = forward(lm, target, record=[*resid_names, final], logits="none")
        stacked = torch.stack([source_run[n] for n in names])
        state = PatchState(
            tokens=target, at=last, metric=lambda r: metric(unembed(lm, r)),
            positions={name: torch.as_tensor(list(p), device=device)
                       for name, p in positions.items()},
            target_resid=torch.stack([target_run[n] for n in resid_names]),
        )
        if at == "silence":
            state.means = torch.stack([group_means(z, source.lengths, templates)
                                       for z in stacked])
        elif at == "head":
            state.source_z = stacked
        elif at == "resid":
            state.source_resid = stacked
        else:
            state.source_qkv = {kind: stacked}
        target_metric = float(state.metric(target_run[final][rows, last]).float().mean())
        source_metric = float(state.metric(source_run[final][rows, last]).float().mean())
        del source_run, target_run, stacked
        for layer in range(L):
            if cancelled is not None and cancelled():
                raise InterruptedError("patching cancelled")
            if at == "resid":
                edits = [Edit.of(resid=[(layer, role)]) for role in columns]
            elif at == "silence":
                edits = [Edit.of(ablate=[(layer, h)]) for h in range(lm.n_heads)]
            elif at == "head":
                edits = [Edit.of(z=[(layer, h, position)]) for h in range(lm.n_heads)]
            else:
                edits = [Edit.of(qkv=[(kind, layer, h, position)]) for h in range(lm.n_heads)]
            grid[layer] = run_edits(lm, state, edits, max_batch=max_batch).mean(1)
            if progress is not None:
                progress(layer + 1, L)
    return PatchGrid(at=at, position=ALL if at in ("resid", "silence") else position,
                     columns=columns, effects=grid, target_metric=target_metric,
                     source_metric=source_metric)


def attribution_patch_grid(
    lm: LoadedModel, target: Tokens, source: Tokens, metric: Metric, *,
    which: Literal["z", "q", "k", "v"] = "z", positions: Sequence[int] | None = None,
) -> torch.Tensor:
    """First-order estimate of a head grid (``patch_grid`` at head/query/key/value) from one
    forward and one backward: metric(target) + grad . (source - target), per head, summed
    over positions (or only at ``positions``, one per prompt). Fast enough for a first
    picture; exact patching then replaces it."""
    import torch

    _same_shape(target, source)
    if which not in ("z", "q", "k", "v"):
        raise UsageError(f"attribution patching estimates z, q, k or v, not {which!r}")
    names = [act_name(which, layer) for layer in range(lm.n_layers)]
    with torch.inference_mode():
        source_acts = forward(lm, source, record=names, logits="none").cache
    source_acts = {k: v.clone() for k, v in source_acts.items()}
    mask = _positions_mask(positions, target).to(next(iter(source_acts.values())).dtype)
    leaves: dict[str, torch.Tensor] = {}

    def make(name: str) -> Hook:
        def hook(act: torch.Tensor) -> torch.Tensor:
            leaves[name] = torch.zeros_like(act, requires_grad=True)
            return act + leaves[name]

        return hook

    with torch.enable_grad():
        run = forward(
            lm, target, record=names, hooks={n: make(n) for n in names}, logits="last"
        )
        base = metric(run.logits).mean()
        base.backward()
    grid = torch.stack([
        ((source_acts[n] - run.cache[n].detach()) * leaves[n].grad
         * mask[:, :, None, None]).sum(dim=(0, 1, 3))
        for n in names
    ])
    return (grid + base.detach()).float().cpu()


def resid_patch_grid(
    lm: LoadedModel,
    target: Tokens,
    source: Tokens,
    positions_by_role: dict[str, Sequence[int]],
    metric: Metric,
    layers: Iterable[int] | None = None,
    *,
    cancelled: Callable[[], bool] | None = None,
    max_batch: int = 512,
) -> torch.Tensor:
    """The metric (mean over prompts) after copying ``source``'s residual stream at one role's
    position into ``target`` at the start of a layer: [layer, role], rows in ``layers`` order
    (default: every layer), columns in ``positions_by_role`` order. ``positions_by_role[r]``
    holds one position per prompt. Cell [i, j] equals ``patch_resid(lm, target, source,
    layers[i], positions=positions_by_role[role_j])`` read by ``metric`` and averaged.

    It is ``run_edits`` (the one runner) with one residual edit per cell: both runs'
    ``resid_pre`` are recorded once, each layer's patched runs start at that layer, and the
    metric is read at each prompt's last position.
    """
    import torch

    from engine.hooks import unembed

    _same_shape(target, source)
    layers = list(range(lm.n_layers)) if layers is None else list(layers)
    for layer in layers:
        if not 0 <= layer < lm.n_layers:
            raise UsageError(f"no layer {layer} in a model of {lm.n_layers} layers")
    roles = list(positions_by_role)
    grid = torch.empty(len(layers), len(roles))
    if not layers or not roles:
        return grid
    device = target.ids.device
    names = [act_name("resid_pre", layer) for layer in range(lm.n_layers)]
    stop = max(layers) + 1
    with torch.inference_mode():
        source_run = forward(lm, source, record=names[:stop], stop_layer=stop).cache
        target_run = forward(lm, target, record=names[:stop], stop_layer=stop).cache
        zeros = torch.zeros_like(target_run[names[0]])
        state = PatchState(
            tokens=target, at=target.last.to(device), metric=lambda r: metric(unembed(lm, r)),
            positions={role: torch.as_tensor(list(positions_by_role[role]), device=device)
                       for role in roles},
            source_resid=torch.stack([source_run.get(n, zeros) for n in names]),
            target_resid=torch.stack([target_run.get(n, zeros) for n in names]),
        )
        del source_run, target_run
        for row, layer in enumerate(layers):
            if cancelled is not None and cancelled():
                raise InterruptedError("patching cancelled")
            edits = [Edit.of(resid=[(layer, role)]) for role in roles]
            grid[row] = run_edits(lm, state, edits, max_batch=max_batch).mean(1)
    return grid
