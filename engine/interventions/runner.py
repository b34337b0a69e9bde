"""The one runner: a frozen ``Edit`` says what to change in a patched run, and ``run_edits``
runs many edits as copies of one stacked batch, each starting from the target's cached
residual stream at the first layer it changes. The judge and every grid go through it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine.errors import UsageError
from engine.hooks import Hook, Prefix, act_name, attn_inputs, forward, keys_values, w_out
from engine.interventions.basics import HeadIndex

if TYPE_CHECKING:
    import torch

    from engine.loaded import LoadedModel, Tokens

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
    - ``q_receivers``: when given, the ``q_path`` changes reach only these heads' queries
      (layer, head), not every later head's: the path from a sender to named receivers (the
      judge's s-inhibition test sends to the name movers only);
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
    q_receivers: frozenset[HeadIndex] = frozenset()

    @staticmethod
    def of(*, ablate: Iterable[HeadIndex] = (), z: Iterable[tuple[int, int, str]] = (),
           mlp: Iterable[tuple[int, str]] = (), resid: Iterable[tuple[int, str]] = (),
           q_path: Iterable[tuple[int, int, str]] = (),
           qkv: Iterable[tuple[str, int, int, str]] = (),
           q_receivers: Iterable[HeadIndex] = ()) -> Edit:
        """An edit with its parts sorted, so that equal edits are equal objects."""
        qkv = tuple(sorted(set(qkv)))
        if any(which not in ("q", "k", "v") for which, *_ in qkv):
            raise UsageError("a qkv edit patches q, k or v")
        receivers = frozenset(q_receivers)
        if receivers and not q_path:
            raise UsageError("q_receivers names the receivers of a q_path edit")
        return Edit(frozenset(ablate), tuple(sorted(set(z))), tuple(sorted(set(mlp))),
                    tuple(sorted(set(resid))), tuple(sorted(set(q_path))), qkv, receivers)

    def key(self) -> str:
        """A stable text key (for memos and cache files)."""
        return (";".join(f"{a}.{b}" for a, b in sorted(self.ablate)) + "|"
                + ";".join(f"{a}.{b}@{r}" for a, b, r in self.z) + "|"
                + ";".join(f"{a}@{r}" for a, r in self.mlp)
                + ("|r:" + ";".join(f"{a}@{r}" for a, r in self.resid) if self.resid else "")
                + ("|q:" + ";".join(f"{a}.{b}@{r}" for a, b, r in self.q_path)
                   if self.q_path else "")
                + ("|to:" + ";".join(f"{a}.{b}" for a, b in sorted(self.q_receivers))
                   if self.q_receivers else "")
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
    ``target_resid``: the target's ``resid_pre`` at every layer [L, N, pos, d_model]; with it
    a patched run starts at the first layer and the first position its edit changes instead
    of at the embedding (the earlier positions' keys and values come from it).
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
    target_kv: dict[int, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    """Per layer, the target's keys (after rotary) and values at every position, made from
    ``target_resid`` when a patched run first needs them (``Prefix``)."""

    @property
    def n(self) -> int:
        return len(self.tokens)

    def kv_before(self, lm: LoadedModel, layer: int, start: int
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """The target's keys and values of ``layer`` at positions before ``start``."""
        if layer not in self.target_kv:
            assert self.target_resid is not None
            self.target_kv[layer] = keys_values(lm, layer, self.target_resid[layer])
        k, v = self.target_kv[layer]
        return k[:, :start], v[:, :start]

    def first_position(self, edit: Edit) -> int:
        """The earliest position ``edit`` changes in any prompt (0 for every position):
        every position before it is as in the target run."""
        import torch

        if edit.ablate or self.target_resid is None:
            return 0
        names = ([at for *_, at in edit.z] + [at for _, at in edit.mlp]
                 + [at for _, at in edit.resid] + [at for *_, at in edit.q_path]
                 + [at for *_, at in edit.qkv])
        first = int(self.at.min())  # the metric is read there: it must be computed
        for name in names:
            where = self.where(name)
            if where is None:
                return 0
            first = min(first, int(torch.min(where)))
        return first

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

    def start(edit: Edit) -> tuple[int, int]:
        """The layer and position the edit's run starts at."""
        if state.target_resid is None:
            return 0, 0
        return edit.first_layer(lm.n_layers), state.first_position(edit)

    # Copies that start at the same layer share a batch, which starts at the earliest
    # position any of them changes: fewer, fuller batches (a layer step costs about the same
    # for one row as for a few), and none computes a position its edits cannot reach.
    starts = [start(e) for e in edits]
    order = sorted(range(len(edits)), key=lambda i: starts[i])
    chunks: list[list[int]] = []
    for i in order:
        if chunks and len(chunks[-1]) < per_chunk and starts[chunks[-1][0]][0] == starts[i][0]:
            chunks[-1].append(i)
        else:
            chunks.append([i])
    RUNNER["batches"] += len(chunks)
    RUNNER["copies"] += len(edits)
    results: dict[int, torch.Tensor] = {}
    rows = torch.arange(n, device=state.tokens.ids.device)
    # the metric is read at each prompt's last token: the final block need not compute the
    # other positions (``forward(last_only=True)``)
    at_last = bool((state.at.cpu() == torch.as_tensor(state.tokens.last)).all())
    for idx in chunks:
        chunk = [edits[i] for i in idx]
        k = len(chunk)
        first, skip = starts[idx[0]][0], min(starts[i][1] for i in idx)
        hooks = _edit_hooks(lm, state, chunk, first, skip)
        tokens = Tokens(ids=state.tokens.ids.repeat(k, 1), lengths=list(state.tokens.lengths) * k)
        with torch.no_grad():
            if state.target_resid is not None:  # start from the cache, even at layer 0
                # and only at the positions the edits can change (``Prefix``)
                prefix = Prefix(skip, lambda layer, s=skip: state.kv_before(lm, layer, s)) \
                    if skip else None
                run = forward(lm, tokens, record=[final], hooks=hooks, logits="none",
                              start_layer=first, prefix=prefix, last_only=at_last,
                              resid=state.target_resid[first][:, skip:].repeat(k, 1, 1))
            else:
                run = forward(lm, tokens, record=[final], hooks=hooks, logits="none",
                              last_only=at_last)
            resid = run.cache[final].view(k, n, *run.cache[final].shape[1:])
            # [k, N, d_model]; a last_only run is already at the last tokens
            at = resid if resid.dim() == 3 else resid[:, rows, state.at - skip]
            values = state.metric(at.reshape(k * n, -1)).view(k, n)
        for j, i in enumerate(idx):
            results[i] = values[j].float().cpu()
        del run
    if not edits:
        return torch.empty(0, n)
    return torch.stack([results[i] for i in range(len(edits))])


