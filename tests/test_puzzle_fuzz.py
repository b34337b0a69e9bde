"""A seeded mutation fuzzer over the shipped puzzles: the validator never raises, answers each
file within a second, and reports at least one problem for every file known to be broken."""

from __future__ import annotations

import copy
import random
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from engine.puzzle import puzzle_files, read_yaml
from engine.puzzle.shape import (
    BLOCK_KEYS,
    CIRCUIT_KEYS,
    CORRUPT_KEYS,
    HELDOUT_KEYS,
    METRIC_KEYS,
    PASS_KEYS,
    PROMPTS_KEYS,
    PUZZLE_KEYS,
    QUESTION_KEYS,
)
from engine.validate import validate_paths

N_MUTANTS = 1200
SEED = 20240607
SCHEMA_KEYS = set(PUZZLE_KEYS + PROMPTS_KEYS + HELDOUT_KEYS + METRIC_KEYS + CORRUPT_KEYS
                  + BLOCK_KEYS + PASS_KEYS + QUESTION_KEYS + CIRCUIT_KEYS + ["correct", "wrong"])
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
NAMED_MAPPINGS = {"fill", "roles", "rounds"}  # their keys are the author's own names


def _paths(data, at=()):
    yield at, data
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _paths(v, (*at, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _paths(v, (*at, i))


def _get(data, at):
    for p in at:
        data = data[p]
    return data


def _set(data, at, value):
    _get(data, at[:-1])[at[-1]] = value


def _dump(data) -> bytes:
    return yaml.dump(data, Dumper=DUMPER, sort_keys=False, allow_unicode=True).encode()


def _retyped(value):
    """A value of a kind the schema never accepts where ``value`` stood."""
    if isinstance(value, bool):
        return "maybe"
    if isinstance(value, (int, float)):
        return "lots"
    if isinstance(value, str):
        return [1, [2]]
    if isinstance(value, list):
        return {"surprise": 1}
    return [1]


class Mutator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.sources = []
        for path in puzzle_files():
            text = path.read_bytes()
            self.sources.append((path, text, yaml.safe_load(text), read_yaml(path)))

    # each returns (bytes, must_fail)
    def delete_required(self, text, data, doc):
        d = copy.deepcopy(data)
        required = ["id", "title", "ladder", "order", "story", "prompts", "roles", "metric",
                    "corrupt", "cards", "hints", "models"]
        del d[self.rng.choice(required)]
        return _dump(d), True

    def delete_question_key(self, text, data, doc):
        d = copy.deepcopy(data)
        block = d["models"][self.rng.choice(list(d["models"]))]
        q = self.rng.choice(block["solution"])
        del q[self.rng.choice(["round", "asker", "card"])]
        return _dump(d), True

    def retype(self, text, data, doc):
        d = copy.deepcopy(data)
        candidates = [at for at, _ in _paths(d) if at and not (
            # a round's [lo, hi] may legally be one number; fills/roles/rounds values vary
            len(at) >= 2 and at[-2] == "rounds")]
        at = self.rng.choice(candidates)
        _set(d, at, _retyped(_get(d, at)))
        return _dump(d), True

    def misspell_key(self, text, data, doc):
        d = copy.deepcopy(data)
        keyed = [at for at, _ in _paths(d)
                 if at and isinstance(at[-1], str) and at[-1] in SCHEMA_KEYS
                 and not (len(at) >= 2 and at[-2] in NAMED_MAPPINGS)]
        at = self.rng.choice(keyed)
        parent = _get(d, at[:-1])
        key = at[-1]
        i = self.rng.randrange(len(key))
        wrong = key[:i] + self.rng.choice("xqz") + key[i + 1:]
        if wrong == key or wrong in parent:
            wrong = key + "x"
        rebuilt = {(wrong if k == key else k): v for k, v in parent.items()}
        if len(at) == 1:
            d = rebuilt
        else:
            _set(d, at[:-1], rebuilt)
        return _dump(d), True

    def duplicate_key_line(self, text, data, doc):
        lines = text.decode().split("\n")
        single = [mark for at, mark in doc.key_marks.items()
                  if doc.marks.get(at, (0, 0))[0] == mark[0]]
        line = self.rng.choice(single)[0]
        lines.insert(line, lines[line - 1])
        return "\n".join(lines).encode(), True

    def bad_reference(self, text, data, doc):
        d = copy.deepcopy(data)
        block = d["models"][self.rng.choice(list(d["models"]))]
        q = self.rng.choice(block["solution"])
        field = self.rng.choice(["round", "asker", "card"] + (["responder"] if "responder" in q
                                                               else []))
        q[field] = self.rng.choice(["Nobody", "telepathy", "never", "END2", "lat"])
        return _dump(d), True

    def out_of_range(self, text, data, doc):
        d = copy.deepcopy(data)
        choice = self.rng.randrange(5)
        if choice == 0:
            d["order"] = self.rng.choice([0, -3, 10**6])
        elif choice == 1:
            d["prompts"]["count"] = self.rng.choice([0, -1, 10**9])
        elif choice == 2:
            block = d["models"][self.rng.choice(list(d["models"]))]
            block.setdefault("pass", {})["faithfulness"] = self.rng.choice([1.5, -0.1, 99])
        elif choice == 3 and "gpt2" in d["models"]:
            block = d["models"]["gpt2"]  # the toy's layer count is unknown until it is built
            name = list(block["rounds"])[-1]
            block["rounds"][name] = [5, 40]
        else:
            d["metric"]["at"] = "Nobody"
        return _dump(d), True

    def bad_bytes(self, text, data, doc):
        i = self.rng.randrange(len(text))
        junk = self.rng.choice([b"\xff\xfe", b"\x00", b"\xc3\x28", b"\x80", b"\x1b[31m\x07"])
        return text[:i] + junk + text[i:], True

    def deep_nesting(self, text, data, doc):
        n = self.rng.choice([30, 200, 5000, 100_000])
        if self.rng.random() < 0.5:
            return b"id: x\nstory: " + b"[" * n + b"]" * n + b"\n", True
        body = "".join("  " * k + f"k{k}:\n" for k in range(min(n, 2000)))
        return body.encode() + b"  " * min(n, 2000) + b"end: 1\n", True

    def alias_bomb(self, text, data, doc):
        lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
        for k in range(1, self.rng.choice([3, 9, 20])):
            refs = ", ".join([f"*a{k - 1}"] * 9)
            lines.append(f"a{k}: &a{k} [{refs}]")
        return ("\n".join(lines) + "\n").encode(), True

    def huge(self, text, data, doc):
        return text + b"# " + b"x" * (300 * 1024) + b"\n", True

    def odd_documents(self, text, data, doc):
        return self.rng.choice([
            (b"", True), (b"   \n\n", True), (b"- just\n- a list\n", True), (b"42\n", True),
            (text + b"\n---\nid: again\n", True), (b"id: !!python/object:os.system x\n", True),
            (b"? [a, b]\n: complex key\n", True), (b"<<: {id: merged}\n", True),
            (b"\xef\xbb\xbf" + text, False),
        ])

    # random text damage: must not crash, but might still be valid
    def truncate(self, text, data, doc):
        return text[: self.rng.randrange(len(text))], False

    def flip_bytes(self, text, data, doc):
        b = bytearray(text)
        for _ in range(self.rng.randint(1, 8)):
            b[self.rng.randrange(len(b))] = self.rng.randrange(256)
        return bytes(b), False

    def shuffle_lines(self, text, data, doc):
        lines = text.split(b"\n")
        i, j = self.rng.randrange(len(lines)), self.rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
        if self.rng.random() < 0.5:
            del lines[self.rng.randrange(len(lines))]
        return b"\n".join(lines), False

    def tabs_and_garbage(self, text, data, doc):
        if self.rng.random() < 0.5:
            return text.replace(b"  ", b"\t", self.rng.randint(1, 5)), False
        return bytes(self.rng.randrange(256) for _ in range(self.rng.randint(1, 4000))), False

    KINDS = ("delete_required", "delete_question_key", "retype", "misspell_key",
             "duplicate_key_line", "bad_reference", "out_of_range", "bad_bytes", "deep_nesting",
             "alias_bomb", "huge", "odd_documents", "truncate", "flip_bytes", "shuffle_lines",
             "tabs_and_garbage")

    def mutants(self, n: int):
        for i in range(n):
            kind = self.KINDS[i % len(self.KINDS)]
            path, text, data, doc = self.sources[self.rng.randrange(len(self.sources))]
            body, must_fail = getattr(self, kind)(text, data, doc)
            yield i, kind, path.name, body, must_fail


@pytest.mark.slow
def test_validator_survives_mutants(tmp_path: Path, capsys) -> None:
    validate_paths([puzzle_files()[0]])  # load the tokenizer outside the timing
    counts: Counter[str] = Counter()
    slowest = (0.0, "")
    start = time.perf_counter()
    failures = []
    for i, kind, source, body, must_fail in Mutator(SEED).mutants(N_MUTANTS):
        target = tmp_path / f"m{i:04d}.yaml"
        target.write_bytes(body)
        t0 = time.perf_counter()
        try:
            problems = validate_paths([target])
        except Exception as exc:  # the point of the test: this must never happen
            failures.append(f"{kind} on {source}: raised {type(exc).__name__}: {exc}")
            continue
        took = time.perf_counter() - t0
        slowest = max(slowest, (took, f"{kind} on {source}"))  # reported, never asserted
        if must_fail and not problems:
            failures.append(f"{kind} on {source}: broken file passed ({target})")
        for p in problems:
            assert p.line >= 1 and p.col >= 1 and p.message
        counts[kind] += 1
        target.unlink()
    total = time.perf_counter() - start
    with capsys.disabled():
        print(f"\nfuzz: {sum(counts.values())} mutants in {total:.1f}s, slowest "
              f"{slowest[0] * 1000:.0f} ms ({slowest[1]}); by kind: {dict(counts)}")
    assert not failures, "\n".join(failures[:20])
    assert sum(counts.values()) >= 1000
