"""The judge: grades a player's circuit against the model's own attention and patching.

``grade(puzzle, circuit, lm) -> Report``. The rules are written out for players and teachers
in ``docs/how-grading-works.md``; in short:

0. Runs (cached on disk per model weights x prompts x judge version, see ``engine.cache``):
   the clean prompts and their corrupted twins, once each.
1. The task: the model must do the puzzle's task (the clean-minus-corrupted gap well above
   its noise, and at least ``TASK_ACCURACY`` of the prompts answered right). Otherwise
   nothing is graded: the report says so, with the numbers, and gives no star.
2. Each question (round, asker, card, responder) is judged **as a group**: its heads are the
   round's heads that (a) listen to the responder from the asker (more than to anyone else
   behind the asker and ``UNIFORM_MULT`` times an even spread) and (b) fit the card by what
   they are (attention pattern on repeated random tokens; in-context copying of the
   responder's token). The group's effect (its outputs at the asker replaced, together, by the
   corrupted run's) and the card's mechanism (direct effect on the guess for movers; effect
   through later heads' queries, by path patching, for s-inhibition) decide the verdict:
   confirmed; not-measurable (inside the noise); not-needed (real heads, small effect);
   wrong-responder; wrong-round; no-such-question. Backup name movers are measured with the
   primary name movers (a different set of heads) silenced.
3. Faithfulness: every head that no holding question uses is mean-ablated
   (``engine.interventions.group_means``: per template and position over the corrupted
   prompts). ``F = (m(circuit) - m(no heads)) / (m(full) - m(no heads))``.
4. Minimality: a confirmed question placed by the player whose heads change faithfulness by
   less than ``NEED_LOSS`` either way (and whose loss does not cross the pass line) is
   not-needed. A head that genuinely acts, e.g. a negative name mover whose removal *raises*
   faithfulness, is needed.
5. Stars: ``engine.report.stars_for``. Given questions are the puzzle's: never held against
   the player.

The patched runs are ``engine.interventions.run_edits`` (the one runner) and the metric is
``engine.metrics.PuzzleMetric`` (the one metric). The reference solution is not consulted.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.errors import UsageError
from engine.metrics import PuzzleMetric
from engine.report import VERDICTS, HeadEvidence, QuestionReport, Report, num, stars_for

if TYPE_CHECKING:
    import torch

    from engine.interventions import Edit, PatchState
    from engine.models import LoadedModel, Tokens
    from engine.puzzle import Circuit, ModelBlock, PromptSet, Puzzle, Question

__all__ = ["VERDICTS", "HeadEvidence", "LastMetric", "QuestionReport", "Report", "grade",
           "load_for", "model_spec_for"]

JUDGE_VERSION = "5"

# ---- thresholds (documented in docs/how-grading-works.md) ----------------------------------
TASK_ACCURACY = 0.6
"""The model does the task when at least this share of the play prompts is answered right
(IO ahead of S; the right token on top; more mass above the year)..."""
NOISE_Z = 3.0
"""...and the clean-minus-corrupted gap is at least this many standard errors. An effect is
measurable when it is at least this many of its own standard errors from zero."""
UNIFORM_MULT = 1.5
"""A head listens to the responder when its attention there is at least this many times an
even spread over the positions the asker can see, and more than it gives any other role."""
DETECTOR_UNIFORM_MULT = 3.0
"""Pattern cards (previous-token, duplicate-token, induction): the head's score on repeated
random tokens is at least this many times a uniform head's, and its highest of the three."""
COPY_Z = 3.0
"""Copying cards: the head's write at the asker raises (negative name mover: lowers) the
logit of the responder's own token by at least this many standard deviations of its effect on
all tokens (a null baseline: a head writing noise scores about 0)."""
COPY_SAMPLE = 2000
"""How many ordinary words the copy score compares the responder's word with."""
EFFECT_MIN = 0.05
"""A group matters when it moves the metric by at least this fraction of (clean - corrupted)."""
SHARE_MIN = 0.5
"""The card's mechanism must carry at least this share of the group's effect: the direct
path to the guess for movers, later heads' queries for s-inhibition."""
PRIMARY_MIN = 0.025
"""A name mover is primary when its own direct effect is at least this fraction of the gap;
backups are the others, measured with the primaries silenced."""
NEED_LOSS = 0.03
"""A question is needed when dropping it changes faithfulness by at least this much."""
MAX_BATCH = 512
MAX_EVIDENCE = 8

RUNS = {"builds": 0, "batches": 0, "copies": 0}
"""What this process ran: split builds (the clean and corrupted runs of a prompt split),
batches of patched runs, and patched copies (one copy = every prompt once). For tests and
benchmarks: a cached check of an unchanged circuit runs nothing."""

ATTENTION_DETECTORS = ("previous_token", "duplicate_token", "induction")
SCORE_INDEX = {"previous_token": 0, "duplicate_token": 1, "induction": 2, "copy": 3,
               "negative_copy": 4}
PATTERN_CARDS = {"previous-token": "previous_token", "duplicate-token": "duplicate_token",
                 "induction": "induction"}
COPY_SIGN = {"name-mover": 1.0, "copy": 1.0, "backup-name-mover": 1.0,
             "negative-name-mover": -1.0}
_num = num


def _pct(x: float) -> str:
    """A fraction as a whole percentage, without a "-0%" for a tiny negative."""
    text = f"{x:.0%}"
    return "0%" if text == "-0%" else text

Head = tuple[int, int]


