"""The clean and corrupted runs of a prompt split, cached on disk, and the patched runs the
verdicts ask for (``engine.interventions.run_edits``, the one runner)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.errors import UsageError
from engine.judge.thresholds import JUDGE_VERSION, MAX_BATCH, Head
from engine.metrics import PuzzleMetric

if TYPE_CHECKING:
    import torch

    from engine.interventions import Edit, PatchState
    from engine.loaded import LoadedModel, Tokens
    from engine.puzzle import PromptSet

RUNS = {"builds": 0, "batches": 0, "copies": 0}
"""What this process ran: split builds (the clean and corrupted runs of a prompt split),
batches of patched runs, and patched copies (one copy = every prompt once). For tests and
benchmarks: a cached check of an unchanged circuit runs nothing."""


@dataclass
class _Split:
    """One prompt split's cached runs, ready to patch."""

    name: str
    n: int
    tokens: Tokens
    pos: torch.Tensor  # [R, N] role positions
    roles: list[str]
    at: torch.Tensor  # [N] metric positions
    metric: Callable[[torch.Tensor], torch.Tensor]  # final resid at `at` [B, d] -> [B]
    data: dict[str, Any]  # the cached tensors (see _build_split)
    key: str
    dirty: bool = False  # new effects to write back
    wrong: list[int] | None = None  # the metric's wrong answer id per prompt (logit_diff)

    @property
    def clean(self) -> float:
        return float(self.data["clean"].mean())

    @property
    def corrupted(self) -> float:
        return float(self.data["corrupted"].mean())

    @property
    def ablated(self) -> float:
        return float(self.data["ablated"].mean())

    @property
    def effects(self) -> dict[str, list[float]]:
        """Per-prompt metric of each patched run, by ``Edit.key()``."""
        return self.data.setdefault("effects", {})

    def state(self) -> PatchState:
        """The runner's view of this split, made once (it keeps the keys and values that
        patched runs of later positions reuse)."""
        from engine.interventions import PatchState

        d = self.data
        made = getattr(self, "_state", None)
        if made is not None and made[0] is d:
            return made[1]
        state = PatchState(
            tokens=self.tokens, at=self.at, metric=self.metric,
            positions={r: self.pos[i] for i, r in enumerate(self.roles)},
            means=d["means"], source_z=d.get("z_src"), source_mlp=d.get("mlp_src"),
            target_resid=d.get("resid"))
        self._state = (d, state)
        return state


def _metric_fn(lm: LoadedModel, ps: PromptSet) -> Callable[[torch.Tensor], torch.Tensor]:
    """metric(resid [B, d_model] at the metric position) -> [B]; B a multiple of the prompt
    count (copies stacked copy-major). See ``engine.metrics``."""
    return PuzzleMetric.from_prompts(ps).on_resid(lm)


def _final_name(lm: LoadedModel) -> str:
    from engine.hooks import act_name

    return act_name("resid_post", lm.n_layers - 1)


def _resid_at(resid: torch.Tensor, at: torch.Tensor) -> torch.Tensor:
    import torch

    copies = resid.shape[0] // at.shape[0]
    rows = torch.arange(resid.shape[0], device=resid.device)
    return resid[rows, at.repeat(copies)]


def _prompt_key(lm: LoadedModel, ps: PromptSet, roles: list[str]) -> str:
    from engine.cache import key_of

    return key_of("judge-split", JUDGE_VERSION, lm.fingerprint, ps.split, ps.metric.kind,
                  ps.texts, ps.corrupted, ps.token_ids, ps.corrupted_ids,
                  [ps.roles[r] for r in roles], ps.metric.at, ps.correct, ps.wrong,
                  ps.templates)


