"""A puzzle's patching experiments, the essay's swaps and the judge's silencing, as one report.

``puzzle_patch`` builds a puzzle's play prompts and their corrupted twins, runs one grid of
``engine.interventions.patch_grid`` and reads every cell as a fraction of the gap between the
clean and the corrupted metric: 1 means the cell alone brings the clean answer back (or, when
silencing, that the answer survives the silence untouched), 0 means it changes nothing (or,
when silencing, that all of the answer is lost). ``lineup patch`` prints the report, ``--json``
writes it, and the game draws it: one dataclass for all three.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.errors import UsageError
from engine.interventions import ALL, PATCH_AT

if TYPE_CHECKING:
    from engine.loaded import LoadedModel
    from engine.puzzle import Puzzle

KINDS = (*PATCH_AT, "silence")
"""What ``lineup patch --at`` accepts (``silence`` is ``--silence``)."""

WHAT = {
    "head": "the answer to question {head}",
    "query": "what {head} asks",
    "key": "who answers {head} (the listeners' keys)",
    "value": "what is said back to {head} (the values)",
}
"""Each swap in the line's words; ``{head}`` is ``layer.head``."""

TITLE = {
    "head": "one question's answer (a head's output) swapped in from the clean sentence",
    "query": "one question (a head's query) swapped in from the clean sentence",
    "key": "who answers (a head's keys) swapped in from the clean sentence",
    "value": "what is said back (a head's values) swapped in from the clean sentence",
    "resid": "one person swapped in from the clean sentence as a layer starts",
    "silence": "one question silenced: its mean answer over the corrupted sentences",
}


def where_text(position: str) -> str:
    return "at every position" if position == ALL else f"at {position}"


@dataclass
class PatchReport:
    """One grid for a puzzle: rows are layers, columns heads (or people for
    ``resid``). ``effects`` are mean metrics, ``fractions`` the same cells as a share of the
    clean-minus-corrupted gap. ``estimate`` is True for a first-order (attribution) picture
    that exact runs replace."""

    puzzle: str
    model: str
    label: str
    metric: str
    at: str
    position: str
    prompts: list[str]
    corrupted: list[str]
    answers: list[list[str | None]]
    clean_metric: float
    corrupted_metric: float
    columns: list[str]
    effects: list[list[float]]
    fractions: list[list[float]]
    reading: str
    estimate: bool = False
    timing_s: dict[str, float] = field(default_factory=dict)
    layers: list[int] = field(default_factory=list)
    """The layer of each row (every layer, in order, unless fewer were asked for)."""

    @property
    def title(self) -> str:
        where = "" if self.at in ("resid", "silence") else f", {where_text(self.position)}"
        return f"{TITLE[self.at]}{where}"

    def to_json(self) -> dict[str, Any]:
        return {
            "puzzle": self.puzzle, "model": self.model, "metric": self.metric, "at": self.at,
            "position": self.position, "prompts": self.prompts, "corrupted": self.corrupted,
            "answers": self.answers, "clean_metric": self.clean_metric,
            "corrupted_metric": self.corrupted_metric, "columns": self.columns,
            "effects": self.effects, "fractions": self.fractions, "reading": self.reading,
            "estimate": self.estimate, "timing_s": self.timing_s, "layers": self.layers,
        }


def fraction_of_gap(value: float, clean: float, corrupted: float) -> float:
    """Where ``value`` sits between the corrupted (0) and the clean (1) metric."""
    gap = clean - corrupted
    return (value - corrupted) / gap if abs(gap) > 1e-9 else 0.0


def reading(at: str, position: str, columns: list[str], fractions: list[list[float]],
            layers: list[int] | None = None) -> str:
    """One line saying what the strongest cell means, in the line's words: the cell that
    brings back most of the gap, or, when silencing, the one that leaves least of it. Row i
    is layer ``layers[i]`` (layer i by default)."""
    layer_of = layers or list(range(len(fractions)))
    cells = [(f, layer_of[i], j) for i, row in enumerate(fractions) for j, f in enumerate(row)]
    if not cells:
        return "nothing to read: the grid is empty"
    pick = min if at == "silence" else max
    frac, layer, j = pick(cells)
    pct = f"{round(100 * frac)}%"
    if at == "silence":
        return (f"silencing {layer}.{columns[j]} (everyone hears its average answer) leaves "
                f"{pct} of the gap")
    if at == "resid":
        return f"swapping person {columns[j]} before layer {layer} brings back {pct} of the gap"
    what = WHAT[at].format(head=f"{layer}.{columns[j]}")
    return f"swapping {what} {where_text(position)} brings back {pct} of the gap"


