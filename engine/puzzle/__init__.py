"""Puzzles and circuits: load them, build their prompts, find each role in each prompt.

This is the API the judge, the TUI and the CLI use; callers import from ``engine.puzzle``.
The package is the puzzle format and nothing above it: it never imports the judge, the model
runner or torch. Inside, each module imports only those below it:

- ``parts``, ``suggest``: the dataclasses a file is made of, and "did you mean";
- ``selectors``, ``prompts``: the role grammar; templates, sampling and ``PromptSet``;
- ``files``: ``Puzzle`` and ``Circuit``; ``rules``: the one question-validity rule;
- ``reader``, ``fields``, ``shape``: safe YAML with positions, typed fields, the file shape;
- ``targets``, ``checks``, ``tokens``: models known without weights, the tokenizer-free
  meaning checks, the checks that need a tokenizer;
- ``catalogue``: the shipped puzzles, finding and loading files.

``engine.validate`` (files and folders, as ``lineup validate`` checks them) and
``engine.authoring`` (grading reference solutions with the judge) sit above the judge.

Loading
    ``load_puzzle(path) -> Puzzle``          read, shape-check and meaning-check one file
                                             (no tokenizer: stays light); raises ``PuzzleError``
                                             whose ``.problems`` lists every ``Problem``.
    ``load_all(problems=None) -> list[Puzzle]``  the shipped puzzles in ladder order (induction,
                                             ioi, beyond; then ``order``). With a ``problems``
                                             list, broken files are skipped and reported there.
    ``find_puzzle(id_or_path) -> Puzzle``     a shipped id (with "did you mean") or a file path.
    ``load_circuit(path) -> Circuit``         a player's circuit file (``Circuit.questions`` is a
                                             list of ``Question(round, asker, card, responder)``).
    ``check_circuit(circuit, puzzle, block, tokenizer=None) -> list[Problem]``  a circuit
                                             against a puzzle's block (rounds, roles, cards).

Prompts
    ``Puzzle.build_prompts(tokenizer, split="play"|"heldout") -> PromptSet``: the seeded prompts,
    their corrupted twins, token ids, each role's position per prompt (``roles[name][i]``), and
    the answer token ids the metric compares (``correct[i]`` / ``wrong[i]``, lists of ids).
    The tokenizer is any Hugging Face tokenizer (``engine.models.load_tokenizer(spec)`` or
    ``LoadedModel.tokenizer``); nothing here loads weights.

Blocks: ``Puzzle.models`` maps ``gpt2`` / ``toy`` to a ``ModelBlock`` (``rounds``: name ->
inclusive layer range, ``solution``, ``given``, ``thresholds``); ``Puzzle.block(name)`` is None
when the puzzle is locked for that model. ``LoadedModel.block`` says which block a model
plays. The given questions are always part of a player's circuit. A ``think`` question has
``responder=None``.

Seeds: the play set uses ``prompts.seed``; the held-out set ``prompts.heldout.seed`` (default
seed + 1) and never repeats a play prompt when the word lists allow. Prompt ``i`` uses template
``i % len(templates)``, so templates are balanced (IOI: ABBA and BABA alike).
"""

from __future__ import annotations

from engine.cards import CARD_ALIASES, CARDS, Card, card_id
from engine.puzzle.catalogue import (
    PuzzleError,
    find_puzzle,
    load_all,
    load_circuit,
    load_puzzle,
    looks_like_id,
    puzzle_files,
    shipped_dir,
)
from engine.puzzle.checks import check_circuit, check_puzzle
from engine.puzzle.files import Circuit, Puzzle
from engine.puzzle.parts import (
    BLOCKS,
    LADDER_TITLES,
    LADDERS,
    Corruption,
    FillSource,
    Metric,
    ModelBlock,
    Problem,
    PromptSpec,
    Question,
    RoleSpec,
    Thresholds,
)
from engine.puzzle.prompts import (
    PromptSet,
    RoleError,
    Template,
    build_prompts,
    number_token_ids,
    sample,
)
from engine.puzzle.reader import Doc, read_yaml
from engine.puzzle.rules import (
    QuestionProblem,
    question_key,
    question_problem,
    question_problems,
    stands_behind,
)
from engine.puzzle.shape import parse_circuit, parse_puzzle, word_lists
from engine.puzzle.suggest import did_you_mean

__all__ = [
    "BLOCKS",
    "CARDS",
    "CARD_ALIASES",
    "LADDERS",
    "LADDER_TITLES",
    "Card",
    "Circuit",
    "Corruption",
    "Doc",
    "FillSource",
    "Metric",
    "ModelBlock",
    "Problem",
    "PromptSet",
    "PromptSpec",
    "Puzzle",
    "PuzzleError",
    "Question",
    "QuestionProblem",
    "RoleError",
    "RoleSpec",
    "Template",
    "Thresholds",
    "build_prompts",
    "card_id",
    "check_circuit",
    "check_puzzle",
    "did_you_mean",
    "find_puzzle",
    "load_all",
    "load_circuit",
    "load_puzzle",
    "looks_like_id",
    "number_token_ids",
    "parse_circuit",
    "parse_puzzle",
    "puzzle_files",
    "question_key",
    "question_problem",
    "question_problems",
    "read_yaml",
    "sample",
    "shipped_dir",
    "stands_behind",
    "word_lists",
]