def _edit_hooks(lm: LoadedModel, state: PatchState, chunk: Sequence[Edit], first: int,
                skip: int = 0) -> dict[str, Hook]:
    """The hooks that apply a stack of edits (copy c of the batch gets ``chunk[c]``) to a run
    of the positions from ``skip`` on."""
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
            add(act_name("z", layer),
                _heads_hook(state, k, z_edits, src, rows, skip, ablate=ablate, means=means))
        mlp_edits = [(c, at) for c, e in enumerate(chunk) for (l_, at) in e.mlp if l_ == layer]
        if mlp_edits:
            add(act_name("mlp_out", layer),
                _replace_at(state, k, mlp_edits, need(state.source_mlp, "MLP outputs")[layer],
                            rows, skip))
        resid_edits = [(c, at) for c, e in enumerate(chunk) for (l_, at) in e.resid
                       if l_ == layer]
        if resid_edits:
            add(act_name("resid_pre", layer),
                _replace_at(state, k, resid_edits,
                            need(state.source_resid, "residual stream")[layer], rows, skip))
        for which in ("q", "k", "v"):
            head_edits = [(c, h, at) for c, e in enumerate(chunk) for (w, l_, h, at) in e.qkv
                          if w == which and l_ == layer]
            if head_edits:
                sources = need(state.source_qkv, "queries, keys and values")
                add(act_name(which, layer),
                    _heads_hook(state, k, head_edits, need(sources.get(which), which)[layer],
                                rows, skip))
    senders = [(c, s) for c, e in enumerate(chunk) for s in e.q_path]
    if senders:
        receivers = {c: e.q_receivers for c, e in enumerate(chunk) if e.q_receivers}
        _q_path_hooks(lm, state, k, senders, first, rows, add, skip, receivers)

    def compose(fns: list[Hook]) -> Hook:
        def hook(value: torch.Tensor) -> torch.Tensor:
            for fn in fns:
                out = fn(value)
                if out is not None:
                    value = out
            return value

        return hook

    return {name: fns[0] if len(fns) == 1 else compose(fns) for name, fns in parts.items()}



