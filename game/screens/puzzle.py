"""The puzzle screen: the story, the line of people, the rounds and cards, the placed questions."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from game.engine_bridge import line_of
from game.widgets.people import Arrow, PeopleLine

VERDICT_MARK = {
    "confirmed": "✓ confirmed",
    "wrong-responder": "✗ wrong responder",
    "wrong-round": "✗ wrong round",
    "no-such-question": "✗ nobody asks this",
    "not-needed": "~ not needed",
    "invalid": "✗ invalid",
}


def reflow(text: str) -> str:
    """Join the lines of each paragraph, so the story wraps to the panel's width."""
    paragraphs = [" ".join(part.split()) for part in text.strip().split("\n\n")]
    return "\n\n".join(p for p in paragraphs if p)


def key_of(q: dict[str, str]) -> tuple[str, str, str, str | None]:
    return (q["round"], q["asker"], q["card"], q.get("responder"))


class PuzzleScreen(Screen[None]):
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
    ]

    def __init__(self, puzzle: Any, questions: list[dict[str, str]] | None = None) -> None:
        super().__init__()
        self.puzzle = puzzle
        self.questions: list[dict[str, str]] = []
        self.initial = questions
        self.technical = False
        self.report: Any = None
        self.hint_state = {"shown": 0, "decoded": False}

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Static(id="puzzle-title")
        yield PeopleLine(id="line")
        with Horizontal(id="puzzle-lower"):
            yield DataTable(id="questions", cursor_type="row", zebra_stripes=False)
            with VerticalScroll(id="puzzle-info"):
                yield Static(id="story")
                yield Static(id="rounds")
                yield Static(id="cards")
        yield Footer()

    def on_mount(self) -> None:
        app: Any = self.app
        p = self.puzzle
        self.block = p.models[app.engine.block]
        self.given = [q.as_dict() for q in self.block.given]
        saved = self.initial if self.initial is not None else app.progress.circuit(p.id)
        given_keys = {key_of(q) for q in self.given}
        own = [q for q in saved if key_of(q) not in given_keys]
        self.questions = [dict(q) for q in self.given] + own
        try:
            self.line = line_of(p)
        except Exception:  # a puzzle whose prompts cannot be drawn still plays
            from game.engine_bridge import LineView

            self.line = LineView("", list(p.roles), {r: k for k, r in enumerate(p.roles)}, None)
        self.query_one(PeopleLine).line = self.line
        table = self.query_one(DataTable)
        table.add_columns("round", "asker", "question", "answers", "judge says")
        self.query_one("#story", Static).update(
            (f"[b]Goal:[/b] {p.goal}\n\n" if p.goal else "") + reflow(p.story))
        self.refresh_all()
        table.focus()
        # A circuit opened from a file is not saved over the player's own circuit for this
        # puzzle until they edit it or check it (``changed``, ``CheckScreen``).

    def refresh_all(self) -> None:
        app: Any = self.app
        p = self.puzzle
        stars = app.progress.stars(p.id)
        self.query_one("#puzzle-title", Static).update(
            f"[b]{p.title}[/b]  ·  {p.ladder} {p.order}  ·  {'★' * stars}{'☆' * (3 - stars)}"
            f"  ·  {len(self.questions)} question{'s' if len(self.questions) != 1 else ''}")
        rounds = "  ".join(
            f"[b]{name}[/b] {self._layers(span)}" for name, span in self.block.rounds.items())
        self.query_one("#rounds", Static).update(f"\n[b]Rounds[/b] (in order)\n{rounds}")
        self.query_one("#cards", Static).update("\n[b]Question cards[/b]\n" + "\n".join(
            f"• {self.card_name(c)}" for c in p.cards))
        self.refresh_questions()

    @staticmethod
    def _layers(span: tuple[int, int]) -> str:
        a, b = span
        return f"(layer {a})" if a == b else f"(layers {a}-{b})"

    def card_name(self, card: str) -> str:
        from engine.puzzle import CARDS

        c = CARDS.get(card)
        if c is None:
            return card
        return c.technical if self.technical else c.plain

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
        text = VERDICT_MARK.get(r.verdict, r.verdict)
        if self.technical and r.verdict == "confirmed" and r.heads:
            text += " " + ",".join(h.head for h in r.heads)
        return text

    def refresh_questions(self) -> None:
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        for q in self.questions:
            responder = q.get("responder") or "-"
            table.add_row(q["round"], q["asker"], self.card_name(q["card"]), responder,
                          self.status(q))
        if self.questions:
            table.move_cursor(row=min(max(row, 0), len(self.questions) - 1))
        self.refresh_arrows()

    def refresh_arrows(self) -> None:
        table = self.query_one(DataTable)
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
                                selected=k == table.cursor_row and table.has_focus,
                                confirmed=bool(r and r.verdict == "confirmed")))
        self.query_one(PeopleLine).arrows = tuple(arrows)

    def card_short(self, card: str) -> str:
        from engine.puzzle import CARDS

        c = CARDS.get(card)
        return (c.technical if self.technical else card) if c else card

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.refresh_arrows()

    def changed(self) -> None:
        """The circuit changed: forget the old verdicts and save the work at once."""
        app: Any = self.app
        self.report = None
        try:
            app.progress.record(self.puzzle.id, circuit=self.questions)
        except OSError as exc:
            self.notify(f"Could not save your circuit: {exc}", severity="error")
        self.refresh_all()

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

    @work(exclusive=True, group="picker")
    async def pick_question(self, index: int | None = None) -> None:
        from engine.puzzle import CARDS
        from game.screens.modals import Pick

        app: Any = self.app
        current = self.questions[index] if index is not None else {}
        rounds = [(name, f"{name}  {self._layers(span)}")
                  for name, span in self.block.rounds.items()]
        round_ = await app.push_screen_wait(
            Pick("In which round?", rounds, current=current.get("round"), step="1/4"))
        if round_ is None:
            return
        asker = await app.push_screen_wait(
            Pick("Who asks?", self.people_options(), current=current.get("asker"), step="2/4"))
        if asker is None:
            return
        cards = [(c, self.card_name(c)) for c in self.puzzle.cards]
        card = await app.push_screen_wait(
            Pick(f"What does {asker} ask?", cards, current=current.get("card"), step="3/4"))
        if card is None:
            return
        question = {"round": round_, "asker": asker, "card": card}
        if CARDS.get(card) is None or CARDS[card].responder:
            behind = self.people_options(before=self.line.roles.get(asker))
            if not behind:
                self.notify(f"Nobody stands behind {asker}, so nobody can answer.",
                            severity="warning")
                return
            responder = await app.push_screen_wait(
                Pick("Who answers?", behind, current=current.get("responder"), step="4/4"))
            if responder is None:
                return
            question["responder"] = responder
        if any(key_of(q) == key_of(question) for k, q in enumerate(self.questions)
               if k != index):
            self.notify("That question is already placed.", severity="warning")
            return
        if index is None:
            self.questions.append(question)
            row = len(self.questions) - 1
        else:
            self.questions[index] = question
            row = index
        self.changed()
        self.query_one(DataTable).move_cursor(row=row)

    def selected(self) -> int | None:
        table = self.query_one(DataTable)
        if not self.questions or table.cursor_row < 0:
            return None
        return min(table.cursor_row, len(self.questions) - 1)

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
            del self.questions[k]
            self.changed()

    def action_technical(self) -> None:
        self.technical = not self.technical
        self.refresh_all()

    def action_back(self) -> None:
        self.app.pop_screen()

    # ------------------------------------------------------------------ checking
    def action_check(self) -> None:
        from game.screens.check import CheckScreen

        self.app.push_screen(CheckScreen(self.puzzle, list(self.questions)),
                             callback=self.checked)

    def checked(self, report: Any) -> None:
        if report is None:
            return
        self.report = report
        self.refresh_all()

    # ------------------------------------------------------------------ hints, export, tools
    def action_hint(self) -> None:
        from game.screens.hints import HintScreen

        self.app.push_screen(HintScreen(self.puzzle, self.hint_state, self.block))

    def action_export(self) -> None:
        from game.screens.modals import AskText

        self.app.push_screen(AskText("Save the circuit as", value=f"{self.puzzle.id}.yaml"),
                             callback=self.export_to)

    def export_to(self, path: str | None) -> None:
        from game.progress import export_circuit

        if not path:
            return
        app: Any = self.app
        try:
            written = export_circuit(self.puzzle.id, self.questions, Path(path).expanduser(),
                                     model=app.engine.model)
        except OSError as exc:
            self.notify(f"Could not write {path}: {exc.strerror or exc}", severity="error")
            return
        self.notify(f"Saved to {written}. Check it with `lineup check {self.puzzle.id} {path}`.",
                    title="Circuit saved")

    def action_attention(self) -> None:
        from game.screens.tools import AttentionScreen

        self.app.push_screen(AttentionScreen(self.line.text, title=self.puzzle.title,
                                             puzzle=self.puzzle))

    def action_lens(self) -> None:
        from game.screens.tools import LensScreen

        self.app.push_screen(LensScreen(self.line.text, title=self.puzzle.title,
                                        puzzle=self.puzzle))

    def action_swap(self) -> None:
        from game.screens.tools import SwapScreen

        self.app.push_screen(SwapScreen(self.puzzle))