def _load_split(lm: LoadedModel, ps: PromptSet, roles: list[str], *, play: bool,
                cancelled: Callable[[], bool] | None,
                step: Callable[[str, float], None] | None = None) -> tuple[_Split, bool]:
    """The split's runs from the cache (memoised in-process, see ``engine.cache``), or built
    (and saved). Returns (split, cached).

    The big file is written once, when built. The patched runs a check adds (``effects``) go
    to a small side file (kind ``judge-effects``, same key) that names the big file's build,
    so a check never rewrites the big file and effects from another build are ignored."""
    import secrets

    import torch

    from engine import cache
    from engine.loaded import pad_rows
    from engine.memory import too_big

    problem = too_big(lm, len(ps), max(len(r) for r in ps.token_ids), play=play)
    if problem is not None:
        raise UsageError(f"{ps.puzzle} cannot be graded here: {problem}")
    key = _prompt_key(lm, ps, roles)
    data = cache.load("judge", key, memo=True)
    cached = (data is not None and (not play or "att" in data)
              and isinstance(data.get("build"), str))
    tokens = pad_rows(ps.token_ids, device=lm.device)
    pos = torch.tensor([ps.roles[r] for r in roles], dtype=torch.long, device=lm.device)
    at = torch.tensor(ps.at, dtype=torch.long, device=lm.device)
    split = _Split(ps.split, len(ps), tokens, pos, roles, at, _metric_fn(lm, ps), {}, key,
                   wrong=[w[0] for w in ps.wrong] if ps.metric.kind == "logit_diff" else None)
    if cached:
        split.data = {k: (v.to(lm.device) if hasattr(v, "to") else v) for k, v in data.items()}
        split.data["effects"] = {**data.get("effects", {}),
                                 **_saved_effects(key, data["build"], split.n)}
    else:
        split.data = _build_split(lm, ps, split, play=play, cancelled=cancelled, step=step)
        split.data["build"] = secrets.token_hex(8)
        cache.save("judge", key, {**split.data, "effects": dict(split.effects)}, memo=True)
    return split, cached


def _saved_effects(key: str, build: str, n: int) -> dict[str, list[float]]:
    """The effects saved for this build of the split, or none (absent, damaged, stale)."""
    from engine import cache

    side = cache.load("judge-effects", key)
    if side is None or side.get("build") != build:
        return {}
    effects = side.get("effects")
    if not isinstance(effects, dict):
        return {}
    return {k: [float(x) for x in v] for k, v in effects.items()
            if isinstance(k, str) and isinstance(v, list) and len(v) == n
            and all(isinstance(x, float) and math.isfinite(x) for x in v)}


def _save_effects(split: _Split) -> None:
    from engine import cache

    cache.save("judge-effects", split.key, {"build": split.data["build"],
                                            "effects": dict(split.effects)})
    split.dirty = False