def _heads_hook(state: PatchState, k: int, edits, src, rows, skip: int = 0, *, ablate=None,
                means=None) -> Hook:
    """A hook on a per-head activation [K*N, pos, head, d] of the positions from ``skip`` on:
    in copy c, the heads ``ablate`` [K, head] marks set to ``means`` [N, pos, head, d] (when
    given), then the source's head slices ``src`` [N, pos, head, d] put in at each
    (c, head, at) of ``edits``."""
    import torch

    n = state.n

    def hook(act: torch.Tensor) -> torch.Tensor:
        a = act.view(k, n, *act.shape[1:]).clone()  # [K, N, pos, H, d]
        span = slice(skip, skip + a.shape[2])
        if means is not None:
            a = torch.where(ablate[:, None, None, :, None], means[None, :, span], a)
        for c, h, at in edits:
            p = state.where(at)
            if p is None:
                a[c, :, :, h] = src[:, span, h]
            else:
                a[c, rows, p - skip, h] = src[rows, p, h]
        return a.view(act.shape)

    return hook


def _replace_at(state: PatchState, k: int, edits, src, rows, skip: int = 0) -> Hook:
    """A hook putting the source's activation [N, pos, ...] in copy c at each edit's place
    (the run covering the positions from ``skip`` on)."""
    n = state.n

    def hook(act: torch.Tensor) -> torch.Tensor:
        a = act.view(k, n, *act.shape[1:]).clone()
        for c, at in edits:
            p = state.where(at)
            if p is None:
                a[c] = src[:, skip: skip + a.shape[2]]
            else:
                a[c, rows, p - skip] = src[rows, p]
        return a.view(act.shape)

    return hook


def _q_path_hooks(lm, state: PatchState, k: int, senders, first: int, rows, add,
                  skip: int = 0, receivers: dict[int, frozenset[HeadIndex]] | None = None
                  ) -> None:
    """Path patching into every later head's query at the sender's position: the sender's
    write changes (source minus the live run, through the output projection) are collected at
    its layer and added to the residual stream that later layers' queries are computed from,
    and only there. In a copy that names ``receivers`` (copy -> heads), only those heads'
    queries see the change."""

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
                dz = src[layer][rows, p, h] - z5[c, rows, p - skip, h]  # [N, d_head]
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
                x = resid[c, rows, p - skip] + d  # [N, d_model]
                only = (receivers or {}).get(c)
                if only is None:
                    q5[c, rows, p - skip] = attn_inputs(lm, layer, x)[0]
                    continue
                hs = [h for l_, h in only if l_ == layer]
                if hs:
                    new = attn_inputs(lm, layer, x)[0][:, hs]  # [N, receivers, d_head]
                    q5[c, rows[:, None], (p - skip)[:, None], hs] = new
            return q5.view(q.shape)

        add(act_name("resid_pre", layer), keep)
        add(act_name("q", layer), query)
