"""The judge: grades a player's circuit against the model's own attention and patching.

``grade(puzzle, circuit, lm) -> Report``. The rules are written out for players and teachers
in ``docs/how-grading-works.md``; in short:

1. Runs (cached on disk per model weights x prompts x judge version, see ``engine.cache``):
   the clean prompts and their corrupted twins, once each. Kept: mean attention from every
   role to every role per head, the corrupted head outputs (``hook_z``) and MLP outputs at the
   role positions, per-template mean head outputs over the corrupted prompts (for mean
   ablation), the metric per prompt (clean, corrupted, every head ablated), and the gradient
   of the metric at the final residual stream (for direct effects).
2. Each question (round, asker, card, responder) gets **candidate heads**: heads of the
   round's layers (a) whose mean attention from the asker goes more to the responder than to
   any other role behind the asker, and at least ``UNIFORM_MULT`` times what a uniform spread
   over the positions it can see would give; (b) whose card detector agrees (see
   ``_detector``). The question is **confirmed** when patching the candidates' outputs at the
   asker, corrupted into clean (noising), moves the metric by at least ``EFFECT_MIN`` of the
   clean-minus-corrupted gap (in the card's direction). Otherwise the judge says why not:
   wrong round (the same question holds in another round), wrong responder (the card's heads
   there attend to another role), not needed (the heads exist but the guess does not depend
   on them), no such question.
3. Faithfulness: every head that no confirmed question uses is mean-ablated (means over the
   corrupted prompts, per template and position; MLPs stay).
   ``F = (m(circuit) - m(no heads)) / (m(full) - m(no heads))``: 0 for an empty circuit, 1
   for the full model. Computed on the play prompts, and on the held-out prompts once the
   play prompts pass (held-out prompts can only confirm a pass; otherwise it is None).
4. Minimality: a confirmed question whose heads can be dropped (mean-ablated) losing less
   than ``NEED_LOSS`` of faithfulness, without falling below the pass line, is "not-needed".
5. Stars: 1 = at least one question, none invalid, and every question confirmed or
   not-needed (a real question, even if useless); 2 = plus play faithfulness >= pass line;
   3 = plus held-out faithfulness >= its pass line and no (player-placed) question
   not-needed. ``solved`` means two stars or more.

The reference solution is not consulted: any set of questions whose heads carry the
mechanism passes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from engine.errors import UsageError
from engine.metrics import PuzzleMetric

if TYPE_CHECKING:
    import torch

    from engine.models import LoadedModel, Tokens
    from engine.puzzle import Circuit, ModelBlock, PromptSet, Puzzle, Question

JUDGE_VERSION = "3"

# ---- thresholds (documented in docs/how-grading-works.md) ----------------------------------
UNIFORM_MULT = 2.0
"""A candidate's attention to the responder must be at least this many times the uniform
share 1/(positions the asker can see), and more than it gives any other role."""
DETECTOR_UNIFORM_MULT = 3.0
"""Attention detectors (previous-token, duplicate-token, induction) agree when the head's
score is at least this many times a uniform head's score on the same test sequences."""
COPY_MIN = 0.05
"""Copy / negative-copy detectors agree when at least this share of sampled tokens is
copied into the top 5 of 2,000 (chance: 0.0025)."""
EFFECT_MIN = 0.05
"""A question matters when noising its heads at the asker moves the metric by at least this
fraction of (clean - corrupted)."""
NEED_LOSS = 0.03
"""A question is needed when dropping it costs at least this much faithfulness."""
MAX_BATCH = 512
MAX_EVIDENCE = 5

RUNS = {"builds": 0, "batches": 0, "copies": 0}
"""What this process ran: split builds (the clean and corrupted runs of a prompt split),
batches of patched runs, and patched copies (one copy = every prompt once). For tests and
benchmarks: a cached check of an unchanged circuit runs nothing."""

VERDICTS = ("confirmed", "wrong-responder", "wrong-round", "no-such-question", "not-needed",
            "invalid")
ATTENTION_DETECTORS = ("previous_token", "duplicate_token", "induction")
SCORE_INDEX = {"previous_token": 0, "duplicate_token": 1, "induction": 2, "copy": 3,
               "negative_copy": 4}


# --------------------------------------------------------------------------- the report


@dataclass
class HeadEvidence:
    head: str  # "9.9"
    layer: int
    index: int
    attention: float  # mean attention from asker to responder over play prompts
    detector: float  # the card's detector score for this head (nan if the card has none)
    effect: float  # patching effect on the metric, as a fraction of (clean - corrupted)

    def to_json(self) -> dict[str, Any]:
        return {"head": self.head, "head_id": f"L{self.layer}H{self.index}",
                **{k: _num(v) for k, v in asdict(self).items() if k != "head"}}


@dataclass
class QuestionReport:
    round: str
    asker: str
    card: str
    responder: str | None
    given: bool
    verdict: str
    message: str
    heads: list[HeadEvidence] = field(default_factory=list)
    effect: float = math.nan  # the question's heads together, noised at the asker
    drop_loss: float = math.nan  # faithfulness lost when the question is dropped

    @property
    def holds(self) -> bool:
        return self.verdict in ("confirmed", "not-needed")

    def to_json(self) -> dict[str, Any]:
        return {
            "round": self.round, "asker": self.asker, "card": self.card,
            "responder": self.responder, "given": self.given, "verdict": self.verdict,
            "message": self.message, "effect": _num(self.effect),
            "drop_loss": _num(self.drop_loss), "heads": [h.to_json() for h in self.heads],
        }


