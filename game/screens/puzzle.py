"""The puzzle screen: the story, the line of people, the rounds and cards, the placed questions.

State lives in reactives (``questions``, ``report``, ``technical``): changing one redraws what
depends on it. Other screens are opened through the App (``open_check``, ``open_hints``,
``open_tool``), so no screen imports another."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.reactive import var
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from engine.limits import circuit_file_name
from game.background import in_daemon_thread
from game.format import people, rounds_text, stars_text, verdict_mark, visible, visible_block
from game.lifecycle import GameScreen
from game.views import LineView, key_of, line_of, role_line, saved_questions
from game.widgets.dialogs import AskText, Step, StepDialog
from game.widgets.people import Arrow, PeopleLine


def reflow(text: str) -> str:
    """Join the lines of each paragraph, so the story wraps to the panel's width."""
    paragraphs = [" ".join(part.split()) for part in str(text).strip().split("\n\n")]
    return "\n\n".join(p for p in paragraphs if p)


class QuestionList(OptionList):
    """The placed questions, one option each; long text wraps instead of being cut."""

    DEFAULT_CSS = """
    QuestionList { height: 1fr; }
    """

    def action_cursor_up(self) -> None:
        """Up stops at the first question (no wrapping round to the last)."""
        if self.highlighted:
            self.highlighted -= 1

    def action_cursor_down(self) -> None:
        if self.highlighted is not None and self.highlighted < self.option_count - 1:
            self.highlighted += 1