# --------------------------------------------------------------------------- runs


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
        from engine.interventions import PatchState

        d = self.data
        return PatchState(
            tokens=self.tokens, at=self.at, metric=self.metric,
            positions={r: self.pos[i] for i, r in enumerate(self.roles)},
            means=d["means"], source_z=d.get("z_src"), source_mlp=d.get("mlp_src"),
            target_resid=d.get("resid"))


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
    from engine.models import pad_rows

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
        record = [final] + ([act_name("pattern", layer) for layer in range(L)] + z_names
                            + resid_names if play else [])
        lo, hi = (0.25, 0.45) if play else (0.94, 0.96)
        run = forward(lm, split.tokens, record=record, logits="none",
                      on_layer=progress("running the real sentences", lo, hi))
        resid_at = _resid_at(run.cache[final], split.at)
        out["clean"] = split.metric(resid_at).cpu()
        out["answered"] = metric.answered(unembed(lm, resid_at)).float().cpu()
        if play:
            pos = split.pos
            att = []
            for layer in range(L):
                pattern = run.cache[act_name("pattern", layer)]  # [N, H, q, k]
                a = pattern[rows[:, None, None], :, pos.T[:, :, None], pos.T[:, None, :]]
                att.append(a.permute(0, 3, 1, 2).mean(0))  # [H, R, R]
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
    before = interventions.RUNNER["batches"]
    values = interventions.run_edits(lm, split.state(), missing, max_batch=MAX_BATCH)
    RUNS["batches"] += interventions.RUNNER["batches"] - before
    RUNS["copies"] += len(missing)
    for e, v in zip(missing, values, strict=True):
        split.effects[e.key()] = [float(x) for x in v.tolist()]
    split.dirty = True


def _values(split: _Split, edit: Edit) -> list[float]:
    return split.effects[edit.key()]


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


# --------------------------------------------------------------------------- the task


@dataclass
class TaskCheck:
    ok: bool
    gap: float
    noise: float  # standard error of the gap
    accuracy: float
    message: str


