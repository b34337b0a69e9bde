"""A card means what it says (issue 20): each card's claim about positions is checked on the
puzzle's own prompts before any effect, and a question it excludes is never solved.

The position rules need the tokenizer only, so the classes below are checked on every IOI and
induction puzzle for every block whose tokenizer is here; the judge's side (the verdict, and
that nothing is run for it) on the toy, whose checks take seconds."""

from __future__ import annotations

import pytest

from engine.judge.positions import MOVER_CARDS, position_problem
from engine.puzzle import CARDS, Circuit, Question, card_id, load_all, question_problem

LADDERS = ("ioi", "induction")


def _puzzles():
    return [p for p in sorted(load_all(), key=lambda p: p.id) if p.ladder in LADDERS]


def _tokenizer(puzzle, block: str):
    from engine.judge import model_spec_for
    from engine.models import load_tokenizer
    from engine.smollm2 import converted_dir

    if block == "smollm2" and converted_dir() is None:
        return None
    return load_tokenizer(model_spec_for(puzzle, block))


def _excluded(puzzle, block_name: str, ps) -> list[tuple[Question, str]]:
    """Every question the puzzle lets a player place on the block whose card's position rule
    is false on these prompts, with the rule's reason."""
    block = puzzle.models[block_name]
    out = []
    for rnd in block.rounds:
        for asker in puzzle.roles:
            for card in map(card_id, puzzle.cards):
                if not CARDS[card].responder:
                    continue
                for responder in puzzle.roles:
                    q = Question(rnd, asker, card, responder)
                    if responder == asker or question_problem(q, puzzle, block, ps.roles):
                        continue
                    why = position_problem(card, asker, responder, ps)
                    if why is not None:
                        out.append((q, why))
    return out


@pytest.mark.parametrize("puzzle", _puzzles(), ids=lambda p: p.id)
def test_every_reference_and_given_question_keeps_its_cards_position_rule(puzzle):
    for block_name, block in puzzle.models.items():
        tok = _tokenizer(puzzle, block_name)
        if tok is None:
            continue
        ps = puzzle.build_prompts(tok, "play")
        for q in [*block.solution, *block.given]:
            if q.responder is not None:
                why = position_problem(card_id(q.card), q.asker, q.responder, ps)
                assert why is None, (block_name, q, why)


def test_the_rules_in_the_lines_words():
    """The reasons issue 20 names, word for word where it gave them."""
    from engine.models import load_tokenizer

    ioi = next(p for p in load_all() if p.id == "ioi-whole-circuit")
    ps = ioi.build_prompts(load_tokenizer("gpt2"), "play")
    assert position_problem("previous-token", "END", "S2", ps) == \
        "S2 stands four people behind END, not right behind"
    assert position_problem("previous-token", "S1+1", "S1", ps) is None
    assert "does not stand right after an earlier copy of END's word" in \
        position_problem("induction", "END", "IO", ps)
    assert "does not stand right after" in position_problem("induction", "END", "S2", ps)
    assert position_problem("induction", "S2", "S1+1", ps) is None
    assert "does not hold S2's own word" in position_problem("duplicate-token", "S2", "IO", ps)
    assert position_problem("duplicate-token", "S2", "S1", ps) is None
    assert "S1+1's word is not one the guess is about" in \
        position_problem("name-mover", "END", "S1+1", ps)
    for role in ("IO", "S1", "S2"):
        assert position_problem("name-mover", "END", role, ps) is None
        assert position_problem("negative-name-mover", "END", role, ps) is None
    assert "they ask at END" in position_problem("s-inhibition", "S2", "S1", ps)
    assert position_problem("s-inhibition", "END", "S2", ps) is None
    assert "does not reach it directly" in position_problem("name-mover", "S2", "S1", ps)


@pytest.mark.parametrize("puzzle", _puzzles(), ids=lambda p: p.id)
def test_each_tokenizer_excludes_the_same_questions(puzzle):
    """The rules are about the line, not the tokenizer: the excluded class is the same on
    every block's tokenizer (so the toy's judging below stands for each model)."""
    classes = set()
    for block_name in puzzle.models:
        tok = _tokenizer(puzzle, block_name)
        if tok is None:
            continue
        ps = puzzle.build_prompts(tok, "play")
        classes.add(frozenset((q.asker, q.card, q.responder)
                              for q, _ in _excluded(puzzle, block_name, ps)))
    assert len(classes) == 1
    excluded = classes.pop()
    cards = {c for _, c, _ in excluded}
    # every position card the puzzle offers excludes someone
    assert cards >= {card_id(c) for c in puzzle.cards} & (
        {"previous-token", "duplicate-token", "induction", *MOVER_CARDS}
        - ({"duplicate-token"} if puzzle.ladder == "induction" else set()))


