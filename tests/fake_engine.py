"""An instant, deterministic stand-in for ``game.engine_bridge.Engine``: the Pilot tests, the
snapshots and the screenshots in docs/playing.md run the game on it. It lives with the tests;
the game itself always runs the real engine."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from game.engine_bridge import Cancelled, Progress, block_for
from game.views import AttentionView, SwapView, line_of, words_of

if TYPE_CHECKING:
    from engine.judge import Report
    from engine.puzzle import Puzzle, Question


class FakeEngine:
    """Instant, deterministic stand-in for ``Engine`` (tests, snapshots, screenshots).

    It grades by comparing the circuit with the puzzle's reference solution for its block:
    reference questions are confirmed, a right asker and card with the wrong responder gets
    "wrong-responder", anything else "no-such-question"; the stars follow the judge's own rule
    (``engine.report.stars_for``). ``gate`` holds the grading (to see the progress bar and cancel);
    ``load_gate`` holds ``lm()`` (a slow model load); ``unknown`` reports a stage with no
    known fraction (NaN) before grading."""

    fake = True
    n_layers = 2
    n_heads = 4

    def __init__(self, model: str = "toy", *, steps: int = 3,
                 gate: threading.Event | None = None,
                 load_gate: threading.Event | None = None, unknown: bool = False) -> None:
        self.model = model
        self.requested = model
        self.block = block_for(model)
        self.steps = steps
        self.gate = gate
        self.load_gate = load_gate
        self.unknown = unknown
        self.graded = 0
        self.loads = 0

    def banner(self) -> str:
        return "Model: the fake engine (made-up numbers, for tests and screenshots)"

    def lm(self, puzzle: Puzzle | None = None) -> None:
        """Nothing to load, unless a test holds the load (``load_gate``)."""
        self.loads += 1
        if self.load_gate is not None:
            self.load_gate.wait()

    def prepare(self, puzzle: Puzzle, *, progress: Progress | None = None,
                cancelled: Cancelled | None = None) -> None:
        """Nothing to run ahead: a fake check is instant."""
        self.prepared = getattr(self, "prepared", 0) + 1

    def grade(self, puzzle: Puzzle, questions: list[Question], *, progress: Progress | None = None,
              cancelled: Cancelled | None = None) -> Report:
        import math

        from engine.report import HeadEvidence, QuestionReport, Report, stars_for

        if self.unknown and progress:
            progress("running the prompts", math.nan)
        for step in range(self.steps):
            if progress:
                progress(["running the prompts", "checking each question", "ablating the rest"]
                         [step % 3], step / self.steps)
            if self.gate is not None:
                while not self.gate.wait(0.01):
                    if cancelled and cancelled():
                        raise InterruptedError("check cancelled")
            if cancelled and cancelled():
                raise InterruptedError("check cancelled")
        self.graded += 1
        block = puzzle.models[self.block or "toy"]
        solution = {(q.round, q.asker, q.card, q.responder) for q in block.solution}
        given = {(q.round, q.asker, q.card, q.responder) for q in block.given}
        reports = []
        for k, q in enumerate(questions):
            key = (q.round, q.asker, q.card, q.responder)
            if key in solution:
                layer = block.rounds[q.round][0]
                reports.append(QuestionReport(
                    *key, key in given, "confirmed",
                    f"{q.asker} gives {q.responder} most of its attention in round {q.round}",
                    [HeadEvidence(f"{layer}.{k % 4}", layer, k % 4, 0.82, 0.91, 0.64)],
                    effect=0.64))
                continue
            near = [s for s in solution if s[1:3] == key[1:3]]
            if near and near[0][0] == q.round:
                reports.append(QuestionReport(
                    *key, False, "wrong-responder",
                    f"in round {q.round}, {q.asker} gives {q.responder} only 0.04 of its "
                    "attention: the answer comes from someone else", [],
                    reveal={"responder": near[0][3], "heads": ["1.2"]}))
            elif near:
                reports.append(QuestionReport(
                    *key, False, "wrong-round",
                    f"nobody asks that in round {q.round}", [], reveal={"round": near[0][0]}))
            else:
                reports.append(QuestionReport(
                    *key, False, "no-such-question",
                    f"no head in round {q.round} has {q.asker} ask {q.responder} that question "
                    "(best 0.06)", []))
        placed = {(q.round, q.asker, q.card, q.responder) for q in questions} | given
        found = len(solution & placed) / max(1, len(solution))
        wrong = sum(not r.holds for r in reports)
        faith = round(max(0.0, found - 0.1 * wrong) * 0.93, 2)
        pass_line = block.thresholds.faithfulness
        held_line = block.thresholds.heldout_faithfulness
        # as the judge: held-out prompts run only once the play prompts pass
        holds = bool(reports) and wrong == 0
        held = round(faith * 0.97, 2) if holds and faith >= pass_line else None
        stars = stars_for(reports, faith, pass_line, held, held_line)
        return Report(puzzle.id, self.model, "fake engine", stars >= 2, stars, 2.5, 0.1, faith,
                      held, pass_line, reports, [], {}, heldout_pass_line=held_line)

    def attention(self, text: str, layer: int, head: int, *,
                  puzzle: Puzzle | None = None) -> AttentionView:
        words = words_of(text)
        n = len(words)
        layer = max(0, min(self.n_layers - 1, layer))
        head = max(0, min(self.n_heads - 1, head))
        pattern = []
        for q in range(n):
            target = max(0, q - 1 - ((layer + head) % 2))
            row = [0.0] * n
            row[target] += 0.7
            for k in range(q + 1):
                row[k] += round(0.3 / (q + 1), 4)
            pattern.append([round(v, 2) for v in row])
        return AttentionView(text, words, layer, head, self.n_layers, self.n_heads, pattern)

    def lens(self, text: str, k: int = 3, *, puzzle: Puzzle | None = None) -> Any:
        from engine.lens import LensLayer, LensPosition, LensReport

        words = words_of(text)
        layers = []
        for stage in range(self.n_layers + 1):
            label = "embeddings" if stage == 0 else f"after layer {stage - 1}"
            positions = []
            for pos, word in enumerate(words):
                guess = words[(pos + stage) % len(words)]
                positions.append(LensPosition(word, [(guess, round(0.3 + 0.2 * stage, 2)),
                                                     (" the", 0.1), (" a", 0.05), (".", 0.03),
                                                     (" and", 0.02)][:k]))
            layers.append(LensLayer(stage, label, positions))
        return LensReport(self.model, text, words, layers)

    def swap(self, puzzle: Puzzle, *, n: int = 8, cancelled: Cancelled | None = None) -> SwapView:
        roles = list(puzzle.roles)
        by_role = [[round(1.0 if (j + layer) % len(roles) == 0 else 0.05 * j, 2)
                    for j in range(len(roles))] for layer in range(self.n_layers)]
        heads = [[round(0.7 if (layer, h) == (1, 2) else 0.02 * h, 2) for h in range(self.n_heads)]
                 for layer in range(self.n_layers)]
        from game.views import corrupted_line

        return SwapView(roles, by_role, heads, 2.5, 0.1, clean_text=line_of(puzzle).text,
                        corrupted_text=corrupted_line(puzzle))

    def patch(self, puzzle: Puzzle, at: str = "head", *, position: str = "*",
              n: int | None = None, estimate: bool = False,
              progress: Callable[[int, int], None] | None = None,
              cancelled: Cancelled | None = None, layers: list[int] | None = None) -> Any:
        """Made-up grids of the real report's shape: question 1.2 (or person 0) stands out."""
        from engine.patching import PatchReport, reading

        roles = list(puzzle.roles)
        columns = roles if at == "resid" else [str(h) for h in range(self.n_heads)]
        strong = (1, 0 if at == "resid" else 2)
        base = 0.9 if at == "silence" else 0.03
        hit = 0.2 if at == "silence" else (0.55 if estimate else 0.7)
        fractions = [[hit if (layer, j) == strong else round(base + 0.01 * j, 2)
                      for j in range(len(columns))] for layer in range(self.n_layers)]
        for layer in range(self.n_layers):
            if progress:
                progress(layer + 1, self.n_layers)
            if cancelled and cancelled():
                raise InterruptedError("patching cancelled")
        clean, corrupted = 2.5, 0.1
        effects = [[round(corrupted + f * (clean - corrupted), 4) for f in row]
                   for row in fractions]
        shown = "*" if at in ("resid", "silence") else position
        from game.views import corrupted_line

        return PatchReport(puzzle.id, self.model, "fake engine", "logit_diff", at, shown,
                           [line_of(puzzle).text], [corrupted_line(puzzle)], [["A", "B"]], clean,
                           corrupted, columns, effects, fractions,
                           reading(at, shown, columns, fractions), estimate=estimate)


    def listeners(self, text: str, asker: int, responder: int, *,
                  puzzle: Puzzle | None = None) -> Any:
        from engine.detectors import Listening

        baseline = 1.0 / (asker + 1)
        rows = [Listening(layer, h, round(0.7 if (layer, h) == (1, 2) else 0.1 + 0.02 * h, 3),
                          round(baseline, 3))
                for layer in range(self.n_layers) for h in range(self.n_heads)]
        return sorted(rows, key=lambda r: -r.lift)


