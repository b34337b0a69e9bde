"""The shipped puzzles: every one validates, loads in ladder order, and builds prompts whose
roles, corrupted twins and answers line up."""

from __future__ import annotations

import codecs

import pytest

from engine.authoring import validate_paths
from engine.models import load_tokenizer
from engine.puzzle import LADDERS, find_puzzle, load_all, puzzle_files
from engine.puzzle.parts import fill_answer, is_answer_text
from engine.puzzle.targets import toy_config

PUZZLES = load_all()
IDS = [p.id for p in PUZZLES]


def _toy_for(puzzle):
    block = puzzle.models.get("toy")
    return (block.toy or "toy") if block else None


@pytest.fixture(scope="module")
def gpt2_tok():
    return load_tokenizer("gpt2")


def test_every_shipped_puzzle_validates_for_gpt2() -> None:
    notes: list[str] = []
    problems = validate_paths(puzzle_files(), model="gpt2", notes=notes)
    assert not problems, "\n".join(map(str, problems))


def test_every_shipped_puzzle_validates_for_the_toy() -> None:
    problems = validate_paths(puzzle_files(), model="toy")
    assert not problems, "\n".join(map(str, problems))


def test_every_shipped_puzzle_validates_against_its_own_models() -> None:
    problems = validate_paths(puzzle_files())
    assert not problems, "\n".join(map(str, problems))


def test_ladders_and_content() -> None:
    by_ladder = {ladder: [p for p in PUZZLES if p.ladder == ladder] for ladder in LADDERS}
    assert len(by_ladder["induction"]) >= 3
    assert len(by_ladder["ioi"]) >= 4
    assert len(by_ladder["beyond"]) >= 1
    assert [p.ladder for p in PUZZLES] == sorted((p.ladder for p in PUZZLES), key=LADDERS.index)
    for ladder, puzzles in by_ladder.items():
        assert [p.order for p in puzzles] == list(range(1, len(puzzles) + 1)), ladder
    assert len(set(IDS)) == len(IDS)
    for p in PUZZLES:
        # GPT-2 plays every puzzle but the ladders found on SmolLM2 (pronouns, docstrings)
        assert "gpt2" in p.models or "smollm2" in p.models, p.id
        assert len(p.hints) >= 2, p.id
        for hint in p.hints_plain:  # decoding gives English (so the file holds rot13)
            assert codecs.encode(hint, "rot13") in p.hints
        assert p.story.strip() and p.goal.strip()
    locked_on_toy = [p.id for p in PUZZLES if "toy" not in p.models]
    assert "beyond-greater-than" in locked_on_toy
    assert len(locked_on_toy) < len(PUZZLES) / 2


def test_gpt2_solutions_follow_the_published_heads() -> None:
    """Rounds hold the layers of the heads the papers name (mechinterp-facts.md)."""
    published = {  # card -> (asker, responder, layers that hold such heads)
        "name-mover": ("END", "IO", {9, 10}),
        "s-inhibition": ("END", "S2", {7, 8}),
        "induction": ("S2", "S1+1", {5, 6}),
        "duplicate-token": ("S2", "S1", {0, 3}),
        "previous-token": ("S1+1", "S1", {2, 4}),
        "negative-name-mover": ("END", "IO", {10, 11}),
        "backup-name-mover": ("END", "IO", {9, 10, 11}),
    }
    for p in PUZZLES:
        if p.ladder != "ioi":
            continue
        block = p.models["gpt2"]
        for q in block.solution:
            asker, responder, layers = published[q.card]
            assert (q.asker, q.responder) == (asker, responder), (p.id, q)
            assert layers & set(block.layers(q.round)), (p.id, q)
    for p in PUZZLES:
        if p.ladder == "induction":
            block = p.models["gpt2"]
            rounds = {q.card: set(block.layers(q.round)) for q in block.solution}
            assert {2, 4} <= rounds["previous-token"]  # 2.2 and 4.11 in one round
            if "induction" in rounds:  # puzzle 1 keeps the induction layers
                assert {5, 6} <= rounds["induction"]  # 5.5, 6.9
            else:
                assert all(block.is_kept(layer) for layer in (5, 6))


@pytest.mark.parametrize("pid", IDS)
def test_prompts_line_up_for_gpt2(pid: str, gpt2_tok) -> None:
    _check_prompts(find_puzzle(pid), gpt2_tok)


@pytest.mark.parametrize("pid", IDS)
def test_prompts_line_up_for_the_toy(pid: str) -> None:
    puzzle = find_puzzle(pid)
    toy = _toy_for(puzzle)
    if toy is None:
        pytest.skip(f"{pid} is locked on the toy")
    assert toy_config(toy) is not None, f"no bundled toy model {toy!r}"
    _check_prompts(puzzle, load_tokenizer(toy))


