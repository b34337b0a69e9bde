"""Checking a circuit: the judge runs in a thread worker; then the verdict, saved."""

from __future__ import annotations

import math
from typing import Any, ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, ProgressBar, Static
from textual.worker import get_current_worker

from game.screens.base import ReportsWorkerFailures
from game.screens.puzzle import VERDICT_MARK


class CheckScreen(ReportsWorkerFailures, Screen[Any]):
    """Dismisses with the judge's report (or None when cancelled or failed)."""

    BINDINGS: ClassVar = [
        Binding("escape", "leave", "Cancel / back"),
        Binding("enter", "leave", "Back", show=False),
    ]

    class Progressed(Message):
        def __init__(self, stage: str, fraction: float) -> None:
            super().__init__()
            self.stage, self.fraction = stage, fraction

    class Graded(Message):
        def __init__(self, report: Any) -> None:
            super().__init__()
            self.report = report

    def __init__(self, puzzle: Any, questions: list[dict[str, str]]) -> None:
        super().__init__()
        self.puzzle = puzzle
        self.questions = questions
        self.report: Any = None

    def compose(self) -> ComposeResult:
        yield Static(f"[b]Checking[/b] {self.puzzle.title}", id="check-title")
        with Vertical(id="check-progress"):
            yield Static("starting the judge...", id="stage")
            yield ProgressBar(total=1.0, show_eta=False, id="bar")
            yield Static("esc cancels", classes="dim")
        with VerticalScroll(id="verdict"):
            yield Static(id="verdict-body")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#verdict").display = False
        self.run_judge()

    @work(thread=True, exclusive=True, exit_on_error=False, group="judge",
          description="Checking your circuit")
    def run_judge(self) -> None:
        from engine.puzzle import Question

        app: Any = self.app
        worker = get_current_worker()
        questions = [Question(**q) for q in self.questions]
        report = app.engine.grade(
            self.puzzle, questions,
            progress=lambda stage, fraction: self.post_message(self.Progressed(stage, fraction)),
            cancelled=lambda: worker.is_cancelled)
        if not worker.is_cancelled:
            self.post_message(self.Graded(report))

    @on(Progressed)
    def show_progress(self, event: Progressed) -> None:
        self.query_one("#stage", Static).update(f"{event.stage}...")
        self.query_one(ProgressBar).update(progress=max(0.0, min(1.0, event.fraction)))

    @on(Graded)
    def show_verdict(self, event: Graded) -> None:
        app: Any = self.app
        self.report = event.report
        try:
            app.progress.record(self.puzzle.id, stars=event.report.stars, circuit=self.questions)
        except OSError as exc:
            self.notify(f"Could not save: {exc}", severity="error")
        self.query_one("#check-title", Static).update(f"[b]Verdict[/b] {self.puzzle.title}")
        self.query_one("#check-progress").display = False
        self.query_one("#verdict").display = True
        self.query_one("#verdict-body", Static).update(render_verdict(event.report))
        self.query_one("#verdict").focus()

    def work_failed(self, worker: Any, error: BaseException) -> None:
        """Called by the App's one failure handler: go back to the puzzle (or, when another
        screen is on top, say so here and wait for esc)."""
        if self.report is not None:
            return
        if self.is_current:
            self.dismiss(None)
        else:
            self.query_one("#stage", Static).update(f"The check failed: {error}")

    def action_leave(self) -> None:
        if self.report is None:
            self.workers.cancel_group(self, "judge")
            self.notify("Check cancelled.")
        self.dismiss(self.report)


def finite(x: Any) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


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


def render_verdict(report: Any) -> Group:
    stars = "★" * report.stars + "☆" * (3 - report.stars)
    head = Text()
    head.append(f"{stars}  ", style="bold")
    head.append("Solved!" if report.solved else "Not yet.", style="bold")
    head.append(f"   model: {report.model_label}")
    faith = Text("faithfulness  ")
    faith.append_text(bar(report.faithfulness, report.pass_line))
    faith.append(f" {report.faithfulness:.2f}  pass line {report.pass_line:.2f}")
    held = Text("held-out      ")
    if report.heldout_faithfulness is None:
        held.append("not measured until the play prompts pass")
    else:
        line = getattr(report, "heldout_pass_line", math.nan)
        held.append_text(bar(report.heldout_faithfulness, line))
        held.append(f" {report.heldout_faithfulness:.2f}")
        if finite(line):
            held.append(f"  pass line {line:.2f}")
    metric = Text(f"metric: full model {report.metric_full:.2f}, "
                  f"corrupted {report.metric_corrupted:.2f}", style="dim")
    table = Table(box=None, show_header=True, header_style="bold", expand=True, pad_edge=False)
    table.add_column("verdict", no_wrap=True)
    table.add_column("question")
    table.add_column("why", ratio=2)
    for q in report.questions:
        mark = VERDICT_MARK.get(q.verdict, q.verdict)
        what = f"[{q.round}] {q.asker}: {q.card}" + (f" → {q.responder}" if q.responder else "")
        why = q.message
        evidence = [evidence_text(h) for h in q.heads]
        if any(evidence):
            why += "\n" + "  ".join(e for e in evidence if e)
        table.add_row(mark, what + (" (given)" if q.given else ""), why)
    parts: list[Any] = [head, Text(""), faith, held, metric, Text(""), table]
    if report.problems:
        parts += [Text(""), Text("\n".join(f"• {p}" for p in report.problems))]
    parts += [Text(""), Text("enter or esc: back to the puzzle", style="dim")]
    return Group(*parts)