@dataclass
class Report:
    puzzle: str
    model: str
    model_label: str
    solved: bool
    stars: int
    metric_full: float
    metric_corrupted: float
    faithfulness: float
    heldout_faithfulness: float | None  # None: not measured, the play prompts did not pass
    pass_line: float
    questions: list[QuestionReport]
    problems: list[str]
    timing_s: dict[str, float]
    heldout_pass_line: float = math.nan
    metric_ablated: float = math.nan
    circuit_heads: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "puzzle": self.puzzle, "model": self.model, "model_label": self.model_label,
            "solved": self.solved, "stars": self.stars,
            "metric_full": _num(self.metric_full), "metric_corrupted": _num(self.metric_corrupted),
            "metric_ablated": _num(self.metric_ablated),
            "faithfulness": _num(self.faithfulness),
            "heldout_faithfulness": _num(self.heldout_faithfulness),
            "pass_line": _num(self.pass_line), "heldout_pass_line": _num(self.heldout_pass_line),
            "circuit_heads": list(self.circuit_heads),
            "questions": [q.to_json() for q in self.questions],
            "problems": list(self.problems),
            "timing_s": {k: round(v, 4) for k, v in self.timing_s.items()},
        }


def _num(x: float) -> float | None:
    """JSON has no NaN: unknown numbers become null; others are rounded for reading."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return None
    return round(float(x), 4)


# --------------------------------------------------------------------------- runs


@dataclass
class _Split:
    """One prompt split's cached runs, ready to patch."""

    name: str
    n: int
    tokens: Tokens
    pos: torch.Tensor  # [R, N] role positions
    at: torch.Tensor  # [N] metric positions
    metric: Callable[[torch.Tensor], torch.Tensor]  # final-LN-input at `at` [B, d] -> [B]
    data: dict[str, Any]  # the cached tensors (see _build_split)
    key: str
    dirty: bool = False  # new effects to write back

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
    def effects(self) -> dict[str, float]:
        return self.data.setdefault("effects", {})


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
                cancelled: Callable[[], bool] | None) -> tuple[_Split, bool]:
    """The split's runs from the cache (memoised in-process, see ``engine.cache``), or built
    (and saved). Returns (split, cached).

    The big file is written once, when built. The patched runs a check adds (``effects``) go
    to a small side file (kind ``judge-effects``, same key) that names the big file's build,
    so a check never rewrites the big file and effects from another build are ignored."""
    import secrets

    import torch

    from engine import cache
    from engine.models import pad_rows

    key = _prompt_key(lm, ps, roles)
    data = cache.load("judge", key, memo=True)
    cached = (data is not None and (not play or "att" in data)
              and isinstance(data.get("build"), str))
    tokens = pad_rows(ps.token_ids, device=lm.device)
    pos = torch.tensor([ps.roles[r] for r in roles], dtype=torch.long, device=lm.device)
    at = torch.tensor(ps.at, dtype=torch.long, device=lm.device)
    split = _Split(ps.split, len(ps), tokens, pos, at, _metric_fn(lm, ps), {}, key)
    if cached:
        split.data = {k: (v.to(lm.device) if hasattr(v, "to") else v) for k, v in data.items()}
        split.data["effects"] = {**data.get("effects", {}),
                                 **_saved_effects(key, data["build"])}
    else:
        split.data = _build_split(lm, ps, split, play=play, cancelled=cancelled)
        split.data["build"] = secrets.token_hex(8)
        cache.save("judge", key, {**split.data, "effects": dict(split.effects)}, memo=True)
    return split, cached


def _saved_effects(key: str, build: str) -> dict[str, float]:
    """The effects saved for this build of the split, or none (absent, damaged, stale)."""
    from engine import cache

    side = cache.load("judge-effects", key)
    if side is None or side.get("build") != build:
        return {}
    effects = side.get("effects")
    if not isinstance(effects, dict):
        return {}
    return {k: float(v) for k, v in effects.items()
            if isinstance(k, str) and isinstance(v, float) and math.isfinite(v)}


def _save_effects(split: _Split) -> None:
    from engine import cache

    cache.save("judge-effects", split.key, {"build": split.data["build"],
                                            "effects": dict(split.effects)})
    split.dirty = False


