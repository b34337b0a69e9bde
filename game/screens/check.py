"""Checking a circuit: the judge runs in a daemon thread awaited by a worker; then the
verdict, saved. Only esc cancels a running check; enter only leaves a finished one."""

from __future__ import annotations

import math
import time
from typing import Any, ClassVar

from rich.console import Group
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Footer, ProgressBar, Static
from textual.worker import get_current_worker

from game.background import in_daemon_thread
from game.format import (
    FAITHFULNESS,
    effect_note,
    faithfulness_note,
    finite,
    metric_explained,
    num,
    stage_words,
    stars_text,
    verdict_mark,
    visible,
    why_not,
)
from game.lifecycle import GameScreen
from game.screens.base import ReportsWorkerFailures

QUIET_S = 1.0
"""After this long without word from the judge, the bar shows that work goes on (an
indeterminate bar with the stage name) instead of sitting still at the last fraction."""


class CheckScreen(ReportsWorkerFailures, GameScreen[Any]):
    """Dismisses with the judge's report (or None when cancelled or failed)."""

    BINDINGS: ClassVar = [
        Binding("escape", "leave", "Cancel / back"),
        Binding("enter", "back", "Back", show=False),
    ]

    class Progressed(Message):
        def __init__(self, stage: str, fraction: float | None) -> None:
            super().__init__()
            self.stage, self.fraction = stage, fraction

    class Graded(Message):
        def __init__(self, report: Any) -> None:
            super().__init__()
            self.report = report

    def __init__(self, puzzle: Any, questions: list[dict[str, str]], *,
                 reveal: bool = False) -> None:
        super().__init__()
        self.puzzle = puzzle
        self.questions = questions
        self.reveal = reveal  # solved before on this model: the judge's numbers may show
        self.report: Any = None
        self.stage = "starting the judge"
        self.last_word = time.monotonic()
        self.indeterminate = False

    def compose(self) -> ComposeResult:
        title = Text()
        title.append("Checking", style="bold")
        title.append(f" {visible(self.puzzle.title)}")
        yield Static(title, id="check-title")
        with Vertical(id="check-progress"):
            yield Static(Text("starting the judge..."), id="stage")
            yield ProgressBar(total=1.0, show_eta=False, id="bar")
            yield Static(Text("esc cancels"), classes="dim")
        with VerticalScroll(id="verdict"):
            yield Static(id="verdict-body")
        yield Footer()

    def set_up(self) -> None:
        self.query_one("#verdict").display = False
        self.set_interval(0.5, self.tick)
        self.run_judge()

    @work(exclusive=True, exit_on_error=False, group="judge", description="Checking your circuit")
    async def run_judge(self) -> None:
        from engine.puzzle import Question

        app: Any = self.app
        worker = get_current_worker()
        questions = [Question(**q) for q in self.questions]

        def progress(stage: str, fraction: float | None) -> None:
            if not worker.is_cancelled:
                self.post_message(self.Progressed(stage, fraction))

        report = await in_daemon_thread(app.engine.grade, self.puzzle, questions,
                                        progress=progress, cancelled=lambda: worker.is_cancelled)
        if not worker.is_cancelled:
            self.post_message(self.Graded(report))

    # ------------------------------------------------------------------ progress
    @on(Progressed)
    def show_progress(self, event: Progressed) -> None:
        if self.report is not None:
            return
        self.stage = stage_words(str(event.stage))
        self.last_word = time.monotonic()
        bar = self.query_one(ProgressBar)
        if finite(event.fraction):
            self.indeterminate = False
            bar.update(total=1.0, progress=max(0.0, min(1.0, float(event.fraction))))
            self.query_one("#stage", Static).update(Text(f"{visible(self.stage)}..."))
        else:
            self.go_indeterminate()

    def go_indeterminate(self) -> None:
        """No fraction is known for this stage: a moving bar and the stage name."""
        self.indeterminate = True
        self.query_one(ProgressBar).update(total=None)
        self.query_one("#stage", Static).update(
            Text(f"{visible(self.stage)}... (working; this step has no measure of how far)"))

    def tick(self) -> None:
        if self.report is None and not self.indeterminate \
                and time.monotonic() - self.last_word > QUIET_S:
            self.go_indeterminate()

    # ------------------------------------------------------------------ the verdict
    @on(Graded)
    def show_verdict(self, event: Graded) -> None:
        app: Any = self.app
        self.report = event.report
        saver = getattr(app, "record_progress", None)
        if saver is not None:
            saver(self.puzzle.id, stars=event.report.stars, circuit=self.questions)
        title = Text()
        title.append("Verdict", style="bold")
        title.append(f" {visible(self.puzzle.title)}")
        self.query_one("#check-title", Static).update(title)
        self.query_one("#check-progress").display = False
        self.query_one("#verdict").display = True
        self.query_one("#verdict-body", Static).update(render_verdict(
            event.report, puzzle=self.puzzle, reveal=self.reveal or event.report.solved))
        self.query_one("#verdict").focus()

    def work_failed(self, worker: Any, error: BaseException) -> None:
        """Called by the App's one failure handler: go back to the puzzle (or, when another
        screen is on top, say so here and wait for esc)."""
        if self.report is not None:
            return
        if self.is_top:
            self.dismiss(None)
        else:
            self.query_one("#stage", Static).update(Text(f"The check failed: {error}"))

    def action_back(self) -> None:
        """Enter: back to the puzzle once there is a verdict; while the judge runs, nothing
        (only esc cancels, as the screen says)."""
        if self.report is not None and self.is_top:
            self.dismiss(self.report)

    def action_leave(self) -> None:
        if not self.is_top:
            return
        if self.report is None:
            self.workers.cancel_group(self, "judge")
            self.notify("Check cancelled.")
        self.dismiss(self.report)


