"""What the player reads: each model block's story, goal and hints (issue 24).

A block may carry its own text, which replaces the puzzle's when that block is played
(``Puzzle.text_for``); the game shows that text and no other. No block's text names another
model, and no story or goal names a card the player still has to find."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from textual.widgets import Static

from engine.cards import CARDS
from engine.puzzle import load_all, load_puzzle
from engine.puzzle.checks import check_puzzle
from engine.puzzle.reader import read_yaml
from engine.puzzle.shape import parse_puzzle
from game.app import LineupApp
from game.screens.hints import HintScreen
from tests.fake_engine import FakeEngine

PUZZLES = load_all()

# How each model is named in text; a block may name its own model, never another one.
MODEL_NAMES = {
    "gpt2": r"gpt-?2",
    "smollm2": r"smol\s*lm|llama",
    "toy": r"\btoys?\b",
}


def shown_text(puzzle, block: str) -> list[tuple[str, str]]:
    """Every text the player of ``block`` can read: (what, text), hints decoded."""
    text = puzzle.text_for(block)
    return ([("story", text.story), ("goal", text.goal)]
            + [(f"hint {k + 1}", h) for k, h in enumerate(text.hints_plain)])


def other_model(block: str, text: str) -> str | None:
    """The first name of a model other than ``block``'s in ``text``, or None."""
    for name, pattern in MODEL_NAMES.items():
        found = re.search(pattern, text, re.IGNORECASE)
        if name != block and found:
            return found.group(0)
    return None


def test_the_model_name_patterns_catch_what_they_should() -> None:
    assert other_model("smollm2", "Real GPT-2 is messier") == "GPT-2"
    assert other_model("gpt2", "On SmolLM2 two sceptics") == "SmolLM"
    assert other_model("gpt2", "the toy models know nothing") == "toy"
    assert other_model("toy", "a Llama-family model") == "Llama"
    assert other_model("gpt2", "Real GPT-2 is messier") is None  # its own name is fine
    assert other_model("toy", "a story about tokens") is None


@pytest.mark.parametrize("puzzle", PUZZLES, ids=lambda p: p.id)
def test_no_block_text_names_another_model(puzzle) -> None:
    for block in puzzle.models:
        for what, text in shown_text(puzzle, block):
            name = other_model(block, text)
            assert name is None, f"{puzzle.id} on {block}: {what} names {name!r}: {text!r}"


def card_patterns(card: str) -> list[str]:
    """The ways a story could name a card: its id (hyphen or space), its technical name, and
    the question it asks in the player's words (without the bracketed aside)."""
    c = CARDS[card]
    plain = re.sub(r"\s*\(.*?\)", "", c.plain).strip()
    return [re.escape(card).replace(r"\-", r"[-\s]"),
            re.escape(c.technical.split(" / ")[0]).replace(r"\-", r"[-\s]"),
            re.escape(plain)]


def named(pattern: str, text: str) -> re.Match[str] | None:
    """``pattern`` in ``text`` as whole words, any case."""
    return re.search(rf"(?<!\w){pattern}(?!\w)", text, re.IGNORECASE)


@pytest.mark.parametrize("puzzle", PUZZLES, ids=lambda p: p.id)
def test_no_story_or_goal_names_a_card_the_player_must_find(puzzle) -> None:
    """Stories pose the problem; the cards of the answer come from the hints. (Cards of
    questions placed for the player may be named: they are on screen anyway.)"""
    for name, block in puzzle.models.items():
        text = puzzle.text_for(block)
        for card in {q.card for q in block.solution if q not in block.given}:
            for pattern in card_patterns(card):
                for what, words in (("story", text.story), ("goal", text.goal)):
                    found = named(pattern, words)
                    assert found is None, (f"{puzzle.id} on {name}: the {what} names "
                                           f"{found.group(0)!r}, a card of the answer")


def test_the_giveaway_check_catches_a_card_in_a_story() -> None:
    stories = ["B asks the previous token card.", "Find the Previous-token head!",
               "B shouts: who is standing right behind me?"]
    for pattern, story in zip(card_patterns("previous-token"), stories, strict=True):
        assert named(pattern, story), pattern