def _build_split(lm: LoadedModel, ps: PromptSet, split: _Split, *, play: bool,
                 cancelled: Callable[[], bool] | None) -> dict[str, Any]:
    import torch

    from engine.hooks import act_name, forward
    from engine.models import pad_rows

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
    with torch.no_grad():
        # corrupted run: means for ablation, outputs at the role positions for noising
        run = forward(lm, corrupted, record=[*z_names, *(mlp_names if play else []), final],
                      logits="none")
        out["corrupted"] = split.metric(_resid_at(run.cache[final], split.at)).cpu()
        templates = torch.tensor(ps.templates or [0] * n, device=lm.device)
        lengths = torch.tensor(corrupted.lengths, device=lm.device)
        width = corrupted.ids.shape[1]
        present = (torch.arange(width, device=lm.device)[None] < lengths[:, None]).float()
        weights = torch.zeros(n, n, width, device=lm.device)  # [prompt, source prompt, pos]
        for t in templates.unique():
            group = (templates == t).float()
            w = present * group[:, None]
            w = w / w.sum(0, keepdim=True).clamp(min=1)
            weights[templates == t] = w[None]
        out["means"] = torch.stack([
            torch.einsum("bphd,nbp->nphd", run.cache[z_names[layer]], weights)
            for layer in range(L)
        ])  # [L, N, pos, H, d]
        if play:
            pos = split.pos  # [R, N]
            out["zc_roles"] = torch.stack([
                run.cache[z_names[layer]][rows[None], pos] for layer in range(L)
            ])  # [L, R, N, H, d]
            out["mlp_roles"] = torch.stack([
                run.cache[mlp_names[layer]][rows[None], pos] for layer in range(L)
            ])  # [L, R, N, d_model]
        del run
        if cancelled is not None and cancelled():
            raise InterruptedError("grading cancelled")
        # clean run: metric, attention between roles, head outputs at the metric position
        resid_names = [act_name("resid_pre", layer) for layer in range(L)]
        record = [final] + ([act_name("pattern", layer) for layer in range(L)] + z_names
                            + resid_names if play else [])
        run = forward(lm, split.tokens, record=record, logits="none")
        resid_at = _resid_at(run.cache[final], split.at)
        out["clean"] = split.metric(resid_at).cpu()
        if play:
            pos = split.pos
            att = []
            for layer in range(L):
                pattern = run.cache[act_name("pattern", layer)]  # [N, H, q, k]
                # [N, H, R(asker), R(responder)]
                a = pattern[rows[:, None, None], :, pos.T[:, :, None], pos.T[:, None, :]]
                att.append(a.permute(0, 3, 1, 2).mean(0))  # [H, R, R]
            out["att"] = torch.stack(att).cpu()  # [L, H, R, R]
            out["uniform"] = (1.0 / (pos.float() + 1)).mean(1).cpu()  # [R]
            out["resid"] = torch.stack([run.cache[n_] for n_ in resid_names])  # [L, N, pos, d]
            out["z_at"] = torch.stack([run.cache[z_names[layer]][rows, split.at]
                                       for layer in range(L)])  # [L, N, H, d]
            grad_in = resid_at.detach().clone().requires_grad_(True)
        del run
        # every head ablated: the floor of faithfulness
        out["ablated"] = _all_heads_ablated_metric(lm, split, out["means"]).cpu()
        # the same run is what an empty circuit's faithfulness asks for: remember it as such
        no_heads = (frozenset(_all_heads(lm)), (), ())
        out["effects"][_copy_key(no_heads)] = float(out["ablated"].mean())
    if play:
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(split.metric(grad_in).sum(), grad_in)
        out["grad_at"] = grad.detach()  # [N, d_model]: d metric / d final resid
    return out


def _all_heads_ablated_metric(lm: LoadedModel, split: _Split,
                              means: torch.Tensor) -> torch.Tensor:
    """Per-prompt metric with every head mean-ablated. No head reads anything then, so each
    layer is just its mean head outputs plus its MLP: attention is never computed."""
    import torch

    from engine.hooks import block_tail

    transformer = lm.model.transformer
    ids = split.tokens.ids
    x = transformer.wte(ids) + transformer.wpe(torch.arange(ids.shape[1], device=ids.device))
    for layer in range(lm.n_layers):
        x = block_tail(lm, layer, x, means[layer])
    return split.metric(_resid_at(x, split.at))


def _all_heads(lm: LoadedModel) -> list[tuple[int, int]]:
    return [(layer, h) for layer in range(lm.n_layers) for h in range(lm.n_heads)]


Copy = tuple[frozenset, tuple, tuple]
"""One patched run: (heads mean-ablated everywhere, ((layer, head, role), ...) noised at the
role's position, ((layer, role), ...) MLP outputs noised at the role's position)."""