def _mean_se(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    if n == 0:
        return 0.0, math.inf
    mean = sum(values) / n
    if n == 1:
        return mean, 0.0  # one prompt has no spread to measure: its value is all we know
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def task_check(split: _Split, puzzle: Puzzle) -> TaskCheck:
    """Does the model do the puzzle's task? The gap (clean minus corrupted) must be positive
    and ``NOISE_Z`` standard errors clear of zero, and ``TASK_ACCURACY`` of the prompts must
    be answered right."""
    clean = [float(x) for x in split.data["clean"]]
    corrupted = [float(x) for x in split.data["corrupted"]]
    gap, se = _mean_se([a - b for a, b in zip(clean, corrupted, strict=True)])
    acc = float(split.data["answered"].mean()) if "answered" in split.data else math.nan
    what = _task_words(puzzle)
    ok = gap > 0 and gap >= NOISE_Z * se and not acc < TASK_ACCURACY
    if ok:
        message = (f"the model does the task: {what} on {_pct(acc)} of the prompts; the guess "
                   f"changes by {gap:.2f} when the sentence is swapped (noise {se:.2f})")
    elif not acc >= TASK_ACCURACY:
        message = (f"this model does not do the task: {what} on only {_pct(acc)} of the "
                   f"prompts (it needs {TASK_ACCURACY:.0%}), so there is no circuit to find "
                   f"(metric {split.clean:.2f} on the real sentences, "
                   f"{split.corrupted:.2f} on the swapped ones)")
    else:
        message = (f"this model does not do the task: swapping the sentence changes the guess "
                   f"by {gap:.2g}, inside its own noise ({se:.2g}), so nothing here can be "
                   "measured")
    return TaskCheck(ok, gap, se, acc, message)


def _task_words(puzzle: Puzzle) -> str:
    m = puzzle.metric
    if m.kind == "logit_diff":
        return f"{m.at} prefers {m.correct} over {m.wrong}"
    if m.kind == "logprob":
        return f"{m.at}'s top guess is {m.correct}"
    return f"{m.at} puts more weight on numbers above {m.correct} than below"


# --------------------------------------------------------------------------- grading


@dataclass
class _Group:
    """A question's heads in one round and what they do together."""

    heads: list[Head]
    effect: float = 0.0  # noising them at the asker, fraction of the gap (sign: helps)
    noise: float = math.inf  # its standard error
    direct: float = 0.0  # the same change reaching the guess by the direct path only
    queries: float = 0.0  # the same change reaching only later heads' queries
    ablate: frozenset = frozenset()
    passes: bool = False  # the card's mechanism holds (sign and share)
    why: str = ""  # in words, when it does not


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
        self._copy: dict[tuple, float] = {}
        self.silenced_heads: list[Head] = []  # set on a view made by ``without``
        # the heads a circuit is judged over: those of the puzzle's rounds (kept layers play
        # as usual and are never silenced)
        self.round_heads = [h for h in _all_heads(lm) if not block.is_kept(h[0])]

    # ---- attention -------------------------------------------------------------------
    def visible(self, asker: str) -> list[str]:
        """Roles standing behind the asker in every prompt (the asker excluded)."""
        pos = self.play.pos
        a = self.r[asker]
        return [r for r in self.roles if r != asker
                and bool((pos[self.r[r]] < pos[a]).all())]

    def attention(self, layer: int, head: int, asker: str, responder: str) -> float:
        return float(self.att[layer, head, self.r[asker], self.r[responder]])

    def even(self, asker: str) -> float:
        return float(self.uniform[self.r[asker]])

    def top_role(self, layer: int, head: int, asker: str) -> str | None:
        """The role this head, at the asker, listens to most, if it beats an even spread by
        UNIFORM_MULT and every other role."""
        vis = self.visible(asker)
        if not vis:
            return None
        values = sorted(((self.attention(layer, head, asker, r), r) for r in vis), reverse=True)
        best, role = values[0]
        runner_up = values[1][0] if len(values) > 1 else 0.0
        if best >= UNIFORM_MULT * self.even(asker) and best > runner_up:
            return role
        return None

    def listeners(self, layers: Sequence[int], asker: str) -> dict[Head, str]:
        out = {}
        for layer in layers:
            for h in range(self.lm.n_heads):
                role = self.top_role(layer, h, asker)
                if role is not None:
                    out[(layer, h)] = role
        return out

    # ---- what a head is ----------------------------------------------------------------
    def ratio(self, det: str, layer: int, head: int) -> float:
        score = float(self.scores[SCORE_INDEX[det], layer, head])
        base = self.heads_data["uniform_every" if det == "previous_token" else "uniform_second"]
        return score / base if base > 0 else 0.0

    def copy_z(self, layer: int, head: int, asker: str, responder: str) -> float:
        """In-context copying: how far the head's write at the asker raises the logit of the
        responder's own token, in standard deviations of its effect on every token (mean over
        the prompts). A null baseline: a head writing noise scores about 0."""
        key = (layer, head, asker, responder)
        if key in self._copy:
            return self._copy[key]
        import torch

        from engine.hooks import final_norm, w_out

        p = self.play
        a, r = self.r[asker], self.r[responder]
        rows = torch.arange(p.n, device=p.tokens.ids.device)
        tok = p.tokens.ids[rows, p.pos[r]]
        w_u, _bias = self.vocab_sample()
        with torch.no_grad():
            write = p.data["z_roles"][layer, a, :, head] @ w_out(self.lm, layer)[head]
            base = p.data["final_roles"][a]
            # the write's effect on the logits of the sampled words (the null) and of the
            # responder's own word, through the final norm
            diff = final_norm(self.lm, base) - final_norm(self.lm, base - write)  # [N, d]
            delta = (diff @ w_u.T).float()  # [N, sample]; the bias cancels
            own = (diff * self.lm_rows(tok)).sum(-1).float()  # [N]
            z = (own - delta.mean(-1)) / delta.std(-1).clamp(min=1e-12)
        value = float(z.mean())
        self._copy[key] = value
        return value

    def vocab_sample(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Unembedding rows of a fixed sample of ordinary words (``COPY_SAMPLE``): the null
        against which a head's boost to the responder's word is measured."""
        if not hasattr(self, "_sample"):
            import torch

            from engine.detectors import candidate_token_ids
            from engine.hooks import unembed_weight

            w_u, bias = unembed_weight(self.lm)
            pool = candidate_token_ids(self.lm)
            pick = pool[torch.randperm(len(pool), generator=torch.Generator().manual_seed(0))
                        [:COPY_SAMPLE]].to(w_u.device)
            self._sample = (w_u[pick], None if bias is None else bias[pick])
        return self._sample

    def lm_rows(self, tok: torch.Tensor) -> torch.Tensor:
        from engine.hooks import unembed_weight

        return unembed_weight(self.lm)[0][tok]

    def fits(self, card: str, layer: int, head: int, asker: str, responder: str
             ) -> tuple[bool, float, str]:
        """Whether a listening head is the card's kind of head, its score, and why not."""
        if card in PATTERN_CARDS:
            det = PATTERN_CARDS[card]
            ratios = {d: self.ratio(d, layer, head) for d in ATTENTION_DETECTORS}
            score = float(self.scores[SCORE_INDEX[det], layer, head])
            if ratios[det] < DETECTOR_UNIFORM_MULT:
                return False, score, (f"on repeated random words it scores only "
                                      f"{ratios[det]:.1f}x an even head as a "
                                      f"{det.replace('_', '-')} head")
            best = max(ratios, key=lambda d: ratios[d])
            if best != det:
                return False, score, (f"on repeated random words it looks more like a "
                                      f"{best.replace('_', '-')} head ({ratios[best]:.1f}x "
                                      f"an even head, against {ratios[det]:.1f}x)")
            return True, score, ""
        z = self.copy_z(layer, head, asker, responder)
        if card in COPY_SIGN:
            sign = COPY_SIGN[card]
            if sign * z >= COPY_Z:
                return True, z, ""
            if sign > 0:
                return False, z, (f"what it says does not carry {responder}'s word into the "
                                  f"guess (copy score {z:.1f}; a copier scores {COPY_Z:.0f} "
                                  "or more)")
            return False, z, (f"what it says does not push against {responder}'s word "
                              f"(copy score {z:.1f}; it needs -{COPY_Z:.0f} or less)")
        if card == "s-inhibition":
            if z >= COPY_Z:
                return False, z, (f"it says {responder}'s word into the guess itself (copy "
                                  f"score {z:.1f}): that is moving a name, not warning "
                                  "the others off it")
            return True, z, ""
        return False, math.nan, "this card has no test"

    # ---- effects -----------------------------------------------------------------------
    def need(self, edits: Sequence[Edit]) -> None:
        _ensure(self.lm, self.play, edits)

    def noise_edit(self, heads: Sequence[Head], asker: str, ablate: frozenset = frozenset()
                   ) -> Edit:
        from engine.interventions import Edit

        return Edit.of(ablate=ablate, z=[(l_, h, asker) for l_, h in heads])

    def base_edit(self, ablate: frozenset = frozenset()) -> Edit:
        from engine.interventions import Edit

        return Edit.of(ablate=ablate)

    def change(self, edit: Edit, ablate: frozenset = frozenset()) -> tuple[float, float]:
        """(mean, standard error) of (base - patched) / gap over the prompts."""
        base = _values(self.play, self.base_edit(ablate))
        new = _values(self.play, edit)
        mean, se = _mean_se([a - b for a, b in zip(base, new, strict=True)])
        g = abs(self.gap) if abs(self.gap) > 0 else 1.0
        return mean / g, se / g

    def direct(self, heads: Sequence[Head], asker: str) -> float:
        """Noising the heads at the asker, with the change reaching the guess by the direct
        path only (exact: the final norm is recomputed). Zero unless the asker is where the
        guess is read."""
        import torch

        from engine.hooks import w_out

        p = self.play
        pos = p.pos[self.r[asker]]
        same = pos == p.at
        if not heads or not bool(same.any()) or abs(self.gap) == 0:
            return 0.0
        rows = torch.arange(p.n, device=pos.device)
        a = self.r[asker]
        with torch.no_grad():
            delta = torch.zeros_like(p.data["final_at"])
            for layer, h in heads:
                dz = p.data["z_src"][layer][rows, pos, h] - p.data["z_roles"][layer, a, :, h]
                delta = delta + dz @ w_out(self.lm, layer)[h]
            delta = delta * same[:, None].to(delta.dtype)
            base = p.metric(p.data["final_at"])
            new = p.metric(p.data["final_at"] + delta)
        return float((base - new).mean()) / abs(self.gap)

    def holds_wrong(self, role: str) -> bool:
        """Whether the role holds the metric's wrong answer (IOI: S1 and S2 hold S) in most
        prompts: moving its word into the guess then *lowers* the metric."""
        if self.play.wrong is None:
            return False
        toks = self.play.tokens.ids[range(self.play.n), self.play.pos[self.r[role]]].tolist()
        return sum(t == w for t, w in zip(toks, self.play.wrong, strict=True)) * 2 > self.play.n

    def metric_sign(self, card: str, responder: str | None) -> float:
        """+1 when the card's heads, doing their job, raise the metric: a mover of the right
        answer, or a negative mover of the wrong one; -1 otherwise."""
        sign = -1.0 if card == "negative-name-mover" else 1.0
        if card in COPY_SIGN and responder is not None and self.holds_wrong(responder):
            sign = -sign
        return sign

    def measure(self, card: str, heads: list[Head], asker: str,
                ablate: frozenset = frozenset(), sign: float = 1.0) -> _Group:
        from engine.interventions import Edit

        g = _Group(heads=heads, ablate=ablate)
        if not heads:
            return g
        edits = [self.base_edit(ablate), self.noise_edit(heads, asker, ablate)]
        if card == "s-inhibition":
            edits.append(Edit.of(q_path=[(l_, h, asker) for l_, h in heads]))
        self.need(edits)
        g.effect, g.noise = self.change(edits[1], ablate)
        if card == "s-inhibition":
            g.queries, _ = self.change(edits[2])
            g.direct = self.direct(heads, asker)
            if g.queries < EFFECT_MIN or g.queries < SHARE_MIN * g.effect \
                    or g.queries <= abs(g.direct):
                g.why = (f"they change the guess by {_pct(g.effect)} of the gap, but only "
                         f"{_pct(g.queries)} of it through the later heads' questions"
                         + (f" ({_pct(g.direct)} directly)" if g.direct else "")
                         + ": a warning works through what later people ask")
            else:
                g.passes = True
        elif card in ("name-mover", "copy", "negative-name-mover"):
            g.direct = self.direct(heads, asker)
            if sign * g.direct < EFFECT_MIN or sign * g.direct < SHARE_MIN * sign * g.effect:
                where = ("" if self.direct_reaches(asker) else
                         f": what is said at {asker} does not reach the guess, "
                         f"which is made at {self.puzzle.metric.at}")
                g.why = (f"their words reach the guess directly by only "
                         f"{_pct(sign * g.direct)} of the gap{where}")
            else:
                g.passes = True
        else:
            g.passes = True
        return g

    def direct_reaches(self, asker: str) -> bool:
        return bool((self.play.pos[self.r[asker]] == self.play.at).any())

    def measurable(self, g: _Group, sign: float) -> bool:
        value = sign * g.effect
        return value >= NOISE_Z * g.noise or (g.direct and abs(g.direct) >= EFFECT_MIN
                                              and math.isfinite(g.noise) and sign * g.direct
                                              >= NOISE_Z * g.noise)

    # ---- candidates ------------------------------------------------------------------
    def fitting(self, layers: Sequence[int], asker: str, card: str, responder: str
                ) -> tuple[list[Head], list[tuple[Head, str]]]:
        """The round's heads that listen to the responder and fit the card, and the
        listeners that do not fit (with why)."""
        fit, misfit = [], []
        for h, role in self.listeners(layers, asker).items():
            if role != responder:
                continue
            ok, _score, why = self.fits(card, *h, asker, responder)
            (fit if ok else misfit).append(h if ok else (h, why))
        return fit, misfit

    def primaries(self, asker: str, responder: str) -> list[Head]:
        """Name movers that do the job while everyone is there: in any round, listening to
        the responder, copying its word, with their own direct effect above PRIMARY_MIN."""
        out = []
        layers = [layer for rnd in self.block.rounds for layer in self.block.layers(rnd)]
        for h, role in self.listeners(layers, asker).items():
            if role == responder and self.fits("name-mover", *h, asker, responder)[0] \
                    and self.direct([h], asker) >= PRIMARY_MIN:
                out.append(h)
        return out

    def without(self, heads: Sequence[Head]) -> _Judge:
        """This judge as the line looks with ``heads`` mean-ablated: who listens to whom, what
        each head says at the roles, the final residual. Backups wake up only when the main
        name movers are gone, so in the full model they barely listen to anyone: they are
        found, and their words read, in this run (the effects stay those of the cache)."""
        import copy

        import torch

        from engine.hooks import act_name, forward

        key = frozenset(heads)
        if not key:
            return self
        views = self.__dict__.setdefault("_views", {})
        if key in views:
            return views[key]
        p, L = self.play, self.lm.n_layers
        means = p.data["means"]
        by_layer: dict[int, list[int]] = {}
        for layer, h in heads:
            by_layer.setdefault(layer, []).append(h)

        def silence(layer: int, hs: list[int]) -> Callable[[torch.Tensor], torch.Tensor]:
            def hook(z: torch.Tensor) -> torch.Tensor:
                z = z.clone()
                z[:, :, hs] = means[layer][:, : z.shape[1], hs]
                return z
            return hook

        z_names = [act_name("z", layer) for layer in range(L)]
        final = _final_name(self.lm)
        record = [final, *z_names, *(act_name("pattern", layer) for layer in range(L))]
        hooks = {z_names[layer]: silence(layer, hs) for layer, hs in by_layer.items()}
        rows = torch.arange(p.n, device=p.tokens.ids.device)
        pos = p.pos
        with torch.no_grad():
            run = forward(self.lm, p.tokens, record=record, hooks=hooks, logits="none")
            att = []
            for layer in range(L):
                pattern = run.cache[act_name("pattern", layer)]
                a = pattern[rows[:, None, None], :, pos.T[:, :, None], pos.T[:, None, :]]
                att.append(a.permute(0, 3, 1, 2).mean(0))
            data = dict(p.data)  # the same effects dict: patched runs stay shared
            data["z_roles"] = torch.stack([run.cache[z_names[layer]][rows[None], pos]
                                           for layer in range(L)])
            data["final_roles"] = run.cache[final][rows[None], pos]
            data["final_at"] = _resid_at(run.cache[final], p.at)
        del run
        view = copy.copy(self)
        view.__dict__.pop("_views", None)
        view.play = dataclasses.replace(p, data=data)
        view.att = torch.stack(att).cpu()
        view._copy = {}
        view.silenced_heads = list(heads)
        views[key] = view
        return view

    def group_for(self, card: str, layers: Sequence[int], asker: str, responder: str
                  ) -> tuple[_Group, list[tuple[Head, str]]]:
        ablate: frozenset = frozenset()
        judge: _Judge = self
        if card == "backup-name-mover":
            primary = self.silenced_heads or self.primaries(asker, responder)
            judge = self.without(primary)
            ablate = frozenset(primary)
        fit, misfit = judge.fitting(layers, asker, card, responder)
        fit = [h for h in fit if h not in ablate]
        g = judge.measure(card, fit, asker, ablate, self.metric_sign(card, responder))
        if judge.play.dirty:
            self.play.dirty = True
        return g, misfit

    def evidence(self, g: _Group, card: str, asker: str, responder: str | None
                 ) -> list[HeadEvidence]:
        """Each head of the group alone, measured like the group (the same mechanism), with
        its share of the group's value."""
        from engine.interventions import Edit

        heads = sorted(g.heads, key=lambda h: -self.attention(*h, asker, responder)
                       if responder else 0.0)[:MAX_EVIDENCE]
        if card == "s-inhibition":
            self.need([Edit.of(q_path=[(l_, h, asker)]) for l_, h in heads])
        else:
            self.need([self.noise_edit([h], asker, g.ablate) for h in heads])
        out = []
        for layer, h in heads:
            if card == "s-inhibition":
                own, group = self.change(Edit.of(q_path=[(layer, h, asker)]))[0], g.queries
            elif card in ("name-mover", "copy", "negative-name-mover"):
                own, group = self.direct([(layer, h)], asker), g.direct
            else:
                own = self.change(self.noise_edit([(layer, h)], asker, g.ablate), g.ablate)[0]
                group = g.effect
            det = PATTERN_CARDS.get(card)
            score = (float(self.scores[SCORE_INDEX[det], layer, h]) if det else
                     self.copy_z(layer, h, asker, responder) if responder else math.nan)
            effect = self.change(self.noise_edit([(layer, h)], asker, g.ablate), g.ablate)[0] \
                if card not in ("s-inhibition",) else own
            out.append(HeadEvidence(
                head=f"{layer}.{h}", layer=layer, index=h,
                attention=self.attention(layer, h, asker, responder) if responder else math.nan,
                detector=score, effect=effect,
                share=own / group if abs(group) > 1e-9 else math.nan))
        return out

    # ---- the verdict -----------------------------------------------------------------
    def judge_question(self, q: Question, given: bool, task: TaskCheck
                       ) -> tuple[QuestionReport, list[Head]]:
        from engine.puzzle import CARDS

        card = CARDS[q.card]
        rep = QuestionReport(q.round, q.asker, q.card, q.responder, given, "invalid", "")
        layers = list(self.block.layers(q.round))
        if not task.ok:
            rep.verdict = "not-measurable"
            rep.message = "not graded: " + task.message
            return rep, []
        if not card.responder:
            return self.judge_think(q, rep, layers)
        a, p = q.asker, q.responder
        assert p is not None
        sign = self.metric_sign(q.card, p)
        even = self.even(a)

        if q.card in COPY_SIGN and not self.direct_reaches(a):
            # a mover's job is to put a word into the guess: asked anywhere else, the card
            # cannot be what any head does
            rep.verdict = "no-such-question"
            rep.message = (f"this card moves a word into the guess, but the guess is made at "
                           f"{self.puzzle.metric.at}: what is said at {a} does not reach it "
                           "directly")
            return rep, []
        g, misfit = self.group_for(q.card, layers, a, p)
        rep.effect = g.effect
        rep.numbers = {"effect": g.effect, "noise": g.noise, "direct": g.direct,
                       "through_queries": g.queries}
        names = [f"{l_}.{h}" for l_, h in g.heads]
        if g.heads:
            seen_by = (self.without(self.primaries(a, p)) if q.card == "backup-name-mover"
                       else self)
            rep.heads = seen_by.evidence(g, q.card, a, p)
            if seen_by.play.dirty:  # a view's new runs are this split's to save
                self.play.dirty = True
            best = max(rep.heads, key=lambda e: e.attention)
            listen = (f"in round {q.round}, {a} asks {p} this: "
                      + (f"{len(g.heads)} heads listen to {p} (the most attentive gives it "
                         f"{best.attention:.2f} of its attention" if len(g.heads) > 1 else
                         f"a head gives {p} {best.attention:.2f} of its attention")
                      + (")" if len(g.heads) > 1 else "")
                      + f", an even spread would give {even:.2f}")
            together = "together they move" if len(g.heads) > 1 else "it moves"
            moved = f"{together} the guess by {_pct(g.effect)} of the gap"
            backup = (" with the main name movers silenced" if q.card == "backup-name-mover"
                      else "")
            strong = sign * g.effect >= EFFECT_MIN or (
                q.card in COPY_SIGN and sign * g.direct >= EFFECT_MIN)
            if g.passes and strong:
                if not self.measurable(g, sign):
                    rep.verdict = "not-measurable"
                    rep.message = (f"{listen}; {moved}{backup}, but that is inside the noise "
                                   f"of these prompts ({_pct(g.noise)} either way)")
                    return rep, []
                rep.verdict = "confirmed"
                rep.message = f"{listen}; {moved}{backup}" + self._mechanism_words(q.card, g)
                return rep, list(g.heads)
            if not g.passes and sign * g.effect >= EFFECT_MIN:
                # real listeners with an effect, but not by this card's mechanism
                rep.verdict = "no-such-question"
                rep.message = (f"in round {q.round}, the heads through which {a} listens to "
                               f"{p} do not do what this card says: {g.why}")
                rep.reveal = {"heads": names}
                return rep, []
            if sign * g.effect < EFFECT_MIN:
                rep.verdict = "not-needed"
                rep.message = (f"{listen}; but the guess hardly depends on it: {moved}"
                               f"{backup} (a question that matters moves it by "
                               f"{EFFECT_MIN:.0%} or more)")
                return rep, list(g.heads)
            rep.verdict = "no-such-question"
            rep.message = (f"in round {q.round}, the heads through which {a} listens to {p} "
                           f"do not do what this card says: {g.why}")
            return rep, []

        # no head of this round fits: whom do the card's heads here listen to instead?
        others: dict[str, list[Head]] = {}
        for h, role in self.listeners(layers, a).items():
            if role != p and self.fits(q.card, *h, a, role)[0]:
                others.setdefault(role, []).append(h)
        for role, hs in sorted(others.items(), key=lambda kv: -len(kv[1])):
            o_sign = self.metric_sign(q.card, role)
            og = self.measure(q.card, hs, a, sign=o_sign)
            if og.passes and o_sign * og.effect >= EFFECT_MIN:
                best_p = max(self.attention(*h, a, p) for h in hs)
                rep.verdict = "wrong-responder"
                rep.message = (f"in round {q.round}, the heads that let {a} ask this "
                               f"listen to someone else: they give {p} at most "
                               f"{best_p:.2f} of their attention (an even spread gives "
                               f"{even:.2f})")
                rep.reveal = {"responder": role, "heads": [f"{l_}.{h}" for l_, h in hs]}
                rep.numbers = {"attention": best_p, "even": even}
                return rep, []

        # the same question in another round?
        for other in self.block.rounds:
            if other == q.round:
                continue
            og, _ = self.group_for(q.card, list(self.block.layers(other)), a, p)
            if og.heads and og.passes and sign * og.effect >= EFFECT_MIN:
                near = max((self.attention(layer, h, a, p), (layer, h)) for layer in layers
                           for h in range(self.lm.n_heads))
                rep.verdict = "wrong-round"
                rep.message = (f"in round {q.round}, no head lets {a} ask {p} this (the "
                               f"closest gives {p} {near[0]:.2f} of its attention, an even "
                               f"spread {even:.2f}); the line does ask it, but in another "
                               "round")
                rep.reveal = {"round": other, "heads": [f"{l_}.{h}" for l_, h in og.heads]}
                rep.numbers = {"attention": near[0], "even": even}
                return rep, []

        rep.verdict = "no-such-question"
        if misfit:
            (layer, h), why = max(misfit, key=lambda m: self.attention(*m[0], a, p))
            rep.message = (f"in round {q.round}, {a} does listen to {p} (a head gives it "
                           f"{self.attention(layer, h, a, p):.2f} of its attention), but not "
                           f"with this question: {why}")
            rep.reveal = {"heads": [f"{l_}.{h_}" for (l_, h_), _ in misfit]}
            return rep, []
        near = max((self.attention(layer, h, a, p), (layer, h)) for layer in layers
                   for h in range(self.lm.n_heads))
        rep.message = (f"in round {q.round}, nobody lets {a} ask {p} this: the closest head "
                       f"gives {p} {near[0]:.2f} of its attention (an even spread gives "
                       f"{even:.2f}), not clearly more than it gives the others")
        rep.numbers = {"attention": near[0], "even": even}
        return rep, []

    @staticmethod
    def _mechanism_words(card: str, g: _Group) -> str:
        if card == "s-inhibition":
            return (f"; {_pct(g.queries)} of the gap goes through what later heads ask, "
                    f"{_pct(g.direct)} directly")
        if card in ("name-mover", "copy", "negative-name-mover"):
            return f" ({_pct(g.direct)} directly into the guess)"
        return ""

    def judge_think(self, q: Question, rep: QuestionReport, layers: Sequence[int]
                    ) -> tuple[QuestionReport, list[Head]]:
        from engine.interventions import Edit

        edit = Edit.of(mlp=[(layer, q.asker) for layer in layers])
        self.need([self.base_edit(), edit])
        effect, noise = self.change(edit)
        rep.effect = effect
        rep.numbers = {"effect": effect, "noise": noise}
        if effect >= EFFECT_MIN and effect >= NOISE_Z * noise:
            rep.verdict = "confirmed"
            rep.message = (f"in round {q.round}, what {q.asker} thinks matters: replacing it "
                           f"moves the guess by {_pct(effect)} of the gap")
        elif effect >= EFFECT_MIN:
            rep.verdict = "not-measurable"
            rep.message = (f"in round {q.round}, replacing what {q.asker} thinks moves the "
                           f"guess by {_pct(effect)} of the gap, inside the noise ({_pct(noise)})")
        else:
            rep.verdict = "not-needed"
            rep.message = (f"in round {q.round}, what {q.asker} thinks barely matters "
                           f"(the guess moves by {_pct(effect)} of the gap)")
        return rep, []

    # ---- faithfulness ----------------------------------------------------------------
    def silenced(self, keep: set[Head]) -> Edit:
        """Every head of the rounds that ``keep`` does not name, mean-ablated."""
        from engine.interventions import Edit

        return Edit.of(ablate=[h for h in self.round_heads if h not in keep])

    def completeness(self, split: _Split, keep: set[Head], faith: float,
                     reports: Sequence[QuestionReport], used: Sequence[Sequence[Head]]
                     ) -> dict[str, float]:
        """The puzzle's completeness test (``Thresholds.within`` / ``without``): how far the
        circuit is from behaving like the model, as is and with the ``without`` card's heads
        silenced in both. Wang et al. use the same test to show a circuit holds the heads
        that take over when the main ones are knocked out."""
        t = self.block.thresholds
        assert t.within is not None
        out = {"as_is": faith, "within": t.within}
        worst = abs(faith - 1.0)
        if t.without is not None:
            gone = {h for rep, hs in zip(reports, used, strict=True) if rep.card == t.without
                    for h in hs}
            out["silenced_heads"] = float(len(gone))
            circuit = self.faithfulness(split, keep - gone)
            model = self.faithfulness(split, set(self.round_heads) - gone)  # only `gone` off
            out.update(circuit_without=circuit, model_without=model)
            worst = max(worst, abs(circuit - model))
        out["ok"] = 1.0 if worst <= t.within else 0.0
        return out

    def incomplete_words(self, c: dict[str, float]) -> str:
        """Why the completeness test fails, in the line's words, without naming heads."""
        w = c["within"]
        if abs(c["as_is"] - 1.0) > w:
            how = "more" if c["as_is"] > 1.0 else "less"
            return (f"your circuit says the answer {how} surely than the whole line does "
                    f"(faithfulness {c['as_is']:.2f}; it must be within {w:.2f} of 1.00): "
                    + ("someone who holds the answer back is missing" if how == "more"
                       else "someone who helps is missing"))
        card = self.block.thresholds.without
        return (f"silence the people who ask {card} and the whole line still keeps "
                f"{c['model_without']:.2f} of its answer, but your circuit keeps "
                f"{c['circuit_without']:.2f} (they must agree within {w:.2f}): "
                + ("someone who takes over when they are gone is missing"
                   if c["circuit_without"] < c["model_without"] else
                   "someone who holds the answer back is missing"))

    def floor(self, split: _Split) -> float:
        """The metric with every head of the rounds silenced: faithfulness 0. Without kept
        layers that is the whole model's heads, measured once when the split is built."""
        if not self.block.kept:
            return split.ablated
        edit = self.silenced(set())
        _ensure(self.lm, split, [edit])
        values = _values(split, edit)
        return sum(values) / len(values)

    def faithfulness(self, split: _Split, keep: set[Head]) -> float:
        edit = self.silenced(keep)
        _ensure(self.lm, split, [edit])
        values = _values(split, edit)
        floor = self.floor(split)
        denom = split.clean - floor
        if abs(denom) < 1e-6:
            return 0.0
        return (sum(values) / len(values) - floor) / denom


def _invalid(q: Question, puzzle: Puzzle, block: ModelBlock, roles: list[str],
             ps: PromptSet) -> str | None:
    """Why a question cannot be graded at all, or None (``engine.puzzle.question_problem``,
    the one rule the validator uses too)."""
    from engine.puzzle import question_problem

    return question_problem(q, puzzle, block, ps.roles)


def _normalise(q: Question) -> Question:
    from engine.puzzle import card_id

    return type(q)(q.round, q.asker, card_id(q.card), q.responder, q.line, q.col)


def grade(puzzle: Puzzle, circuit: Circuit, lm: LoadedModel, *,
          progress: Callable[[str, float], None] | None = None,
          cancelled: Callable[[], bool] | None = None, fail_fast: bool = False) -> Report:
    """Grade ``circuit`` for ``puzzle`` on ``lm`` (its ``lm.block`` block). See the module
    docstring for the rules. Raises ``UsageError`` when the puzzle is locked for the model and
    ``InterruptedError`` when ``cancelled()`` turns true.

    ``fail_fast`` stops at the first placed question that does not hold: the report then
    only answers "solved or not" (no star can come of it), which is all the validator asks
    of a trivial circuit of a hundred questions."""
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
    step("running the swapped sentences", 0.05)
    play, cached_play = _load_split(lm, ps_play, roles, play=True, cancelled=cancelled,
                                    step=step)
    step("measuring every head", 0.45)
    heads = _head_scores(lm)
    timing["runs"] = time.perf_counter() - t1
    timing["cached"] = 1.0 if cached_play else 0.0

    t2 = time.perf_counter()
    judge = _Judge(puzzle, block, lm, play, heads, roles)
    task = task_check(play, puzzle)
    problems: list[str] = []
    wrong_puzzle = bool(circuit.puzzle) and circuit.puzzle != puzzle.id
    if wrong_puzzle:
        problems.append(f"this circuit is for {circuit.puzzle!r}, not {puzzle.id!r}")
    if not task.ok:
        problems.append(task.message)

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

    used: list[list[Head]] = []
    for i, (q, is_given) in enumerate(placed):
        step(f"checking question {i + 1} of {len(placed)}", 0.6 + 0.3 * i / max(1, len(placed)))
        why = _invalid(q, puzzle, block, roles, ps_play)
        if why is not None:
            reports.append(QuestionReport(q.round, q.asker, q.card, q.responder, is_given,
                                          "invalid", why))
            used.append([])
            continue
        rep, heads_used = judge.judge_question(q, is_given, task)
        reports.append(rep)
        used.append(heads_used)
        if fail_fast and not is_given and not rep.holds:
            rest = len(placed) - i - 1
            if rest:
                problems.append(f"stopped at the first question that does not hold ({rest} "
                                "more not judged)")
            break

    step("faithfulness", 0.9)
    keep = {h for hs in used for h in hs}
    faith = judge.faithfulness(play, keep) if task.ok else 0.0
    pass_line = block.thresholds.faithfulness
    held_line = block.thresholds.heldout_faithfulness
    holds = bool(reports) and all(r.holds for r in reports) and task.ok
    completeness: dict[str, float] = {}
    if holds and faith >= pass_line and block.thresholds.within is not None:
        completeness = judge.completeness(play, keep, faith, reports, used)
        if not completeness["ok"]:
            problems.append(judge.incomplete_words(completeness))
    complete = not completeness or bool(completeness["ok"])

    # Held-out prompts can only confirm a pass, so they are run only once the play prompts
    # pass; otherwise their faithfulness is not measured (None).
    splits = [play]
    faith_held: float | None = None
    if holds and faith >= pass_line and complete:
        t3 = time.perf_counter()
        step("held-out prompts", 0.92)
        ps_held = puzzle.build_prompts(lm.tokenizer, "heldout")
        heldout, cached_held = _load_split(lm, ps_held, roles, play=False, cancelled=cancelled,
                                           step=step)
        splits.append(heldout)
        timing["cached"] = 1.0 if (cached_play and cached_held) else 0.0
        faith_held = judge.faithfulness(heldout, keep)
        timing["heldout"] = time.perf_counter() - t3

    # minimality: drop each confirmed question the player placed (its heads no other uses)

    drops = []
    for i, rep in enumerate(reports):
        if faith < pass_line or not task.ok:
            break  # minimality only matters for the third star, which needs the second
        if rep.verdict != "confirmed" or rep.given or rep.card in ("think",
                                                                   "backup-name-mover"):
            continue
        rest = {h for j, hs in enumerate(used) if j != i for h in hs}
        drops.append((i, rest))
    _ensure(lm, play, [judge.silenced(rest) for _, rest in drops])
    for i, rest in drops:
        rep = reports[i]
        without = judge.faithfulness(play, rest)
        rep.drop_loss = faith - without
        needed = abs(rep.drop_loss) >= NEED_LOSS or (faith >= pass_line > without)
        if not needed:
            rep.verdict = "not-needed"
            rep.message = (f"{rep.message}; but the others already carry it: faithfulness is "
                           f"{without:.2f} without this question and {faith:.2f} with it")

    stars = stars_for(reports, faith, pass_line, faith_held, held_line, task_ok=task.ok,
                      right_puzzle=not wrong_puzzle, complete=complete)
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
        metric_ablated=judge.floor(play), circuit_heads=[f"{a}.{b}" for a, b in sorted(keep)],
        task_ok=task.ok, task_message=task.message, accuracy=task.accuracy,
        completeness=completeness,
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