TWO_BLOCKS = textwrap.dedent("""\
    id: two-texts
    title: Two texts
    ladder: ioi
    order: 9
    goal: the puzzle's goal
    story: the puzzle's story
    prompts:
      templates: ["When {IO} and {S} went to the {PLACE}, {S} gave a {OBJECT} to"]
      fill: {IO: names, S: names, PLACE: places_one_token, OBJECT: objects}
    roles: {IO: "{IO}", S1: "first {S}", S2: "second {S}", END: last}
    metric: {logit_diff: {correct: IO, wrong: S1}, at: END}
    corrupt: {resample: [IO, S1, S2]}
    cards: [name-mover]
    hints: ["Gur chmmyr'f svefg uvag", "Gur chmmyr'f frpbaq uvag"]
    models:
      gpt2:
        rounds: {late: [9, 11]}
        kept: [0, 8]
        solution: [{round: late, asker: END, card: name-mover, responder: IO}]
      toy:
        rounds: {late: [3, 3]}
        kept: [0, 2]
        solution: [{round: late, asker: END, card: name-mover, responder: IO}]
        story: the toy's own story
        hints: [HINTS]
    """)


def write(tmp_path: Path, hints: str = '"Gur gbl\'f bja uvag", "N frpbaq bar"') -> Path:
    path = tmp_path / "two.yaml"
    path.write_text(TWO_BLOCKS.replace("HINTS", hints), encoding="utf-8")
    return path


def test_a_blocks_text_replaces_the_puzzles_field_by_field(tmp_path) -> None:
    puzzle = load_puzzle(write(tmp_path))
    toy = puzzle.text_for("toy")
    assert toy.story == "the toy's own story"
    assert toy.goal == "the puzzle's goal"  # the block gives no goal: the puzzle's
    assert toy.hints_plain == ["The toy's own hint", "A second one"]
    assert toy.hint(0) == "The toy's own hint"
    assert puzzle.text_for(puzzle.block("toy")) == toy  # a block or its name
    gpt2 = puzzle.text_for("gpt2")
    assert (gpt2.story, gpt2.goal) == ("the puzzle's story", "the puzzle's goal")
    assert gpt2.hints_plain == ["The puzzle's first hint", "The puzzle's second hint"]
    assert puzzle.text_for(None).story == "the puzzle's story"


def test_a_blocks_hints_are_checked_like_the_puzzles(tmp_path) -> None:
    path = write(tmp_path, hints='"The toy needs no rot13, I think", "N frpbaq bar"')
    puzzle, problems = parse_puzzle(read_yaml(path))
    assert not problems
    messages = [str(p) for p in check_puzzle(puzzle, read_yaml(path))]
    assert any("hint 1 reads as plain English" in m and ":25:" in m for m in messages), \
        messages
    path = write(tmp_path, hints='"Bayl bar"')
    messages = [str(p) for p in check_puzzle(load_puzzle_anyway(path), read_yaml(path))]
    assert any("give at least 2 hints (there are 1)" in m for m in messages), messages


def load_puzzle_anyway(path: Path):
    puzzle, _ = parse_puzzle(read_yaml(path))
    return puzzle


def test_a_misspelt_block_text_key_gets_a_did_you_mean(tmp_path) -> None:
    path = write(tmp_path)
    path.write_text(path.read_text().replace("    story: the toy's", "    stroy: the toy's"))
    _, problems = parse_puzzle(read_yaml(path))
    assert any("unknown key 'stroy'" in p.message and "did you mean 'story'" in p.message
               for p in problems), problems


def story_panel(app) -> str:
    return str(app.screen.query_one("#story", Static).content)


async def test_the_game_shows_the_blocks_own_story_goal_and_hints() -> None:
    """IOI 5 has a story and hints per model: the SmolLM2 player reads SmolLM2's, the GPT-2
    player GPT-2's; IOI 4's toy block has its own goal (nothing is placed on the toy)."""
    from engine.puzzle import find_puzzle

    puzzle = find_puzzle("ioi-backup-and-negative")
    for block in ("smollm2", "gpt2"):
        text = puzzle.text_for(block)
        app = LineupApp(engine=FakeEngine(block), puzzle=puzzle.id)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            shown = story_panel(app)
            assert " ".join(text.story.split()[:12]) in " ".join(shown.split())
            assert text.goal in " ".join(shown.split())
            await pilot.press("h")
            await pilot.pause()
            assert isinstance(app.screen, HintScreen)
            body = str(app.screen.query_one("#hint-body", Static).content)
            assert text.hints[0] in body
            await pilot.press("h")
            await pilot.pause()
            body = str(app.screen.query_one("#hint-body", Static).content)
            assert text.hint(0) in body
            assert f"({len(text.hints) - 1} hints left)" in \
                str(app.screen.query_one("#hint-keys", Static).content)
    assert puzzle.text_for("smollm2").hints != puzzle.text_for("gpt2").hints

    whole = find_puzzle("ioi-whole-circuit")
    assert whole.text_for("toy").goal != whole.goal
    app = LineupApp(engine=FakeEngine("toy"), puzzle=whole.id)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        shown = " ".join(story_panel(app).split())
        assert whole.text_for("toy").goal in shown and whole.goal not in shown