def _run_metric(lm: LoadedModel, split: _Split, copies: Sequence[Copy], *,
                means: torch.Tensor | None = None) -> torch.Tensor:
    """Per-prompt metric [K, N] for each copy, in stacked batches."""
    import torch

    from engine.hooks import act_name, forward
    from engine.models import Tokens

    means = split.data["means"] if means is None else means
    n, final = split.n, _final_name(lm)
    per_chunk = max(1, MAX_BATCH // n)
    resid = split.data.get("resid")

    def start(copy: Copy) -> int:
        if resid is None:
            return 0
        abl, nz, mlp = copy
        layers = [a for a, _ in abl] + [a for a, _, _ in nz] + [a for a, _ in mlp]
        return min(layers, default=lm.n_layers - 1)

    order = sorted(range(len(copies)), key=lambda i: start(copies[i]))
    chunks: list[list[int]] = []
    for i in order:  # copies that start at the same layer share a batch
        if chunks and len(chunks[-1]) < per_chunk and start(copies[chunks[-1][0]]) == start(
                copies[i]):
            chunks[-1].append(i)
        else:
            chunks.append([i])
    results: dict[int, torch.Tensor] = {}
    RUNS["batches"] += len(chunks)
    RUNS["copies"] += len(copies)
    for idx in chunks:
        chunk = [copies[i] for i in idx]
        k = len(chunk)
        first_layer = start(chunk[0])
        hooks = {}
        for layer in range(first_layer, lm.n_layers):
            ablate = torch.zeros(k, lm.n_heads, dtype=torch.bool, device=lm.device)
            noise: list[tuple[int, int, int]] = []
            for c, (abl, nz, _mlp) in enumerate(chunk):
                for (l_, h) in abl:
                    if l_ == layer:
                        ablate[c, h] = True
                noise += [(c, h, r) for (l_, h, r) in nz if l_ == layer]
            if ablate.any() or noise:
                hooks[act_name("z", layer)] = _z_hook(split, layer, ablate, noise, means, k)
            mlp = [(c, r) for c, (_a, _n, m) in enumerate(chunk) for (l_, r) in m if l_ == layer]
            if mlp:
                hooks[act_name("mlp_out", layer)] = _mlp_hook(split, layer, mlp, k)
        tokens = Tokens(ids=split.tokens.ids.repeat(k, 1), lengths=list(split.tokens.lengths) * k)
        with torch.no_grad():
            if first_layer > 0:
                run = forward(lm, tokens, record=[final], hooks=hooks, logits="none",
                              start_layer=first_layer, resid=resid[first_layer].repeat(k, 1, 1))
            else:
                run = forward(lm, tokens, record=[final], hooks=hooks, logits="none")
            values = split.metric(_resid_at(run.cache[final], split.at)).view(k, n)
        for j, i in enumerate(idx):
            results[i] = values[j].float().cpu()
        del run
    return torch.stack([results[i] for i in range(len(copies))])


def _z_hook(split: _Split, layer: int, ablate, noise, means, k: int):
    import torch

    n = split.n

    def hook(z: torch.Tensor) -> torch.Tensor:
        z5 = z.view(k, n, *z.shape[1:]).clone()  # [K, N, pos, H, d]
        if ablate.any():
            z5 = torch.where(ablate[:, None, None, :, None], means[layer][None], z5)
        if noise:
            c_idx = torch.tensor([c for c, _, _ in noise], device=z.device)
            h_idx = torch.tensor([h for _, h, _ in noise], device=z.device)
            r_idx = torch.tensor([r for _, _, r in noise], device=z.device)
            rows = torch.arange(n, device=z.device)
            p = split.pos[r_idx]  # [M, N]
            zc = split.data["zc_roles"][layer]  # [R, N, H, d]
            z5[c_idx[:, None], rows[None], p, h_idx[:, None]] = zc[r_idx[:, None], rows[None],
                                                                   h_idx[:, None]]
        return z5.view(z.shape)

    return hook


def _mlp_hook(split: _Split, layer: int, entries, k: int):
    import torch

    n = split.n

    def hook(out: torch.Tensor) -> torch.Tensor:
        o4 = out.view(k, n, *out.shape[1:]).clone()
        rows = torch.arange(n, device=out.device)
        for c, r in entries:
            o4[c, rows, split.pos[r]] = split.data["mlp_roles"][layer, r]
        return o4.view(out.shape)

    return hook


def _copy_key(copy: Copy) -> str:
    abl, nz, mlp = copy
    return (";".join(f"{a}.{b}" for a, b in sorted(abl)) + "|"
            + ";".join(f"{a}.{b}@{r}" for a, b, r in sorted(nz)) + "|"
            + ";".join(f"{a}@{r}" for a, r in sorted(mlp)))


def _ensure(lm: LoadedModel, split: _Split, copies: Sequence[Copy]) -> None:
    """Run (stacked) every copy whose mean metric is not memoised yet."""
    missing, seen = [], set()
    for c in copies:
        key = _copy_key(c)
        if key not in split.effects and key not in seen:
            seen.add(key)
            missing.append(c)
    if not missing:
        return
    values = _run_metric(lm, split, missing).mean(1)
    for c, v in zip(missing, values.tolist(), strict=True):
        split.effects[_copy_key(c)] = float(v)
    split.dirty = True


def _value(split: _Split, copy: Copy) -> float:
    return split.effects[_copy_key(copy)]


# --------------------------------------------------------------------------- detectors


def _detector_params() -> dict[str, Any]:
    """Everything the detector scores depend on besides the weights: the detectors' default
    arguments and constants, read from ``engine.detectors`` itself so that changing one
    there changes the cache key."""
    import inspect

    from engine import detectors

    def defaults(fn: Callable) -> dict[str, Any]:
        return {name: p.default for name, p in inspect.signature(fn).parameters.items()
                if p.default is not inspect.Parameter.empty}

    return {
        "attention_scores": defaults(detectors.attention_scores),
        "repeated_random_tokens": defaults(detectors.repeated_random_tokens),
        "copy_scores": defaults(detectors.copy_scores),
        "COPY_TOP_K": detectors.COPY_TOP_K,
        "SCORE_NAMES": list(detectors.SCORE_NAMES),
    }


def _heads_key(lm: LoadedModel) -> str:
    from engine.cache import key_of

    return key_of("heads", JUDGE_VERSION, lm.fingerprint, _detector_params())


def _head_scores(lm: LoadedModel) -> dict[str, Any]:
    """Detector scores [5, L, H] and the uniform baselines of the attention detectors,
    cached per model and detector parameters. The detectors run with their defaults, which
    are what the key records."""
    import torch

    from engine import cache
    from engine.detectors import attention_scores, copy_scores, repeated_random_tokens

    key = _heads_key(lm)
    data = cache.load("heads", key, memo=True)
    if data is not None:
        return data
    _ids, prefix, half = repeated_random_tokens(lm, n_sequences=1)
    total = prefix + 2 * half
    every = torch.arange(prefix + 1, total).float()
    second = torch.arange(prefix + half, total).float()
    data = {
        "scores": torch.cat([attention_scores(lm), copy_scores(lm)]),  # [5, L, H]
        "uniform_every": float((1 / (every + 1)).mean()),
        "uniform_second": float((1 / (second + 1)).mean()),
    }
    cache.save("heads", key, data, memo=True)
    return data


# --------------------------------------------------------------------------- grading


class _Judge:
    def __init__(self, puzzle: Puzzle, block: ModelBlock, lm: LoadedModel, play: _Split,
                 heads: dict[str, Any], roles: list[str]) -> None:
        self.puzzle, self.block, self.lm = puzzle, block, lm
        self.play = play
        self.scores = heads["scores"]
        self.heads_data = heads
        self.roles = roles
        self.r = {name: i for i, name in enumerate(roles)}
        self.gap = play.clean - play.corrupted
        self.att = play.data["att"]  # [L, H, R, R]
        self.uniform = play.data["uniform"]  # [R]

    # ---- attention -------------------------------------------------------------------
    def visible(self, asker: str) -> list[str]:
        """Roles standing behind the asker in every prompt (the asker excluded)."""
        pos = self.play.pos
        a = self.r[asker]
        return [r for r in self.roles if r != asker
                and bool((pos[self.r[r]] < pos[a]).all())]

    def attention(self, layer: int, head: int, asker: str, responder: str) -> float:
        return float(self.att[layer, head, self.r[asker], self.r[responder]])

    def top_role(self, layer: int, head: int, asker: str) -> tuple[str | None, float]:
        """The role this head, at the asker, attends to most, if it beats a uniform spread
        by UNIFORM_MULT and every other role."""
        vis = self.visible(asker)
        if not vis:
            return None, 0.0
        values = [(self.attention(layer, head, asker, r), r) for r in vis]
        values.sort(reverse=True)
        best, role = values[0]
        runner_up = values[1][0] if len(values) > 1 else 0.0
        if best >= UNIFORM_MULT * float(self.uniform[self.r[asker]]) and best > runner_up:
            return role, best
        return None, best

    # ---- detectors -------------------------------------------------------------------
    def effect_of(self, heads: Sequence[tuple[int, int]], asker: str,
                  ablate: frozenset = frozenset()) -> float:
        """Noising ``heads`` at the asker (on top of ``ablate``): fraction of the gap."""
        if not heads or abs(self.gap) < 1e-6:
            return 0.0
        base = _value(self.play, (ablate, (), ()))
        patched = _value(self.play, self._noise_copy(heads, asker, ablate))
        return (base - patched) / self.gap

    def _noise_copy(self, heads, asker, ablate=frozenset()) -> Copy:
        r = self.r[asker]
        return (ablate, tuple(sorted((l_, h, r) for l_, h in heads)), ())

    def need_effects(self, groups: Sequence[tuple[Sequence[tuple[int, int]], str]],
                     ablate: frozenset = frozenset()) -> None:
        copies = [(ablate, (), ())] + [self._noise_copy(h, a, ablate) for h, a in groups if h]
        _ensure(self.lm, self.play, copies)

    def direct_effect(self, layer: int, head: int, asker: str) -> float:
        """First-order effect of noising the head at the asker through the direct path to the
        logits only (zero unless the asker is where the metric is read)."""
        import torch

        from engine.hooks import w_out

        if abs(self.gap) < 1e-6:
            return 0.0
        pos = self.play.pos[self.r[asker]]
        same = pos == self.play.at
        if not bool(same.any()):
            return 0.0
        zc = self.play.data["zc_roles"][layer, self.r[asker], :, head]  # [N, d]
        zclean = self.play.data["z_at"][layer, :, head]  # [N, d]
        with torch.no_grad():
            delta = (zc - zclean) @ w_out(self.lm, layer)[head]  # [N, d_model]
            change = (delta * self.play.data["grad_at"]).sum(-1) * same.float()
        return float(-change.mean()) / self.gap

    def detector(self, card: str, layer: int, head: int, asker: str) -> tuple[bool, float]:
        """Whether the card's detector agrees for this head, and its score."""
        from engine.puzzle import CARDS

        det = CARDS[card].detector
        if det is None:
            return True, math.nan
        if det in ATTENTION_DETECTORS:
            score = float(self.scores[SCORE_INDEX[det], layer, head])
            base = self.heads_data["uniform_every" if det == "previous_token"
                                   else "uniform_second"]
            return score >= DETECTOR_UNIFORM_MULT * base, score
        if det in ("copy", "negative_copy"):
            score = float(self.scores[SCORE_INDEX[det], layer, head])
            return score >= COPY_MIN, score
        if det == "s_inhibition":
            # It works through later heads, not by writing the answer itself: its effect
            # minus its direct effect on the logits (both noising at the asker) is large,
            # and larger than the direct effect.
            total = self.effect_of([(layer, head)], asker)
            direct = self.direct_effect(layer, head, asker)
            indirect = total - direct
            return indirect >= EFFECT_MIN and indirect > abs(direct), indirect
        return False, math.nan

    # ---- candidates ------------------------------------------------------------------
    def attending(self, layers: Sequence[int], asker: str) -> dict[tuple[int, int], str]:
        out = {}
        for layer in layers:
            for h in range(self.lm.n_heads):
                role, _ = self.top_role(layer, h, asker)
                if role is not None:
                    out[(layer, h)] = role
        return out

    def prepare_detectors(self, card: str, heads: Sequence[tuple[int, int]], asker: str) -> None:
        from engine.puzzle import CARDS

        if CARDS[card].detector == "s_inhibition":
            self.need_effects([([h], asker) for h in heads])

    def candidates(self, layers: Sequence[int], asker: str, card: str, responder: str
                   ) -> list[tuple[int, int]]:
        heads = [h for h, role in self.attending(layers, asker).items() if role == responder]
        self.prepare_detectors(card, heads, asker)
        return [h for h in heads if self.detector(card, *h, asker)[0]]

    def evidence(self, heads: Sequence[tuple[int, int]], asker: str, card: str,
                 responder: str | None, *, effects: bool = True,
                 ablate: frozenset = frozenset()) -> list[HeadEvidence]:
        """Evidence for up to MAX_EVIDENCE heads, most attentive first. Each head's effect is
        measured like the question's: on top of ``ablate`` (a backup name mover's name movers
        silenced). Without ``effects`` (heads that cannot be candidates anyway) no patched run
        is spent on them: effect is nan, and so is an s-inhibition score, which is itself an
        effect."""
        from engine.puzzle import CARDS

        heads = sorted(heads, key=lambda h: -self.attention(*h, asker, responder)
                       if responder else 0.0)[:MAX_EVIDENCE]
        if effects:
            self.need_effects([([h], asker) for h in heads], ablate)
        out = []
        for layer, h in heads:
            costly = CARDS[card].detector == "s_inhibition"
            out.append(HeadEvidence(
                head=f"{layer}.{h}", layer=layer, index=h,
                attention=self.attention(layer, h, asker, responder) if responder else math.nan,
                detector=(self.detector(card, layer, h, asker)[1]
                          if effects or not costly else math.nan),
                effect=self.effect_of([(layer, h)], asker, ablate) if effects else math.nan,
            ))
        return out

    # ---- the verdict -----------------------------------------------------------------
    def judge_question(self, q: Question, given: bool) -> tuple[QuestionReport, list]:
        from engine.puzzle import CARDS

        card = CARDS[q.card]
        rep = QuestionReport(q.round, q.asker, q.card, q.responder, given, "invalid", "")
        layers = list(self.block.layers(q.round))
        if not card.responder:
            return self.judge_think(q, rep, layers), []
        a, p = q.asker, q.responder
        ask = f"\u201c{card.plain}\u201d"
        sign = -1.0 if q.card == "negative-name-mover" else 1.0
        ablate = self.backup_ablation(q, layers)

        cands = self.candidates(layers, a, q.card, p)
        self.need_effects([(cands, a)], ablate)
        effect = self.effect_of(cands, a, ablate) if cands else 0.0
        rep.effect = effect
        if cands and sign * effect >= EFFECT_MIN:
            rep.verdict = "confirmed"
            rep.heads = self.evidence(cands, a, q.card, p, ablate=ablate)
            best = max(rep.heads, key=lambda e: e.attention)
            rep.message = (f"in round {q.round}, {a} asks {p} {ask}: head {best.head} gives "
                           f"{p} {best.attention:.2f} of its attention; "
                           + (f"it moves the guess by {effect:.0%}" if len(cands) == 1 else
                              f"together the {len(cands)} heads move the guess by {effect:.0%}"))
            return rep, cands

        # the same question in another round?
        elsewhere = []
        for other in self.block.rounds:
            if other == q.round:
                continue
            o_layers = list(self.block.layers(other))
            o_cands = self.candidates(o_layers, a, q.card, p)
            if o_cands:
                o_abl = self.backup_ablation(q, o_layers)
                self.need_effects([(o_cands, a)], o_abl)
                o_eff = self.effect_of(o_cands, a, o_abl)
                if sign * o_eff >= EFFECT_MIN:
                    elsewhere.append((sign * o_eff, other, o_cands, o_abl))
        if elsewhere:
            _, other, o_cands, o_abl = max(elsewhere, key=lambda t: t[0])
            rep.verdict = "wrong-round"
            rep.heads = self.evidence(o_cands, a, q.card, p, ablate=o_abl)[:MAX_EVIDENCE]
            best = max(rep.heads, key=lambda e: e.attention)
            rep.message = (f"{a} asks {p} {ask} in round {other} (head {best.head}, "
                           f"{best.attention:.2f} of its attention), not in round {q.round}")
            return rep, []

        # the card's heads in this round attend to someone else?
        attending = self.attending(layers, a)
        others = [h for h, role in attending.items() if role != p]
        self.prepare_detectors(q.card, others, a)
        by_role: dict[str, list] = {}
        for h in others:
            if self.detector(q.card, *h, a)[0]:
                by_role.setdefault(attending[h], []).append(h)
        if by_role:
            self.need_effects([(hs, a) for hs in by_role.values()], ablate)
            role, hs = max(by_role.items(),
                           key=lambda kv: (sign * self.effect_of(kv[1], a, ablate),
                                           max(self.attention(*h, a, kv[0]) for h in kv[1])))
            best = max(hs, key=lambda h: self.attention(*h, a, role))
            rep.verdict = "wrong-responder"
            rep.heads = self.evidence(hs, a, q.card, role, ablate=ablate)[:MAX_EVIDENCE]
            rep.message = (f"in round {q.round}, {a} mostly asks {role} "
                           f"({self.attention(*best, a, role):.2f}, head {best[0]}.{best[1]}), "
                           f"not {p} ({self.attention(*best, a, p):.2f})")
            return rep, []

        if cands:
            rep.verdict = "not-needed"
            rep.heads = self.evidence(cands, a, q.card, p, ablate=ablate)[:MAX_EVIDENCE]
            rep.message = (f"in round {q.round}, {a} does ask {p} {ask} (head "
                           f"{rep.heads[0].head}), but the guess does not depend on it "
                           f"(it moves by {effect:.0%})")
            return rep, []

        rep.verdict = "no-such-question"
        near = sorted(((self.attention(layer, h, a, p), (layer, h)) for layer in layers
                       for h in range(self.lm.n_heads)), reverse=True)[:3]
        rep.heads = self.evidence([h for _, h in near], a, q.card, p, effects=False)
        msg = f"no head in round {q.round} lets {a} ask {p} {ask}"
        if rep.heads:
            e = rep.heads[0]
            uni = float(self.uniform[self.r[a]])
            msg += (f": the closest, head {e.head}, gives {p} {e.attention:.2f} of its "
                    f"attention (a uniform spread gives {uni:.2f})")
            if not math.isnan(e.detector):
                msg += f" and scores {e.detector:.2f} as a {card.technical}"
        rep.message = msg
        return rep, []

    def backup_ablation(self, q: Question, layers: Sequence[int]) -> frozenset:
        """Backup name movers act only when the name movers are gone: their effect is measured
        with the round's name-mover candidates mean-ablated."""
        if q.card != "backup-name-mover" or q.responder is None:
            return frozenset()
        movers = self.candidates(layers, q.asker, "name-mover", q.responder)
        return frozenset(movers)

    def judge_think(self, q: Question, rep: QuestionReport, layers: Sequence[int]
                    ) -> QuestionReport:
        r = self.r[q.asker]
        copy = (frozenset(), (), tuple((layer, r) for layer in layers))
        _ensure(self.lm, self.play, [(frozenset(), (), ()), copy])
        effect = 0.0
        if abs(self.gap) >= 1e-6:
            effect = (_value(self.play, (frozenset(), (), ())) - _value(self.play, copy)) / self.gap
        rep.effect = effect
        if effect >= EFFECT_MIN:
            rep.verdict = "confirmed"
            rep.message = (f"in round {q.round}, what {q.asker} thinks matters: replacing it "
                           f"moves the guess by {effect:.0%}")
        else:
            rep.verdict = "not-needed"
            rep.message = (f"in round {q.round}, what {q.asker} thinks barely matters "
                           f"(the guess moves by {effect:.0%})")
        return rep

    # ---- faithfulness ----------------------------------------------------------------
    def faithfulness(self, split: _Split, keep: set[tuple[int, int]]) -> float:
        ablate = frozenset(h for h in _all_heads(self.lm) if h not in keep)
        copy = (ablate, (), ())
        _ensure(self.lm, split, [copy])
        return self._faith(split, _value(split, copy))

    @staticmethod
    def _faith(split: _Split, value: float) -> float:
        denom = split.clean - split.ablated
        if abs(denom) < 1e-6:
            return 0.0
        return (value - split.ablated) / denom


def _invalid(q: Question, puzzle: Puzzle, block: ModelBlock, roles: list[str],
             ps: PromptSet) -> str | None:
    """Why a question cannot be graded at all, or None."""
    from engine.puzzle import CARDS, did_you_mean

    if q.round not in block.rounds:
        return (f"there is no round {q.round!r}{did_you_mean(q.round, block.rounds)}; "
                f"rounds are {', '.join(block.rounds)}")
    if q.card not in CARDS or q.card not in puzzle.cards:
        return (f"the card {q.card!r} is not offered in this puzzle"
                f"{did_you_mean(q.card, puzzle.cards)}")
    if q.asker not in roles:
        return f"nobody called {q.asker!r} stands in the line{did_you_mean(q.asker, roles)}"
    card = CARDS[q.card]
    if not card.responder:
        return None if q.responder is None else f"{q.card} is not a question: no one answers it"
    if q.responder is None:
        return f"the {q.card} card needs a responder"
    if q.responder not in roles:
        return (f"nobody called {q.responder!r} stands in the line"
                f"{did_you_mean(q.responder, roles)}")
    if q.responder == q.asker:
        return f"{q.asker} cannot ask themself"
    if any(r >= a for r, a in zip(ps.roles[q.responder], ps.roles[q.asker], strict=True)):
        return (f"{q.responder} stands in front of {q.asker}: a question is heard only by "
                "the people behind the asker")
    return None


def _normalise(q: Question) -> Question:
    from engine.puzzle import card_id

    return type(q)(q.round, q.asker, card_id(q.card), q.responder, q.line, q.col)


def grade(puzzle: Puzzle, circuit: Circuit, lm: LoadedModel, *,
          progress: Callable[[str, float], None] | None = None,
          cancelled: Callable[[], bool] | None = None) -> Report:
    """Grade ``circuit`` for ``puzzle`` on ``lm`` (its ``lm.block`` block). See the module
    docstring for the rules. Raises ``UsageError`` when the puzzle is locked for the model and
    ``InterruptedError`` when ``cancelled()`` turns true."""
    t0 = time.perf_counter()
    timing: dict[str, float] = {}

    def step(stage: str, fraction: float) -> None:
        if cancelled is not None and cancelled():
            raise InterruptedError("grading cancelled")
        if progress is not None:
            progress(stage, fraction)

    block = puzzle.block(lm.block)
    if block is None:
        raise UsageError(f"puzzle {puzzle.id!r} is locked for this model ({lm.label}): "
                         f"it is played on {', '.join(puzzle.models) or 'no model'}")
    step("prompts", 0.0)
    roles = list(puzzle.roles)
    ps_play = puzzle.build_prompts(lm.tokenizer, "play")
    timing["prompts"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    step("runs", 0.05)
    play, cached_play = _load_split(lm, ps_play, roles, play=True, cancelled=cancelled)
    step("runs", 0.5)
    heads = _head_scores(lm)
    timing["runs"] = time.perf_counter() - t1
    timing["cached"] = 1.0 if cached_play else 0.0

    t2 = time.perf_counter()
    judge = _Judge(puzzle, block, lm, play, heads, roles)
    problems: list[str] = []
    wrong_puzzle = bool(circuit.puzzle) and circuit.puzzle != puzzle.id
    if wrong_puzzle:
        problems.append(f"this circuit is for {circuit.puzzle!r}, not {puzzle.id!r}")
    if abs(judge.gap) < 1e-6:
        problems.append("on this model the clean and corrupted prompts give the same metric: "
                        "nothing here can move it")

    # the questions: the given ones first, then the player's (repeats of a given one merge)
    given = [_normalise(q) for q in block.given]
    placed: list[tuple[Question, bool]] = [(q, True) for q in given]
    seen = set(given)
    reports: list[QuestionReport] = []
    for q in circuit.questions:
        q = _normalise(q)
        if q in seen:
            if q not in given:
                problems.append(f"the question {q} is placed twice")
            continue
        seen.add(q)
        placed.append((q, False))

    used: list[list[tuple[int, int]]] = []
    for i, (q, is_given) in enumerate(placed):
        step("judging", 0.7 + 0.2 * i / max(1, len(placed)))
        why = _invalid(q, puzzle, block, roles, ps_play)
        if why is not None:
            reports.append(QuestionReport(q.round, q.asker, q.card, q.responder, is_given,
                                          "invalid", why))
            used.append([])
            continue
        rep, heads_used = judge.judge_question(q, is_given)
        reports.append(rep)
        used.append(heads_used)

    step("faithfulness", 0.9)
    keep = {h for hs in used for h in hs}
    faith = judge.faithfulness(play, keep)
    pass_line = block.thresholds.faithfulness
    held_line = block.thresholds.heldout_faithfulness
    holds = bool(reports) and all(r.holds for r in reports)

    # Held-out prompts can only confirm a pass, so they are run only once the play prompts
    # pass; otherwise their faithfulness is not measured (None).
    splits = [play]
    faith_held: float | None = None
    if holds and faith >= pass_line:
        t3 = time.perf_counter()
        step("held-out prompts", 0.92)
        ps_held = puzzle.build_prompts(lm.tokenizer, "heldout")
        heldout, cached_held = _load_split(lm, ps_held, roles, play=False, cancelled=cancelled)
        splits.append(heldout)
        timing["cached"] = 1.0 if (cached_play and cached_held) else 0.0
        faith_held = judge.faithfulness(heldout, keep)
        timing["heldout"] = time.perf_counter() - t3

    # minimality: drop each confirmed question (its heads no other question uses)
    drops = []
    for i, rep in enumerate(reports):
        if faith < pass_line:
            break  # minimality only matters for the third star, which needs the second
        if rep.verdict != "confirmed" or rep.card in ("think", "backup-name-mover"):
            continue
        rest = {h for j, hs in enumerate(used) if j != i for h in hs}
        drops.append((i, rest))
    _ensure(lm, play, [(frozenset(h for h in _all_heads(lm) if h not in rest), (), ())
                       for _, rest in drops])
    for i, rest in drops:
        rep = reports[i]
        without = judge.faithfulness(play, rest)
        rep.drop_loss = faith - without
        needed = rep.drop_loss >= NEED_LOSS or (faith >= pass_line > without)
        if not needed:
            rep.verdict = "not-needed"
            rep.message = (f"{rep.message}; but dropping it costs nothing: faithfulness "
                           f"{without:.2f} without it, {faith:.2f} with it")

    stars = 0
    if holds:
        stars = 1
        if faith >= pass_line:
            stars = 2
            spare = [r for r in reports if r.verdict == "not-needed" and not r.given]
            if faith_held is not None and faith_held >= held_line and not spare:
                stars = 3
    if wrong_puzzle:
        stars = 0
    if stars >= 1 and faith < pass_line:
        problems.append(f"faithfulness {faith:.2f} is below the pass line {pass_line:.2f}: "
                        "a step is missing")
    elif stars == 2 and faith_held is not None and faith_held < held_line:
        problems.append(f"held-out faithfulness {faith_held:.2f} is below "
                        f"{held_line:.2f}: the circuit fits the play prompts only")
    timing["judging"] = time.perf_counter() - t2
    timing["total"] = time.perf_counter() - t0

    # write back what this check learnt (new patched runs) to the small side files
    for split in splits:
        if split.dirty:
            _save_effects(split)
    step("done", 1.0)
    return Report(
        puzzle=puzzle.id, model=lm.name, model_label=lm.label, solved=stars >= 2, stars=stars,
        metric_full=play.clean, metric_corrupted=play.corrupted, faithfulness=faith,
        heldout_faithfulness=faith_held, pass_line=pass_line, questions=reports,
        problems=problems, timing_s=timing, heldout_pass_line=held_line,
        metric_ablated=play.ablated, circuit_heads=[f"{a}.{b}" for a, b in sorted(keep)],
    )


# --------------------------------------------------------------------------- helpers for callers


def model_spec_for(puzzle: Puzzle, spec: str | None) -> str:
    """The --model value to load for a puzzle: ``spec`` as given, except that "toy" (or no
    model while GPT-2 is absent) becomes the bundled toy the puzzle's toy block names."""
    from engine.models import default_model_name

    spec = spec or default_model_name()
    block = puzzle.block("toy")
    if spec == "toy" and block is not None and block.toy:
        return block.toy
    return spec


def load_for(puzzle: Puzzle, spec: str | None, device: str | None = None) -> LoadedModel:
    """Load the model a puzzle is played on, refusing (``UsageError``) when it is locked."""
    from engine.models import load_model

    lm = load_model(model_spec_for(puzzle, spec), device=device)
    if puzzle.block(lm.block) is None:
        raise UsageError(f"puzzle {puzzle.id!r} is locked for this model ({lm.label}): it is "
                         f"played on {', '.join(puzzle.models) or 'no model'}")
    return lm


class LastMetric(PuzzleMetric):
    """The puzzle's metric on last-position logits [n, vocab] (tiles stacked copies), for
    ``engine.interventions.head_patch_grid``: ``engine.metrics.PuzzleMetric`` built from a
    PromptSet."""

    def __init__(self, ps: PromptSet) -> None:
        super().__init__(ps.metric.kind, ps.correct, ps.wrong)
        self.ps = ps