def _check_prompts(puzzle, tok) -> None:
    play = puzzle.build_prompts(tok, "play")
    held = puzzle.build_prompts(tok, "heldout")
    assert len(play) == puzzle.prompts.count and len(held) == puzzle.prompts.heldout_count
    assert play.length is not None and held.length == play.length  # roles line up
    # no held-out prompt repeats a play prompt
    assert not set(play.texts) & set(held.texts)
    # seeded: a second build is identical
    again = puzzle.build_prompts(tok, "play")
    assert again.texts == play.texts and again.corrupted == play.corrupted
    for ps in (play, held):
        for i in range(len(ps)):
            # the ids are what the model's own tokenizer gives (LoadedModel.tokenize)
            assert ps.token_ids[i] == tok.encode(ps.texts[i], add_special_tokens=False)
            assert ps.corrupted_ids[i] == tok.encode(ps.corrupted[i], add_special_tokens=False)
            assert len(ps.corrupted_ids[i]) == len(ps.token_ids[i])
            assert ps.texts[i] != ps.corrupted[i]
            for name, positions in ps.roles.items():
                assert 0 <= positions[i] < len(ps.token_ids[i]), name
            assert ps.correct[i], "an answer to measure"
        m = puzzle.metric
        for i, ids in enumerate(ps.token_ids):
            # the guess is read at the last token (`lineup patch` and the game need it there)
            assert ps.at[i] == len(ids) - 1, (m.at, ps.texts[i])
            if m.kind == "greater_than":
                assert not set(ps.correct[i]) & set(ps.wrong[i])
                continue
            # the answers are the tokens the metric's roles hold (or its answer texts, filled
            # from the prompt's own words: docs/authoring.md), and they differ
            for got, answer in ((ps.correct[i], m.correct), (ps.wrong[i], m.wrong)):
                if answer is None:
                    assert got == []
                elif is_answer_text(answer):
                    assert got == tok.encode(fill_answer(answer, ps.fills[i]),
                                             add_special_tokens=False)
                else:
                    assert got == [ids[ps.roles[answer][i]]]
            assert ps.correct[i] != ps.wrong[i], ps.texts[i]
    # the role's token is the word that was filled in
    for i, fills in enumerate(play.fills):
        for role, spec in puzzle.roles.items():
            if spec.kind == "occurrence":
                word = play.tokens[i][play.roles[role][i]].strip()
                assert word == fills[spec.fill], (role, play.texts[i])


def test_ioi_prompts_and_the_abc_corruption(gpt2_tok) -> None:
    ps = find_puzzle("ioi-whole-circuit").build_prompts(gpt2_tok)
    templates = set()
    for i, fills in enumerate(ps.fills):
        toks = ps.tokens[i]
        r = {name: pos[i] for name, pos in ps.roles.items()}
        assert toks[r["IO"]] == " " + fills["IO"]
        assert toks[r["S1"]] == toks[r["S2"]] == " " + fills["S"]
        assert r["S1+1"] == r["S1"] + 1 and r["END"] == len(toks) - 1 and toks[-1] == " to"
        assert fills["IO"] != fills["S"]
        assert ps.correct[i] == [ps.token_ids[i][r["IO"]]]
        assert ps.wrong[i] == [ps.token_ids[i][r["S1"]]]
        # ABC: three names, all different, none from the clean prompt
        c = ps.corrupted_ids[i]
        abc = {c[r["IO"]], c[r["S1"]], c[r["S2"]]}
        assert len(abc) == 3
        assert not abc & {ps.token_ids[i][r["IO"]], ps.token_ids[i][r["S1"]]}
        templates.add(ps.templates[i])
    assert templates == {0, 1, 2, 3}  # balanced over ABBA and BABA templates


def test_induction_corruption_scrambles_only_the_first_half(gpt2_tok) -> None:
    ps = find_puzzle("induction-two-step").build_prompts(gpt2_tok)
    for i in range(len(ps)):
        a2 = ps.roles["A2"][i]
        half = len(ps.token_ids[i]) - 5
        clean, corrupt = ps.token_ids[i], ps.corrupted_ids[i]
        assert clean[half:] == corrupt[half:]  # the repeat is untouched
        opener = 1 if clean[0] == corrupt[0] else 0  # a fixed first token (".") may stay
        assert not set(clean[opener:half]) & set(corrupt[opener:half])  # the rest is all new
        assert clean[a2] == clean[ps.roles["A"][i]]
        assert ps.correct[i] == [clean[ps.roles["B"][i]]] and ps.wrong[i] == []


def test_greater_than_answers(gpt2_tok) -> None:
    ps = find_puzzle("beyond-greater-than").build_prompts(gpt2_tok)
    for i, fills in enumerate(ps.fills):
        yy = int(fills["YY"])
        assert len(ps.correct[i]) == 99 - yy and len(ps.wrong[i]) == yy + 1
        assert ps.tokens[i][ps.roles["YY"][i]] == fills["YY"]
        assert not set(ps.correct[i]) & set(ps.wrong[i])


def test_toy_solutions_use_the_planted_heads() -> None:
    """Each toy reference question has a planted head of its kind in its round's layers
    (engine/assets/toys/<toy>/lineup.json), and no planted head of the circuit is left out."""
    import json

    from engine.paths import TOYS_DIR

    job_of_card = {"previous-token": "previous-token", "induction": "induction",
                   "duplicate-token": "duplicate-token", "s-inhibition": "inhibition",
                   "name-mover": "name-mover"}
    for p in PUZZLES:
        block = p.models.get("toy")
        if block is None:
            continue
        card_file = TOYS_DIR / (block.toy or "toy") / "lineup.json"
        assert card_file.is_file(), f"no card {card_file}"
        heads = json.loads(card_file.read_text())["heads"]
        planted = {name: h["job"] for name, h in heads.items() if h.get("planted")}
        used = set()
        for q in block.solution:
            layers = set(block.layers(q.round))
            match = [name for name, job in planted.items()
                     if job in (q.card, job_of_card[q.card])
                     and int(name.split(".")[0]) in layers]
            assert match, f"{p.id}: no planted {q.card} head in round {q.round} ({layers})"
            used.update(match)
        circuit = "ioi" if p.ladder == "ioi" else "induction"
        wanted = {name for name, h in heads.items()  # kept layers play as usual
                  if h.get("planted") and h.get("circuit") == circuit
                  and not block.is_kept(int(name.split(".")[0]))}
        assert wanted <= used, f"{p.id}: the toy circuit also needs {wanted - used}"