class PuzzleScreen(GameScreen[None]):
    BINDINGS: ClassVar = [
        Binding("a", "add", "Add question"),
        Binding("m", "move", "Move"),
        Binding("d,delete", "remove", "Remove"),
        Binding("c", "check", "Check"),
        Binding("h", "hint", "Hint"),
        Binding("t", "technical", "Names"),
        Binding("s", "export", "Save file"),
        Binding("w", "attention", "Who answers"),
        Binding("l", "lens", "Think now"),
        Binding("p", "swap", "Swap"),
        Binding("escape", "back", "Menu"),
    ]
    PALETTE: ClassVar = [
        ("puzzle: Check the circuit", "check", "run the judge"),
        ("puzzle: Add a question", "add", "round, asker, card, responder"),
        ("hint: Next hint", "hint", "rot13 first, then decoded"),
        ("view: Technical names", "technical", "plain words / interpretability names"),
        ("export: Save circuit file", "export", "a YAML file `lineup check` reads"),
        ("tool: Who answers (attention)", "attention", "any head's attention over the line"),
        ("tool: What do you think now (logit lens)", "lens", "each person's guesses by round"),
        ("tool: Swap a person (patching)", "swap", "activation patching for this puzzle"),
        ("tool: Swap one question's answer (head outputs)", "swap_heads",
         "a heatmap of every head, first estimate at once"),
        ("tool: Swap the question (queries)", "swap_query", "patch one head's query"),
        ("tool: Swap who answers (keys)", "swap_key", "patch one head's keys"),
        ("tool: Swap the answer (values)", "swap_value", "patch one head's values"),
        ("tool: Silence a question (mean ablation)", "silence",
         "the judge's knock-out, one head at a time"),
    ]

    questions: var[tuple[dict[str, str], ...]] = var(())
    report: var[Any] = var(None)
    technical: var[bool] = var(False)

    def __init__(self, puzzle: Any, questions: list[dict[str, str]] | None = None) -> None:
        super().__init__()
        self.puzzle = puzzle
        self.initial = questions
        self.hint_state = {"shown": 0, "decoded": False}
        self.line: LineView = role_line(puzzle)
        self.want_row: int | None = None  # the row to highlight at the next redraw
        self.block: Any = None
        self.given: list[dict[str, str]] = []

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Static(id="puzzle-title")
        yield Static(id="preparing")
        yield PeopleLine(id="line")
        with Horizontal(id="puzzle-lower"):
            yield QuestionList(id="questions")
            # The story scrolls in its own box; the rounds and cards stay in view under it
            # (a long story used to push the card list out of the panel).
            with VerticalScroll(id="puzzle-info"):
                with VerticalScroll(id="story-box"):
                    yield Static(id="story")
                yield Static(id="rounds")
                yield Static(id="cards")
        yield Footer()

    def set_up(self) -> None:
        app: Any = self.app
        p = self.puzzle
        self.block = p.models[app.engine.block]
        self.given = [q.as_dict() for q in self.block.given]
        raw = self.initial if self.initial is not None else app.saved_circuit(p.id)
        saved, problems = saved_questions(raw, p, self.block)
        if problems:
            where = "the circuit file" if self.initial is not None else "your saved circuit"
            self.notify("; ".join(problems[:3]) + (f"; and {len(problems) - 3} more"
                                                   if len(problems) > 3 else ""),
                        title=f"Some of {where} could not be used", severity="warning",
                        timeout=10, markup=False)
        given_keys = {key_of(q) for q in self.given}
        own = [q for q in saved if key_of(q) not in given_keys]
        self.line = line_of(p, block=self.block)
        self.query_one(PeopleLine).line = self.line
        text = p.text_for(self.block)  # this model's own words where the block has them
        story = Text()
        if text.goal:
            story.append("Goal: ", style="bold")
            story.append(visible_block(reflow(text.goal)) + "\n\n")
        story.append(visible_block(reflow(text.story)))
        self.query_one("#story", Static).update(story)
        self.set_reactive(PuzzleScreen.questions, tuple(dict(q) for q in self.given) + tuple(own))
        self.refresh_all()
        self.query_one(QuestionList).focus()
        # A circuit opened from a file is not saved over the player's own circuit for this
        # puzzle until they edit it or check it (``changed``, ``checked``).
        self.prepare_ahead()

    def resumed(self) -> None:
        # back from a check, a tool or a dialog: go on where it stopped (the first showing
        # resumes too, while set-up's run is still going: that one goes on)
        if not any(w.group == "prepare" and not (w.is_finished or w.is_cancelled)
                   for w in self.workers):
            self.prepare_ahead()

    def on_screen_suspend(self) -> None:
        self.stop_preparing()  # a check or a tool needs the cores now

    def on_unmount(self) -> None:
        self.stop_preparing()

    # ------------------------------------------------------------------ judging ahead
    @work(exclusive=True, exit_on_error=False, group="prepare", description="Preparing")
    async def prepare_ahead(self) -> None:
        """Run what a check of this puzzle will need while the player thinks
        (``engine.judge.prepare``); the line under the title says what."""
        app: Any = self.app
        worker = get_current_worker()
        note = self.query_one("#preparing", Static)

        def show(stage: str, fraction: float) -> None:
            if self.is_attached and not worker.is_cancelled:
                note.update(Text(f"{stage} ({fraction:.0%}) so that a check answers at once",
                                 style="dim"))
                note.display = True

        def progress(stage: str, fraction: float) -> None:
            app.call_from_thread(show, stage, fraction)

        try:
            await in_daemon_thread(app.engine.prepare, self.puzzle, progress=progress,
                                   cancelled=lambda: worker.is_cancelled,
                                   name="lineup-prepare")
        finally:
            # a cancelled run leaves the line to the run that replaced it (``exclusive``:
            # the screen's resume starts a new one as its set-up's is still stopping)
            if self.is_attached and not worker.is_cancelled:
                note.display = False

    def stop_preparing(self) -> None:
        self.workers.cancel_group(self, "prepare")

    # ------------------------------------------------------------------ watchers
    def watch_questions(self) -> None:
        if self.is_mounted and self.block is not None:
            self.refresh_all()

    def watch_report(self) -> None:
        if self.is_mounted and self.block is not None:
            self.refresh_all()

    def watch_technical(self) -> None:
        if self.is_mounted and self.block is not None:
            self.refresh_all()

    # ------------------------------------------------------------------ drawing
    def refresh_all(self) -> None:
        app: Any = self.app
        p = self.puzzle
        title = Text()
        title.append(visible(p.title), style="bold")
        title.append(f"  ·  {visible(p.ladder)} {p.order}  ·  "
                     f"{stars_text(app.stars_for(p.id))}  ·  {people(len(self.questions))}")
        self.query_one("#puzzle-title", Static).update(title)
        small = self.short_of_room()  # a small terminal: no blank lines, cards by name
        rounds = Text()
        rounds.append("Rounds" if small else "\nRounds", style="bold")
        rounds.append(" (in order)\n")
        # in layer order: the numbered rounds you play, and the kept layers played for you
        spans = [(span, name) for name, span in self.block.rounds.items()]
        spans += [(span, None) for span in self.block.kept]
        k = 0
        for span, name in sorted(spans, key=lambda x: x[0][0]):
            if name is None:
                rounds.append(f"   {rounds_text(span)} played for you\n", style="dim")
                continue
            k += 1
            rounds.append(f"{k}. ")
            rounds.append(visible(name), style="bold")
            rounds.append(f" {rounds_text(span)}\n")
        rounds.rstrip()
        self.query_one("#rounds", Static).update(rounds)
        cards = Text()
        cards.append("Question cards" if small else "\nQuestion cards", style="bold")
        if small:
            cards.append("\n" + " · ".join(visible(self.card_short(c)) for c in p.cards))
        else:
            for c in p.cards:
                cards.append(f"\n• {visible(self.card_name(c))}")
        self.query_one("#cards", Static).update(cards)
        self.refresh_questions()

    def short_of_room(self) -> bool:
        """True when the panel beside the questions is too low for every card's question on
        its own line(s) under the rounds: the cards are then listed by name, so they still
        fit (``t`` and the add dialog give their questions)."""
        return self.size.height < 30

    def on_resize(self) -> None:
        if self.is_mounted and self.block is not None:
            self.refresh_all()

    def card_name(self, card: str) -> str:
        from engine.puzzle import CARDS

        c = CARDS.get(card)
        if c is None:
            return card
        return c.technical if self.technical else c.plain

    def card_short(self, card: str) -> str:
        from engine.puzzle import CARDS

        c = CARDS.get(card)
        return (c.technical if self.technical else card) if c else card

    def verdict_for(self, q: dict[str, str]) -> Any:
        if self.report is None:
            return None
        for r in self.report.questions:
            if (r.round, r.asker, r.card, r.responder) == key_of(q):
                return r
        return None

    def status(self, q: dict[str, str]) -> str:
        r = self.verdict_for(q)
        given = "given" if q in self.given else ""
        if r is None:
            return given
        text = verdict_mark(r.verdict)
        if self.technical and r.verdict == "confirmed" and r.heads and self.report.solved:
            text += " " + ",".join(h.head for h in r.heads)
        return text

    def describe(self, q: dict[str, str]) -> str:
        who = f" asks {q['responder']}" if q.get("responder") else ""
        return f"in round {q['round']}, {q['asker']}{who}: {self.card_name(q['card'])}"

    def question_row(self, k: int, q: dict[str, str]) -> Text:
        row = Text()
        row.append(f"{k + 1}. ", style="bold")
        row.append(visible(q["round"]), style="bold")
        who = f" → {q['responder']}" if q.get("responder") else ""
        row.append(f"  {visible(q['asker'] + who)}")
        status = self.status(q)
        if status:
            row.append(f"  {status}", style="bold" if status.startswith("✓") else "")
        row.append(f"\n    {visible(self.card_name(q['card']))}", style="dim")
        return row

    def refresh_questions(self) -> None:
        table = self.query_one(QuestionList)
        row = self.want_row if self.want_row is not None else table.highlighted
        table.clear_options()
        table.add_options([Option(self.question_row(k, q), id=f"q-{k}")
                           for k, q in enumerate(self.questions)])
        if self.questions:
            table.highlighted = min(max(row or 0, 0), len(self.questions) - 1)
        self.refresh_arrows()

    def refresh_arrows(self) -> None:
        table = self.query_one(QuestionList)
        arrows = []
        for k, q in enumerate(self.questions):
            asker = self.line.roles.get(q["asker"])
            if asker is None:
                continue
            responder = self.line.roles.get(q.get("responder") or "")
            r = self.verdict_for(q)
            label = f"{q['asker']}: {self.card_short(q['card'])}"
            if q.get("responder"):
                label += f" → {q['responder']}"
            label += f" ({q['round']})"
            arrows.append(Arrow(asker, responder, label, given=q in self.given,
                                selected=k == table.highlighted and table.has_focus,
                                confirmed=bool(r and r.verdict == "confirmed")))
        self.query_one(PeopleLine).arrows = tuple(arrows)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self.refresh_arrows()

    def changed(self, questions: list[dict[str, str]], row: int | None = None) -> None:
        """The circuit changed: forget the old verdicts, redraw at once (the next key may
        already be on its way) and save the work."""
        app: Any = self.app
        self.want_row = row
        self.set_reactive(PuzzleScreen.report, None)
        self.questions = tuple(questions)
        self.refresh_all()
        self.want_row = None
        app.record_progress(self.puzzle.id, circuit=list(self.questions))

    # ------------------------------------------------------------------ placing questions
    def people_options(self, before: int | None = None) -> list[tuple[str, str]]:
        out = []
        for name, pos in sorted(self.line.roles.items(), key=lambda kv: kv[1]):
            if before is not None and pos >= before:
                continue
            word = self.line.tokens[pos].strip() if pos < len(self.line.tokens) else ""
            out.append((name, f"{name:<6} holds {word!r} (person {pos + 1})"))
        if not self.line.roles:  # no positions known: offer the role names as they are
            out = [(name, name) for name in self.puzzle.roles]
        return out

    def question_steps(self, current: dict[str, str]) -> Any:
        """The add/move dialog's steps: round, asker, card, then (for a question) who answers,
        from the people behind the asker."""
        from engine.puzzle import CARDS

        def next_step(answers: dict[str, str]) -> Step | None:
            if "round" not in answers:
                rounds = [(name, f"{name}  {rounds_text(span)}")
                          for name, span in self.block.rounds.items()]
                return Step("round", "In which round?", rounds, current.get("round"),
                            where="1/4")
            if "asker" not in answers:
                return Step("asker", "Who asks?", self.people_options(), current.get("asker"),
                            where="2/4")
            if "card" not in answers:
                cards = [(c, self.card_name(c)) for c in self.puzzle.cards]
                return Step("card", f"What does {answers['asker']} ask?", cards,
                            current.get("card"), where="3/4")
            card = CARDS.get(answers["card"])
            if "responder" not in answers and (card is None or card.responder):
                asker = answers["asker"]
                behind = self.people_options(before=self.line.roles.get(asker))
                note = "" if behind else (f"Nobody stands behind {asker}, so nobody can answer: "
                                          "backspace to choose another asker.")
                return Step("responder", "Who answers?", behind, current.get("responder"),
                            note=note, where="4/4")
            return None

        return next_step

    def pick_question(self, index: int | None = None) -> None:
        """Open the one dialog that walks through round, asker, card and responder. Pushed at
        once (not from a worker), so keys typed right after ``a`` land in it."""
        current = self.questions[index] if index is not None else {}
        intro = ""
        if index is not None:
            intro = f"Moving question {index + 1}: {self.describe(current)}"

        def placed(answers: dict[str, str] | None) -> None:
            if answers:
                self.place(answers, index)

        self.app.push_screen(StepDialog(self.question_steps(current), intro=intro),
                             callback=placed)

    def place(self, answers: dict[str, str], index: int | None) -> None:
        question = {"round": answers["round"], "asker": answers["asker"],
                    "card": answers["card"]}
        if answers.get("responder"):
            question["responder"] = answers["responder"]
        questions = list(self.questions)
        if any(key_of(q) == key_of(question) for k, q in enumerate(questions) if k != index):
            self.notify("That question is already placed.", severity="warning")
            return
        if index is None or index >= len(questions):
            questions.append(question)
            row = len(questions) - 1
        else:
            questions[index] = question
            row = index
        self.changed(questions, row)

    def selected(self) -> int | None:
        table = self.query_one(QuestionList)
        if not self.questions or table.highlighted is None:
            return None
        return min(table.highlighted, len(self.questions) - 1)

    def action_add(self) -> None:
        self.pick_question(None)

    def editable(self) -> int | None:
        """The selected question's index, if the player may change it (given ones are fixed)."""
        k = self.selected()
        if k is not None and self.questions[k] in self.given:
            self.notify("Given questions are fixed.", severity="warning")
            return None
        return k

    def action_move(self) -> None:
        k = self.editable()
        if k is not None:
            self.pick_question(k)

    def action_remove(self) -> None:
        k = self.editable()
        if k is not None:
            questions = list(self.questions)
            del questions[k]
            self.changed(questions)

    def action_technical(self) -> None:
        self.technical = not self.technical

    def action_back(self) -> None:
        self.stop_preparing()
        self.dismiss(None)

    # ------------------------------------------------------------------ checking
    def action_check(self) -> None:
        app: Any = self.app
        app.open_check(self.puzzle, list(self.questions), callback=self.checked)

    def checked(self, report: Any) -> None:
        if report is not None:
            self.report = report
            self.refresh_all()  # the stars in the title may have changed

    # ------------------------------------------------------------------ hints, export, tools
    def action_hint(self) -> None:
        app: Any = self.app
        app.open_hints(self.puzzle, self.hint_state, self.block)

    def action_export(self) -> None:
        self.app.push_screen(AskText("Save the circuit as",
                                     value=circuit_file_name(self.puzzle.id), opened_by="s"),
                             callback=self.export_to)

    def export_to(self, path: str | None) -> None:
        from game.progress import export_circuit

        if not path:
            return
        app: Any = self.app
        try:
            written = export_circuit(self.puzzle.id, list(self.questions),
                                     Path(path).expanduser(), model=app.engine.model)
        except OSError as exc:
            self.notify(f"Could not write {path}: {exc.strerror or exc}", severity="error",
                        markup=False)
            return
        self.notify(f"Saved to {written}. Check it with `lineup check {self.puzzle.id} {path}`.",
                    title="Circuit saved", markup=False)

    def action_attention(self) -> None:
        app: Any = self.app
        app.open_tool("attention", self.line.text, title=self.puzzle.title, puzzle=self.puzzle)

    def action_lens(self) -> None:
        app: Any = self.app
        app.open_tool("lens", self.line.text, title=self.puzzle.title, puzzle=self.puzzle)

    def action_experiment(self, at: str) -> None:
        app: Any = self.app
        app.open_tool("experiment", self.puzzle, at)

    def action_swap_heads(self) -> None:
        self.action_experiment("head")

    def action_swap_query(self) -> None:
        self.action_experiment("query")

    def action_swap_key(self) -> None:
        self.action_experiment("key")

    def action_swap_value(self) -> None:
        self.action_experiment("value")

    def action_silence(self) -> None:
        self.action_experiment("silence")

    def action_swap(self) -> None:
        app: Any = self.app
        app.open_tool("swap", self.puzzle)