def puzzle_patch(puzzle: Puzzle, lm: LoadedModel, *, at: str = "head", position: str = ALL,
                 count: int | None = None, estimate: bool = False,
                 progress: Callable[[int, int], None] | None = None,
                 cancelled: Callable[[], bool] | None = None,
                 layers: list[int] | None = None) -> PatchReport:
    """The puzzle's grid of one kind on its first ``count`` play prompts (all by default).

    Patching is denoising (corrupted run, one piece from the clean run); silencing runs the
    clean prompts with one head mean-ablated over the corrupted ones, per template.
    ``estimate`` gives attribution patching's first-order picture instead (one forward of
    each side and one backward: ``engine.interventions.attribution_*_grid``), the screens'
    first picture while the exact grid runs. ``layers`` limits an exact grid's rows to
    those layers."""
    import time

    from engine.interventions import (
        attribution_patch_grid,
        attribution_resid_grid,
        attribution_silence_grid,
        patch_grid,
    )
    from engine.loaded import pad_rows
    from engine.metrics import PuzzleMetric

    if at not in KINDS:
        raise UsageError(f"cannot patch at {at!r}: use {', '.join(KINDS)}")
    if count is not None and count < 1:
        raise UsageError("--count must be at least 1")
    t0 = time.perf_counter()
    ps = puzzle.build_prompts(lm.tokenizer, "play")
    n = len(ps) if count is None else min(count, len(ps))
    token_ids, corrupted_ids = ps.token_ids[:n], ps.corrupted_ids[:n]
    if any(a != len(ids) - 1 for a, ids in zip(ps.at[:n], token_ids, strict=True)):
        raise UsageError(f"{puzzle.id}: the metric is not read at the last token; "
                         "the patching grid needs it there")
    roles = {r: ps.roles[r][:n] for r in puzzle.roles}
    if position != ALL and position not in roles:
        raise UsageError(f"{puzzle.id} has no person called {position!r}; its people: "
                         f"{', '.join(roles)} (or {ALL} for every position)")
    if estimate and layers is not None:
        raise UsageError("the first-order estimate covers every layer")
    clean = pad_rows(token_ids, device=lm.device)
    corrupted = pad_rows(corrupted_ids, device=lm.device)
    metric = PuzzleMetric(ps.metric.kind, ps.correct[:n], ps.wrong[:n])
    if estimate and at == "silence":
        effects = attribution_silence_grid(lm, clean, corrupted, metric,
                                           templates=ps.templates[:n] or None)
        clean_metric, corrupted_metric = _baselines(lm, clean, corrupted, metric)
        columns = [str(h) for h in range(lm.n_heads)]
    elif estimate and at == "resid":
        effects = attribution_resid_grid(lm, corrupted, clean, metric, roles)
        clean_metric, corrupted_metric = _baselines(lm, clean, corrupted, metric)
        columns = list(roles)
    elif at == "silence":
        grid = patch_grid(lm, clean, corrupted, metric, at="silence",
                          templates=ps.templates[:n] or None, progress=progress,
                          cancelled=cancelled, layers=layers)
        clean_metric, corrupted_metric = grid.target_metric, grid.source_metric
        columns, effects = grid.columns, grid.effects
    elif estimate:
        effects = attribution_patch_grid(lm, corrupted, clean, metric, which=PATCH_AT[at],
                                         positions=None if position == ALL else roles[position])
        clean_metric, corrupted_metric = _baselines(lm, clean, corrupted, metric)
        columns = [str(h) for h in range(lm.n_heads)]
    else:
        grid = patch_grid(lm, corrupted, clean, metric, at=at, position=position,
                          positions=roles, progress=progress, cancelled=cancelled,
                          layers=layers)
        clean_metric, corrupted_metric = grid.source_metric, grid.target_metric
        columns, effects = grid.columns, grid.effects
    shown_layers = list(range(lm.n_layers)) if estimate or layers is None else list(layers)
    rows = [[round(float(v), 5) for v in row] for row in effects.tolist()]
    fractions = [[round(fraction_of_gap(v, clean_metric, corrupted_metric), 4) for v in row]
                 for row in effects.tolist()]
    decode = lm.tokenizer.decode
    answers = [[decode(c[:1]) if c else None, decode(w[:1]) if w else None]
               for c, w in zip(ps.correct[:n], ps.wrong[:n], strict=True)]
    shown = ALL if at in ("resid", "silence") else position
    return PatchReport(
        puzzle=puzzle.id, model=lm.name, label=lm.label, metric=ps.metric.kind, at=at,
        position=shown, prompts=ps.texts[:n], corrupted=ps.corrupted[:n], answers=answers,
        clean_metric=clean_metric, corrupted_metric=corrupted_metric, columns=columns,
        effects=rows, fractions=fractions,
        reading=reading(at, shown, columns, fractions, shown_layers),
        estimate=estimate, timing_s={"patching": round(time.perf_counter() - t0, 4)},
        layers=shown_layers)


def _baselines(lm: LoadedModel, clean: Any, corrupted: Any, metric: Any) -> tuple[float, float]:
    """Mean metric of the clean and of the corrupted prompts."""
    import torch

    from engine.hooks import forward

    with torch.inference_mode():
        return (float(metric(forward(lm, clean, logits="last").logits).mean()),
                float(metric(forward(lm, corrupted, logits="last").logits).mean()))