def _build_split(lm: LoadedModel, ps: PromptSet, split: _Split, *, play: bool,
                 cancelled: Callable[[], bool] | None,
                 step: Callable[[str, float], None] | None = None) -> dict[str, Any]:
    import torch

    from engine.hooks import act_name, forward, unembed
    from engine.interventions import Edit, group_means
    from engine.loaded import pad_rows

    RUNS["builds"] += 1
    L, n = lm.n_layers, split.n
    final = _final_name(lm)
    corrupted = pad_rows(ps.corrupted_ids, device=lm.device)
    if list(corrupted.lengths) != list(split.tokens.lengths):
        raise UsageError(f"{ps.puzzle}: corrupted prompts differ in length from the clean ones")
    z_names = [act_name("z", layer) for layer in range(L)]
    mlp_names = [act_name("mlp_out", layer) for layer in range(L)]
    out: dict[str, Any] = {"effects": {}}
    rows = torch.arange(n, device=lm.device)
    metric = PuzzleMetric.from_prompts(ps)
    with torch.no_grad():
        # corrupted run: means for ablation, its activations as the source of noising
        def progress(stage: str, lo: float, hi: float) -> Callable[[int, int], None] | None:
            if step is None:
                return None
            return lambda done, total: step(stage, lo + (hi - lo) * done / total)

        lo, hi = (0.05, 0.25) if play else (0.92, 0.94)
        run = forward(lm, corrupted, record=[*z_names, *(mlp_names if play else []), final],
                      logits="none", on_layer=progress("running the swapped sentences", lo, hi))
        out["corrupted"] = split.metric(_resid_at(run.cache[final], split.at)).cpu()
        templates = ps.templates or [0] * n
        out["means"] = torch.stack([group_means(run.cache[z_names[layer]], corrupted.lengths,
                                                templates) for layer in range(L)])
        if play:
            out["z_src"] = torch.stack([run.cache[z] for z in z_names])  # [L, N, pos, H, d]
            out["mlp_src"] = torch.stack([run.cache[m] for m in mlp_names])  # [L, N, pos, D]
        del run
        if cancelled is not None and cancelled():
            raise InterruptedError("grading cancelled")
        if step is not None:
            step("running the real sentences", 0.25 if play else 0.94)
        # clean run: metric, attention between roles, head outputs at the role positions
        resid_names = [act_name("resid_pre", layer) for layer in range(L)]
        record = [final] + (z_names + resid_names if play else [])
        pos = split.pos
        att: list[torch.Tensor] = []

        def between_roles(pattern: torch.Tensor) -> None:
            """Keep only the attention between role positions ([H, R, R], averaged over the
            prompts): a whole pattern is heads x tokens x tokens per layer and prompt."""
            a = pattern[rows[:, None, None], :, pos.T[:, :, None], pos.T[:, None, :]]
            att.append(a.permute(0, 3, 1, 2).mean(0))

        hooks = {act_name("pattern", layer): between_roles for layer in range(L)} if play else {}
        lo, hi = (0.25, 0.45) if play else (0.94, 0.96)
        run = forward(lm, split.tokens, record=record, hooks=hooks, logits="none",
                      on_layer=progress("running the real sentences", lo, hi))
        resid_at = _resid_at(run.cache[final], split.at)
        out["clean"] = split.metric(resid_at).cpu()
        out["answered"] = metric.answered(unembed(lm, resid_at)).float().cpu()
        if play:
            out["att"] = torch.stack(att).cpu()  # [L, H, R(asker), R(responder)]
            out["uniform"] = (1.0 / (pos.float() + 1)).mean(1).cpu()  # [R]
            out["resid"] = torch.stack([run.cache[n_] for n_ in resid_names])  # [L, N, pos, d]
            out["z_roles"] = torch.stack([run.cache[z_names[layer]][rows[None], pos]
                                          for layer in range(L)])  # [L, R, N, H, d]
            out["final_roles"] = run.cache[final][rows[None], pos]  # [R, N, d]
            out["final_at"] = resid_at  # [N, d]
        del run
        # every head ablated: the floor of faithfulness
        out["ablated"] = _all_heads_ablated_metric(lm, split, out["means"]).cpu()
        no_heads = Edit.of(ablate=_all_heads(lm))
        out["effects"][no_heads.key()] = [float(x) for x in out["ablated"]]
    return out


def _all_heads_ablated_metric(lm: LoadedModel, split: _Split,
                              means: torch.Tensor) -> torch.Tensor:
    """Per-prompt metric with every head mean-ablated. No head reads anything then, so each
    layer is just its mean head outputs plus its MLP: attention is never computed."""
    from engine.hooks import block_tail, embed

    x = embed(lm, split.tokens.ids)
    for layer in range(lm.n_layers):
        x = block_tail(lm, layer, x, means[layer])
    return split.metric(_resid_at(x, split.at))


def _all_heads(lm: LoadedModel) -> list[Head]:
    return [(layer, h) for layer in range(lm.n_layers) for h in range(lm.n_heads)]


def _ensure(lm: LoadedModel, split: _Split, edits: Sequence[Edit]) -> None:
    """Run (stacked) every edit whose per-prompt metric is not memoised yet."""
    from engine import interventions

    missing, seen = [], set()
    for e in edits:
        key = e.key()
        if key not in split.effects and key not in seen:
            seen.add(key)
            missing.append(e)
    if not missing:
        return
    from engine.memory import batch_rows

    kept = sum(v.numel() * v.element_size() for v in split.data.values() if hasattr(v, "numel"))
    rows = batch_rows(lm, int(split.tokens.ids.shape[1]), kept=kept, most=MAX_BATCH)
    before = interventions.RUNNER["batches"]
    values = interventions.run_edits(lm, split.state(), missing, max_batch=rows)
    RUNS["batches"] += interventions.RUNNER["batches"] - before
    RUNS["copies"] += len(missing)
    for e, v in zip(missing, values, strict=True):
        split.effects[e.key()] = [float(x) for x in v.tolist()]
    split.dirty = True


def _values(split: _Split, edit: Edit) -> list[float]:
    return split.effects[edit.key()]