@pytest.mark.parametrize("puzzle", [p for p in _puzzles() if "toy" in p.models],
                         ids=lambda p: p.id)
def test_every_excluded_question_is_no_such_question_and_never_solves(puzzle, lineup_home):
    """Every card asked at every role pair its position rule excludes: no-such-question with
    the rule's reason, judged without a single patched run, adds no head, and the reference
    padded with all of them is not solved."""
    from engine.interventions.runner import RUNNER
    from engine.judge import grade, load_for
    from engine.judge.questions import _Judge
    from engine.judge.runs import _load_split
    from engine.judge.scores import _head_scores
    from engine.judge.task import task_check

    lm = load_for(puzzle, "toy")
    block = puzzle.block(lm.block)
    reference = grade(puzzle, Circuit(puzzle.id, list(block.solution)), lm)
    assert reference.solved
    ps = puzzle.build_prompts(lm.tokenizer, "play")
    excluded = _excluded(puzzle, "toy", ps)
    assert excluded
    play, _ = _load_split(lm, ps, list(puzzle.roles), play=True, cancelled=None)
    judge = _Judge(puzzle, block, lm, play, _head_scores(lm), list(puzzle.roles), ps=ps)
    task = task_check(play, puzzle)
    runs = dict(RUNNER)
    for q, why in excluded:
        rep, heads = judge.judge_question(q, False, task)
        assert (rep.verdict, heads) == ("no-such-question", []), (q, rep.message)
        assert why in rep.message and f"{q.asker} cannot ask {q.responder} this" in rep.message
    assert runs == RUNNER, "a position rule needs no run"
    padded = grade(puzzle, Circuit(puzzle.id, [*block.solution, *(q for q, _ in excluded)]),
                   lm)
    assert not padded.solved and padded.stars == 0


def test_q_path_receivers(lineup_home):
    """``Edit.q_receivers``: naming every later head is the plain q_path edit; naming a head
    of an earlier layer than the sender leaves the run as the target's."""
    import torch

    from engine.interventions import Edit
    from engine.interventions.runner import run_edits
    from engine.judge import load_for
    from engine.judge.runs import _load_split

    puzzle = next(p for p in load_all() if p.id == "ioi-whole-circuit")
    lm = load_for(puzzle, "toy")
    ps = puzzle.build_prompts(lm.tokenizer, "play")
    split, _ = _load_split(lm, ps, list(puzzle.roles), play=True, cancelled=None)
    later = [(layer, h) for layer in range(2, lm.n_layers) for h in range(lm.n_heads)]
    sender = [(1, 0, "S2"), (2, 1, "END")]
    values = run_edits(lm, split.state(), [
        Edit.of(), Edit.of(q_path=sender), Edit.of(q_path=sender, q_receivers=later),
        Edit.of(q_path=sender, q_receivers=[(0, 0)])])
    assert not torch.allclose(values[1], values[0])
    assert torch.allclose(values[2], values[1], atol=1e-5)
    assert torch.allclose(values[3], values[0], atol=1e-5)
    with pytest.raises(Exception, match="receivers"):
        Edit.of(q_receivers=[(0, 0)])


def test_a_judge_widens_to_twice_then_four_times_the_prompts(lineup_home):
    """``_Judge.widened``: the same puzzle's seed with its count doubled, then doubled again
    (``WIDEN_MAX``), then no further; each wider judge is made once."""
    from engine.judge import load_for
    from engine.judge.questions import _Judge
    from engine.judge.runs import _load_split
    from engine.judge.scores import _head_scores
    from engine.judge.thresholds import WIDEN_MAX

    puzzle = next(p for p in load_all() if p.id == "ioi-s-inhibition")
    lm = load_for(puzzle, "toy")
    ps = puzzle.build_prompts(lm.tokenizer, "play")
    play, _ = _load_split(lm, ps, list(puzzle.roles), play=True, cancelled=None)
    judge = _Judge(puzzle, puzzle.block("toy"), lm, play, _head_scores(lm), list(puzzle.roles))
    two = judge.widened()
    assert two is not None and two.play.n == 2 * play.n and judge.widened() is two
    assert two.ps.texts[: play.n] == ps.texts  # the same sentences, and more
    four = two.widened()
    assert four is not None and four.play.n == WIDEN_MAX * play.n
    assert four.widened() is None
