"""`lineup validate` over files and folders: every check of ``engine.puzzle`` on each file,
plus what only a set of files can show (duplicate ids, orders, ladders that give a later
puzzle away), and circuit files checked against their puzzle.

This module sits below the judge and never imports it. With a model
(``lineup validate --model M``) each puzzle's reference solution and trivial circuits are
graded by a ``grader`` the caller passes in: ``engine.authoring.validate_paths`` passes the
judge's (``engine.authoring`` is the only module that joins puzzle checks and the judge)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from engine.errors import UsageError
from engine.ladders import ladder_reveals
from engine.puzzle import (
    Doc,
    Problem,
    Puzzle,
    PuzzleError,
    check_circuit,
    find_puzzle,
    parse_circuit,
    parse_puzzle,
    puzzle_files,
    read_yaml,
)
from engine.puzzle.checks import static_checks
from engine.puzzle.targets import ModelInfo, model_info, tokenizer_for, toy_config
from engine.puzzle.tokens import check_tokens


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            files.extend(puzzle_files(path))
        else:
            files.append(path)
    return files


def _is_circuit(doc: Doc) -> bool:
    data = doc.data
    return isinstance(data, dict) and "questions" in data and "prompts" not in data


Grader = Callable[..., list[Problem]]
"""``grader(puzzle, spec, doc=..., lm=..., progress=...) -> list[Problem]``: grades a puzzle's
reference solution on a model (``engine.authoring.check_reference_with_judge``)."""
ModelLoader = Callable[..., Any]
"""``load(puzzle, spec, device, models, notes, progress) -> LoadedModel | None``: the model
that grades a puzzle, loaded once per name (``engine.authoring.judge_model``)."""


def validate_paths(paths: Iterable[str | Path], model: str | None = None,
                   notes: list[str] | None = None, *, device: str | None = None,
                   progress: Callable[[str], None] | None = None,
                   grader: Grader | None = None,
                   load: ModelLoader | None = None) -> list[Problem]:
    """Check puzzle files (and circuit files, against their puzzle). Folders are searched for
    *.yaml. With ``model``, only that model's block is checked, with its tokenizer and layer
    count, and ``grader`` grades each puzzle's reference solution and trivial circuits on it
    on the model ``load`` gives (``engine.authoring.validate_paths`` passes the judge; the
    model is loaded once, and a puzzle with problems already is not graded; with no grader,
    a note says nothing was graded); without, every block is checked against its own model (toy
    blocks only when the toy is built). Remarks that are not problems go to ``notes``;
    ``progress(text)`` hears what the judge is doing as it happens."""
    notes = notes if notes is not None else []
    models: dict[str, Any] = {}  # model_spec_for(...) -> LoadedModel, or the LineupError
    info = model_info(model) if model else None
    if info is not None and info.block is None:
        raise UsageError(f"model {model} is not GPT-2 small shaped and is not a bundled toy, "
                         "so it plays no puzzle block")
    problems: list[Problem] = []
    seen_ids: dict[str, str] = {}
    seen_orders: dict[tuple[str, int], str] = {}
    ladders: dict[str, list[tuple[Puzzle, Doc, Path]]] = {}
    for path in expand_paths(paths):
        doc = read_yaml(path)
        if _is_circuit(doc):
            problems.extend(_validate_circuit_file(doc, info))
            continue
        puzzle, found = parse_puzzle(doc)
        problems.extend(found)
        if puzzle is None:
            continue
        static, ready = static_checks(puzzle, doc)
        problems.extend(static)
        mine = len(found) + len(static)
        if puzzle.id and puzzle.id in seen_ids:
            problems.append(Problem(str(path), *doc.where(("id",)),
                                    f"id {puzzle.id!r} is also used by {seen_ids[puzzle.id]}"))
        if puzzle.id:
            seen_ids.setdefault(puzzle.id, str(path))
        key = (puzzle.ladder, puzzle.order)
        if not {"ladder", "order"} & puzzle.broken:
            if key in seen_orders:
                problems.append(Problem(str(path), *doc.where(("order",)),
                                        f"{puzzle.ladder} ladder already has order "
                                        f"{puzzle.order} ({seen_orders[key]})"))
            seen_orders.setdefault(key, str(path))
        if not ready:
            continue
        ladders.setdefault(puzzle.ladder, []).append((puzzle, doc, path))
        for block_name, spec in _targets(puzzle, info, notes):
            block = puzzle.block(block_name)
            if block is None:
                notes.append(f"{path}: no {block_name} block, so the puzzle is locked for {spec}")
                continue
            target = model_info(spec) if info is None else info
            tokens = check_tokens(puzzle, doc, tokenizer_for(target), spec, block,
                                  target.n_positions)
            problems.extend(tokens)
            if info is None:
                continue
            if mine or tokens:
                notes.append(f"{path}: reference solution not graded on {spec}: fix the "
                             "problems above first")
                continue
            if grader is None or load is None:  # the judge lives above this module
                note = (f"reference solutions were not graded on {spec}: grading needs the "
                        "judge (engine.authoring.validate_paths)")
                if note not in notes:
                    notes.append(note)
                continue
            lm = load(puzzle, spec, device, models, notes, progress)
            if lm is not None:
                problems.extend(grader(puzzle, spec, doc=doc, lm=lm, progress=progress))
    for members in ladders.values():
        members.sort(key=lambda m: m[0].order)
        docs = {m[0].id: (m[1], m[2]) for m in members}
        blocks = [info.block] if info is not None and info.block else None
        for r in ladder_reveals([m[0] for m in members], blocks):
            doc, path = docs[r.puzzle]
            problems.append(Problem(str(path), *doc.where(("models", r.block, "given", r.index)),
                                    r.message))
    return sorted(set(problems), key=lambda p: (p.path, p.line, p.col, p.message))


def _targets(puzzle: Puzzle, info: ModelInfo | None, notes: list[str]) -> list[tuple[str, str]]:
    """(block, model spec) pairs to check a puzzle's tokens against."""
    if info is not None:
        return [(info.block or "", info.spec)]
    out = []
    for name, block in puzzle.models.items():
        if name == "gpt2":
            out.append(("gpt2", "gpt2"))
        elif name == "smollm2":
            from engine.smollm2 import converted_dir

            if converted_dir() is None:
                msg = ("SmolLM2 is not converted (`lineup download smollm2`): smollm2 blocks "
                       "were checked without its tokenizer")
                if msg not in notes:
                    notes.append(msg)
            else:
                out.append(("smollm2", "smollm2"))
        else:
            toy = block.toy or "toy"
            if toy_config(toy) is None:
                msg = f"toy model {toy!r} is not built: toy blocks were checked without it"
                if msg not in notes:
                    notes.append(msg)
            else:
                out.append(("toy", toy))
    return out


def _block_of(model: str | None) -> str | None:
    """The block a circuit's ``model:`` names (gpt2, random-gpt2 -> gpt2; a toy -> toy)."""
    from engine.models import block_for_spec

    return block_for_spec(model)


def _validate_circuit_file(doc: Doc, info: ModelInfo | None) -> list[Problem]:
    circuit, problems = parse_circuit(doc)
    if circuit is None or problems:
        return problems
    try:
        puzzle = find_puzzle(circuit.puzzle)
    except (UsageError, PuzzleError) as exc:
        return [Problem(doc.path, *doc.where(("puzzle",)), str(exc))]
    block = info.block if info else _block_of(circuit.model)
    blocks = [block] if block else list(puzzle.models)
    # a circuit without `model:` passes when it fits any block the puzzle has
    if not block:
        results = [check_circuit(circuit, puzzle, b, doc=doc) for b in blocks]
        return [] if any(not r for r in results) else min(results, key=len)
    found: list[Problem] = []
    for b in blocks:
        found.extend(check_circuit(circuit, puzzle, b or "", doc=doc))
    return found