# --------------------------------------------------------------------------- rendering


def bar(value: float, line: float | None, width: int = 30) -> Text:
    """A bar of ``value`` (0..1) with a ``┃`` at the pass line (none when the line is unknown:
    None or NaN); readable without colour."""
    value = max(0.0, min(1.0, value)) if finite(value) else 0.0
    filled = round(value * width)
    mark = min(width - 1, max(0, round(line * width))) if finite(line) else -1
    out = Text("[")
    for i in range(width):
        ch = "█" if i < filled else "░"
        if i == mark:
            ch = "┃"
        out.append(ch, style="bold" if i < filled else "dim")
    out.append("]")
    return out


def evidence_text(h: Any) -> str:
    """"head 1.2: attn 0.82, effect +0.64", leaving out numbers that are not finite."""
    parts = []
    if finite(h.attention):
        parts.append(f"attn {h.attention:.2f}")
    if finite(h.effect):
        parts.append(f"effect {h.effect:+.2f}")
    return f"head {h.head}: {', '.join(parts)}" if parts else f"head {h.head}"


def question_text(q: Any) -> str:
    what = f"[{q.round}] {q.asker}: {q.card}" + (f" → {q.responder}" if q.responder else "")
    return visible(what) + (" (given)" if q.given else "")


def reveal_text(q: Any) -> str:
    """What the judge holds back until a solve: where the question holds, whom the asker
    listens to, which heads."""
    reveal = getattr(q, "reveal", None) or {}
    parts = []
    if reveal.get("round"):
        parts.append(f"it holds in round {reveal['round']}")
    if reveal.get("responder"):
        parts.append(f"{q.asker} listens to {reveal['responder']}")
    if reveal.get("heads"):
        parts.append("heads " + ", ".join(str(h) for h in reveal["heads"]))
    return "; ".join(parts)


def render_question(q: Any, *, puzzle: Any = None, reveal: bool = False) -> Text:
    """One question's verdict: the mark and the question, then the reason in the line's
    terms (what the asker can know, what the evidence shows), never the fix. The judge keeps
    what gives the answer away (the right round, responder, head numbers) in ``reveal``;
    it shows only with ``reveal`` (after a solve). Numbers outside 0..100% are explained
    where they appear."""
    from engine.puzzle import CARDS

    out = Text()
    out.append(f"{verdict_mark(q.verdict)}  ", style="bold")
    out.append(question_text(q))
    card = CARDS.get(q.card)
    if q.verdict == "invalid" or hasattr(q, "reveal"):
        why = q.message  # the judge's reason holds nothing back that would give it away
    else:  # an older report whose message names the fix: say why in the game's words
        why = why_not(q.verdict, round_=q.round, asker=q.asker, responder=q.responder,
                      card=q.card, card_plain=card.plain if card else "")
    out.append(f"\n    {visible(why)}")
    effect = getattr(q, "effect", math.nan)
    note = effect_note(effect) if q.verdict in ("confirmed", "not-needed") else None
    if note:
        out.append(f"\n    ({note})", style="dim")
    if reveal and q.verdict != "invalid":
        shown = reveal_text(q)
        if shown:
            out.append(f"\n    answer: {visible(shown)}", style="dim")
        elif not hasattr(q, "reveal"):
            out.append(f"\n    judge: {visible(q.message)}", style="dim")
        evidence = [evidence_text(h) for h in q.heads]
        if evidence:
            out.append("\n    " + "  ".join(evidence), style="dim")
    return out


def render_verdict(report: Any, *, puzzle: Any = None, reveal: bool | None = None) -> Group:
    """The verdict panel. ``reveal`` defaults to "the circuit is solved"."""
    if reveal is None:
        reveal = bool(report.solved)
    head = Text()
    head.append(f"{stars_text(report.stars)}  ", style="bold")
    head.append("Solved!" if report.solved else "Not yet.", style="bold")
    head.append(f"   model: {visible(report.model_label)}")
    faith = Text("faithfulness  ")
    faith.append_text(bar(report.faithfulness, report.pass_line))
    faith.append(f" {num(report.faithfulness)}  pass line {num(report.pass_line)}")
    held = Text("held-out      ")
    if report.heldout_faithfulness is None:
        held.append("not measured until the play prompts pass")
    else:
        line = getattr(report, "heldout_pass_line", math.nan)
        held.append_text(bar(report.heldout_faithfulness, line))
        held.append(f" {num(report.heldout_faithfulness)}")
        if finite(line):
            held.append(f"  pass line {line:.2f}")
    notes = [FAITHFULNESS]
    for value in (report.faithfulness, report.heldout_faithfulness):
        note = faithfulness_note(value)
        if note and note not in notes:
            notes.append(note)
    kind = getattr(getattr(puzzle, "metric", None), "kind", None)
    metric = Text(f"metric: full model {num(report.metric_full)}, corrupted "
                  f"{num(report.metric_corrupted)}: {metric_explained(kind)}", style="dim")
    parts: list[Any] = [head, Text(""), faith, held, metric,
                        *[Text(n, style="dim") for n in notes], Text("")]
    for q in report.questions:
        parts.append(render_question(q, puzzle=puzzle, reveal=reveal))
    task = getattr(report, "task_message", "")
    if not getattr(report, "task_ok", True) and task:
        parts.insert(1, Text(visible(task)))
    if not reveal and any(q.verdict != "confirmed" for q in report.questions):
        parts.append(Text("\nThe right round, responder and heads are in the hints (h) "
                          "and show here once the puzzle is solved.", style="dim"))
    if report.problems:
        parts += [Text(""), Text("\n".join(f"• {visible(p)}" for p in report.problems))]
    parts += [Text(""), Text("enter or esc: back to the puzzle", style="dim")]
    return Group(*parts)
