"""Seeded, bounded fuzzing of everything a player or teacher hands Lineup (issue 14).

10,100 generated inputs, in-process: save files (3,000), cache files (2,500), circuit files
(3,000), puzzle files with markup-like text (1,200) and packs (400), plus a small sample run
through the real command in a subprocess. For each input: no exception escapes, no input
blocks (a watchdog alarm fails the input after ``HANG_S`` seconds: a hang detector, not a speed
test), the command's exit code is the documented one, and nothing is lost from a save that
could be read before: its bytes survive whole (unchanged or in a set-aside copy) and every entry
read from it is still in the file after the next save.

Every generator is seeded (``SEED``); a failure message names the category and the input's
number, so ``pytest tests/test_fuzz.py -k saves`` reproduces it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from engine.puzzle import puzzle_files

SEED = 14_2026
HANG_S = 5
N_SAVES = 3000
N_CACHES = 2500
N_CIRCUITS = 3000
N_PUZZLES = 1200
N_PACKS = 400
ROOT = Path(__file__).resolve().parents[1]
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
LOCATED = re.compile(r"^.+:\d+:\d+: .+", re.S)

HOSTILE = ["[/]", "[/b]", "[b]", "[bold red]x[/]", "[link=file:///etc/passwd]x[/link]",
           "[@click=app.quit]x[/]", "[late]", "\\[", "[", "]", "[[x]]", "{x}", "{}", "%s",
           "\x1b[31m", "\x1b]0;title\x07", "\x1b[2J", "a\rb", "a\nb", "\t", "\x00", "\u202e",
           "\ufeff", "é", "名字", "🙂", "a" * 300, "", " ", "None", "null", "~", "yes", "no",
           "on", "0x1F", "1e999", "-0", "NaN", "late", "A2", "B", "induction", "copy", "END",
           "IO", "S1", "previous-token", "middle", "early"]
NAMES = ["late", "middle", "early", "A2", "A", "B", "END", "IO", "S1", "S2", "induction",
         "copy", "previous-token", "duplicate-token", "name-mover"]
JUNK: list[Any] = [None, True, False, 0, -1, 3, 4, 99, 2**70, 1.5, float("inf"), "3", [],
                   {}, [1, [2]], {"x": {"y": []}}, "x" * 5000]


class Hang(Exception):
    pass


@contextlib.contextmanager
def watchdog(what: str) -> Iterator[None]:
    """Fail one input that does not finish within HANG_S seconds (SIGALRM interrupts even a
    blocking open of a FIFO)."""

    def ring(signum: int, frame: Any) -> None:
        raise Hang(f"{what} did not finish within {HANG_S} s")

    old = signal.signal(signal.SIGALRM, ring)
    signal.alarm(HANG_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def text(rng: random.Random) -> str:
    return rng.choice(HOSTILE) if rng.random() < 0.5 else rng.choice(NAMES)


def anything(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON/YAML value, hostile more often than not."""
    roll = rng.random()
    if depth > 3 or roll < 0.4:
        return rng.choice(JUNK + HOSTILE)
    if roll < 0.7:
        return [anything(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {text(rng): anything(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def byte_mutant(rng: random.Random, raw: bytes) -> bytes:
    """A byte-level mutation: truncation, flips, insertions, another encoding, nesting."""
    kind = rng.randrange(8)
    if kind == 0 and raw:
        return raw[: rng.randrange(len(raw))]
    if kind == 1 and raw:
        out = bytearray(raw)
        for _ in range(rng.randint(1, 8)):
            out[rng.randrange(len(out))] = rng.randrange(256)
        return bytes(out)
    if kind == 2:
        at = rng.randrange(len(raw) + 1)
        return raw[:at] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 16))) + raw[at:]
    if kind == 3:
        return raw.decode("utf-8", "replace").encode(rng.choice(["utf-16", "utf-32", "latin-1"]),
                                                     "replace")
    if kind == 4:
        depth = rng.choice([50, 1000, 100_000])
        return b"[" * depth + b"]" * depth
    if kind == 5:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 300)))
    if kind == 6:
        return b"\xef\xbb\xbf" + raw
    return raw + raw[: rng.randint(0, 40)]


# --------------------------------------------------------------------------- saves


def good_question(rng: random.Random) -> dict[str, str]:
    q = {"round": rng.choice(NAMES[:3]), "asker": rng.choice(NAMES[3:10]),
         "card": rng.choice(NAMES[10:])}
    if rng.random() < 0.8:
        q["responder"] = rng.choice(NAMES[3:10])
    return q


def good_save(rng: random.Random) -> dict[str, Any]:
    models: dict[str, Any] = {}
    for model in rng.sample(["toy", "gpt2", "smollm2"], rng.randint(1, 3)):
        table = {}
        for k in range(rng.randint(0, 5)):
            circuit: list[dict[str, str]] = []
            for _ in range(rng.randint(0, 4)):
                q = good_question(rng)
                if q not in circuit:
                    circuit.append(q)
            table[f"puzzle-{k}"] = {"stars": rng.randint(0, 3), "circuit": circuit,
                                    "saved": float(rng.randint(0, 10**9))}
        models[model] = table
    return {"version": 2, "models": models}


def bad_entry(rng: random.Random) -> Any:
    shape = rng.randrange(6)
    if shape == 0:
        return anything(rng)
    entry: dict[str, Any] = {"stars": rng.choice([rng.randint(0, 3), *JUNK])}
    if shape == 1:
        q = good_question(rng)
        del q[rng.choice(list(q))]
        entry["circuit"] = [q]
    elif shape == 2:
        entry["circuit"] = [{**good_question(rng), text(rng): text(rng)}]
        entry[rng.choice(["note", "foo", "[/]"])] = text(rng)
    elif shape == 3:
        entry["circuit"] = [{k: text(rng) for k in ("round", "asker", "card", "responder")}]
    elif shape == 4:
        entry["circuit"] = anything(rng)
    else:
        entry["circuit"] = [good_question(rng)] * rng.randint(1, 5)
        entry["saved"] = rng.choice(JUNK)
    return entry


def save_input(rng: random.Random, n: int) -> tuple[bytes | str, bool]:
    """(bytes, or "fifo"/"dir"; whether the structure is a readable save)."""
    if n % 250 == 7:
        return rng.choice(["fifo", "dir"]), False
    doc = good_save(rng)
    roll = rng.random()
    if roll < 0.35:  # a readable save with some bad entries in it
        table = doc["models"].setdefault(rng.choice(["toy", "gpt2"]), {})
        for k in range(rng.randint(1, 4)):
            table[rng.choice([f"bad-{k}", text(rng)]) or "x"] = bad_entry(rng)
        return json.dumps(doc, ensure_ascii=rng.random() < 0.5).encode(), True
    if roll < 0.5:  # the version-1 layout
        v1 = {"version": 1, "puzzles": doc["models"].get("toy", {})}
        return json.dumps(v1).encode(), True
    if roll < 0.6:
        return json.dumps(doc).encode(), True
    if roll < 0.75:  # anything at all where a table was
        at = rng.choice(["models", "version", "top"])
        if at == "top":
            return json.dumps(anything(rng)).encode(), False
        doc[at] = anything(rng)
        return json.dumps(doc).encode(), False
    return byte_mutant(rng, json.dumps(doc).encode()), False


def check_entries(progress: Any) -> None:
    for model, table in progress.entries.items():
        assert isinstance(model, str)
        for pid, entry in table.items():
            assert isinstance(pid, str) and isinstance(entry.stars, int)
            assert 0 <= entry.stars <= 3 and isinstance(entry.saved, float)
            for q in entry.circuit:
                assert {"round", "asker", "card"} <= set(q) <= {"round", "asker", "card",
                                                                "responder"}
                assert all(isinstance(v, str) for v in q.values())


def test_fuzz_saves(tmp_path, monkeypatch) -> None:
    from game.progress import Progress

    monkeypatch.setattr(os, "fsync", lambda fd: None)  # durability is not what is fuzzed here
    rng = random.Random(SEED)
    kinds = {"clean": 0, "set aside": 0, "kept": 0}
    for n in range(N_SAVES):
        folder = tmp_path / f"s{n}"
        folder.mkdir()
        path = folder / "progress.json"
        raw, _ = save_input(rng, n)
        if raw == "fifo":
            os.mkfifo(path)
        elif raw == "dir":
            path.mkdir()
        else:
            path.write_bytes(raw)
        where = f"save input {n}"
        with watchdog(where):
            first = Progress.load(path, read_only=n % 10 == 0)
            check_entries(first)
            assert all(isinstance(p, str) for p in first.problems), where
            before = {(m, pid): (e.stars, list(e.circuit))
                      for m, table in first.entries.items() for pid, e in table.items()}
            first.record("fuzz-new", "toy", stars=2, circuit=[good_question(rng)])
            again = Progress.load(path)
            check_entries(again)
        if isinstance(raw, bytes):
            # nothing lost: the bytes survive whole, unchanged or in a set-aside copy
            kept = [p.read_bytes() for p in folder.iterdir() if p.is_file()
                    and (p.name == "progress.json" or re.fullmatch(
                        r"progress\.json\.broken-[\d-]+", p.name))]
            clean = not first.problems and first.keep is None
            if clean:
                kinds["clean"] += 1
            elif raw in kept:
                kinds["set aside" if len(kept) > 1 or raw not in kept[:1] else "kept"] += 1
            assert clean or raw in kept, f"{where}: the unreadable save was not kept"
        if not first.read_only and first.keep is None:
            for (model, pid), (stars, circuit) in before.items():
                entry = again.entry(pid, model)
                assert entry is not None and entry.stars >= stars, f"{where}: lost {pid}"
                assert pid == "fuzz-new" or entry.circuit == circuit, f"{where}: {pid}"
            assert again.stars("fuzz-new", "toy") == 2, where
        shutil.rmtree(folder)
    assert kinds["clean"] > 100 and kinds["set aside"] > 100  # the generator reaches both


# --------------------------------------------------------------------------- cache files


def cache_entry(rng: random.Random) -> dict[str, Any]:
    import torch

    out: dict[str, Any] = {}
    for k in range(rng.randint(1, 5)):
        shape = [rng.randint(0, 4) for _ in range(rng.randint(0, 3))]
        dtype = rng.choice([torch.float32, torch.float16, torch.int64, torch.bool])
        out[f"t{k}"] = (torch.rand(shape) * 4).to(dtype)
    out["build"] = text(rng)
    out["effects"] = {text(rng): rng.uniform(-2, 2) for _ in range(rng.randint(0, 3))}
    out["n"] = rng.randint(-5, 5)
    return out


def same(a: Any, b: Any) -> bool:
    import torch

    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape \
            and bool((a == b).all())
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def cache_mutant(rng: random.Random, cache: Any, kind: str, key: str, data: dict[str, Any],
                 blob: bytes) -> tuple[bytes, bool]:
    """``blob`` (what ``save`` writes for this entry) or a damaged or misplaced variant, and
    whether it is a forgery: damaged content given a matching checksum, which no cache can
    tell from a real entry with other numbers (it must still load only as what it says)."""
    import hashlib

    import torch

    roll = rng.randrange(9)
    if roll == 0:
        return blob, False
    if roll == 1:
        return byte_mutant(rng, blob), False
    magic, header, payload = blob.split(b"\n", 2)
    head = json.loads(header)
    if roll == 2:  # a header that lies about one field
        field = rng.choice(list(head))
        head[field] = anything(rng)
        return magic + b"\n" + json.dumps(head).encode() + b"\n" + payload, False
    if roll == 3:  # damaged content with a matching checksum: the loader must still refuse
        content = bytearray(payload)
        for _ in range(rng.randint(1, 6)):
            content[rng.randrange(len(content))] = rng.randrange(256)
        head.update(size=len(content), sha256=hashlib.sha256(content).hexdigest())
        return magic + b"\n" + json.dumps(head).encode() + b"\n" + bytes(content), True
    if roll == 4:  # another kind, key or version's file in this place
        other = rng.choice([("judge-effects", key), (kind, key + "0"), (kind.upper(), key)])
        return cache.encode(*other, data), False
    if roll == 5:  # a NaN where a metric was
        bad = dict(data)
        bad["metric"] = rng.choice([float("nan"), float("inf"),
                                    torch.tensor([1.0, float("nan")])])
        return cache.encode(kind, key, bad), False
    if roll == 6:  # the old format, or a bare torch file
        buf = io.BytesIO()
        torch.save({**data, "__key__": key}, buf)
        return buf.getvalue(), False
    if roll == 7:  # a schema that does not match the content
        head["schema"] = {"map": {"t0": {"tensor": [99], "dtype": "float32"}}}
        return magic + b"\n" + json.dumps(head).encode() + b"\n" + payload, False
    return b"", False


def equivalent(blob: bytes, good: bytes) -> bool:
    """The same header (as JSON: a lie that happens to tell the truth is the truth) and the
    same content bytes."""
    parts, want = blob.split(b"\n", 2), good.split(b"\n", 2)
    if len(parts) != 3 or parts[0] != want[0] or parts[2] != want[2]:
        return False
    try:
        return json.loads(parts[1]) == json.loads(want[1])
    except ValueError:
        return False


def test_fuzz_cache_files() -> None:
    from engine import cache

    rng = random.Random(SEED + 1)
    cache.runs_dir().mkdir(parents=True, exist_ok=True)
    loaded = refused = 0
    for n in range(N_CACHES):
        kind, key = rng.choice(["judge", "heads", "judge-effects"]), f"{n:06x}"
        data = cache_entry(rng)
        good = cache.encode(kind, key, data)
        blob, forged = cache_mutant(rng, cache, kind, key, data, good)
        path = cache.path_for(kind, key)
        path.write_bytes(blob)
        where = f"cache input {n}"
        with watchdog(where):
            back = cache.load(kind, key, memo=rng.random() < 0.3)
        if back is None:
            refused += 1
            assert not path.exists(), f"{where}: a refused file stays"
        else:
            loaded += 1
            if forged:  # it may load, but only as exactly what its header promises
                assert cache.describe(back) == cache.describe(data), where
            else:
                assert equivalent(blob, good) and same(data, back), \
                    f"{where}: a damaged file was trusted"
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    assert loaded > 100 and refused > 1000


# --------------------------------------------------------------------------- circuit files


def circuit_text(rng: random.Random, pid: str) -> str:
    roll = rng.random()
    questions: list[Any] = []
    for _ in range(rng.randint(0, 6)):
        q: dict[str, Any] = {k: text(rng) if rng.random() < 0.5 else rng.choice(NAMES)
                             for k in ("round", "asker", "card", "responder")}
        if rng.random() < 0.2:
            q[rng.choice(list(q))] = rng.choice(JUNK)
        if rng.random() < 0.1:
            q.pop(rng.choice(list(q)))
        if rng.random() < 0.1:
            q[text(rng)] = text(rng)
        questions.append(q)
    if rng.random() < 0.2 and questions:
        questions = questions * rng.randint(2, 60)  # repeated questions
    doc: dict[str, Any] = {"puzzle": pid if rng.random() < 0.8 else text(rng),
                           "questions": questions}
    if rng.random() < 0.2:
        doc["model"] = rng.choice(["toy", "gpt2", *HOSTILE])
    if rng.random() < 0.1:
        doc[text(rng)] = anything(rng)
    out = yaml.dump(doc, Dumper=DUMPER, allow_unicode=rng.random() < 0.5, sort_keys=False)
    if roll < 0.15:
        return byte_mutant(rng, out.encode()).decode("utf-8", "replace")
    if roll < 0.2:
        return rng.choice(["a: &a [*a, *a]\n", "x: !!python/object:os.system ls\n",
                           "questions: " + "[" * 5000 + "\n", "puzzle: x\n\tquestions: []\n",
                           "- - - -\n", "puzzle: {a: 1}\nquestions: 3\n",
                           'a: &a ["x","x"]\nb: &b [*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b]\n'])
    return out


def fake_report(circuit: Any) -> Any:
    from engine.report import QuestionReport, Report

    questions = [QuestionReport(q.round, q.asker, q.card, q.responder, False, "wrong-round",
                                f"in round {q.round}, {q.asker} asks {q.responder}")
                 for q in circuit.questions]
    return Report(circuit.puzzle, "toy", f"toy {circuit.model}", False, 0, 1.0, 0.0, 0.5, None,
                  0.8, questions, [f"note on {circuit.puzzle}"], {})


def test_fuzz_circuit_files(tmp_path) -> None:
    from engine.errors import LineupError
    from engine.puzzle import check_circuit, load_all
    from game import cli
    from game.commands._shared import collapse, read_circuit
    from game.commands.check import print_report

    puzzles = {p.id: p for p in load_all()}
    ids = sorted(puzzles)
    rng = random.Random(SEED + 2)
    parsed = refused = graded = 0
    for n in range(N_CIRCUITS):
        pid = rng.choice(ids)
        path = tmp_path / f"c{n % 50}.yaml"
        if n % 300 == 11:
            path = tmp_path / f"fifo{n}.yaml"
            os.mkfifo(path)
        else:
            path.write_text(circuit_text(rng, pid), encoding="utf-8")
        where = f"circuit input {n}"
        out = io.StringIO()
        with watchdog(where), contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            broken = False
            try:
                circuit = read_circuit(path)
            except LineupError as exc:
                refused += 1
                broken = True
                assert str(exc), where
            else:
                parsed += 1
                collapse(circuit)
                keys = [(q.round, q.asker, q.card, q.responder) for q in circuit.questions]
                assert len(keys) == len(set(keys)), where
                if circuit.puzzle in puzzles:
                    for block in puzzles[circuit.puzzle].models:
                        problems = check_circuit(circuit, puzzles[circuit.puzzle], block)
                        assert all(LOCATED.match(str(p)) for p in problems), where
                print_report(fake_report(circuit))
            if broken and n % 50 == 0:  # the real command, in-process: exit 2, no model
                assert cli.main(["check", pid, str(path)]) == 2, where
        if not broken and graded < 3 and n % 7 == 0:  # graded on the toy (no watchdog:
            graded += 1  # loading and running a model is work, not a hang)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                code = cli.main(["check", pid, str(path), "--model", "toy"])
            assert code in (0, 1, 2), where  # solved, not solved, or a usage error
        shown = out.getvalue()
        assert "\x1b" not in shown and "Traceback" not in shown, f"{where}: {shown[-300:]}"
    assert parsed > 300 and refused > 300 and graded == 3


# --------------------------------------------------------------------------- puzzles


TEXT_FIELDS = ("title", "story", "goal")


def puzzle_mutant(rng: random.Random, data: dict[str, Any]) -> Any:
    doc = json.loads(json.dumps(data))
    for _ in range(rng.randint(1, 4)):
        roll = rng.random()
        if roll < 0.4:
            doc[rng.choice(TEXT_FIELDS)] = text(rng) if rng.random() < 0.7 else anything(rng)
        elif roll < 0.55 and isinstance(doc.get("hints"), list):
            doc["hints"] = [text(rng) for _ in range(rng.randint(0, 3))]
        elif roll < 0.7 and isinstance(doc.get("roles"), dict) and doc["roles"]:
            roles = doc["roles"]
            name = rng.choice(list(roles))
            roles[text(rng) or "x"] = roles.pop(name)
        elif roll < 0.85 and isinstance(doc.get("models"), dict) and doc["models"]:
            block = doc["models"][rng.choice(list(doc["models"]))]
            for part in ("given", "solution"):
                if isinstance(block, dict) and isinstance(block.get(part), list):
                    questions = [q for q in block[part] if isinstance(q, dict) and q]
                    if questions:
                        q = rng.choice(questions)
                        q[rng.choice(list(q))] = text(rng)
        elif doc:
            doc[rng.choice(list(doc))] = anything(rng)
    return doc


def test_fuzz_puzzle_files_with_markup_like_text(tmp_path) -> None:
    from engine.pack import load_puzzle_file
    from game import cli

    rng = random.Random(SEED + 3)
    sources = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in puzzle_files()]
    loaded = broken = 0
    for n in range(N_PUZZLES):
        doc = puzzle_mutant(rng, rng.choice(sources))
        path = tmp_path / f"p{n % 40}.yaml"
        body = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
        if rng.random() < 0.1:
            body = byte_mutant(rng, body.encode()).decode("utf-8", "replace")
        path.write_text(body, encoding="utf-8")
        where = f"puzzle input {n}"
        with watchdog(where):
            puzzle, problems = load_puzzle_file(path)
            if n % 100 == 0:
                out = io.StringIO()
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                    code = cli.main(["validate", str(path)])
                assert code == (0 if puzzle is not None else 1), f"{where}: {out.getvalue()}"
        assert (puzzle is None) == bool(problems), where
        assert all(LOCATED.match(str(p)) for p in problems), where
        if puzzle is None:
            broken += 1
        else:
            loaded += 1
            assert isinstance(puzzle.title, str), where
    assert loaded > 50 and broken > 300


# --------------------------------------------------------------------------- packs


def pack_yaml(rng: random.Random, ids: list[str]) -> tuple[str, dict[str, Any]]:
    from engine.pack import PACK_KEYS

    meta: dict[str, Any] = {}
    for key in rng.sample([*list(PACK_KEYS), "colour", "hint"], rng.randint(0, 5)):
        roll = rng.random()
        if key in ("hints", "solutions", "solutions_hidden"):
            meta[key] = rng.choice([True, False, "true", "false", "no", "yes", "off", 0, 1,
                                    "maybe", None, [True], *HOSTILE[:6]])
        elif key == "order":
            meta[key] = rng.sample(ids, min(len(ids), 3)) + ([text(rng)] if roll < 0.5 else []) \
                if roll < 0.8 else anything(rng)
        elif key == "seed":
            meta[key] = rng.choice([7, -1, 2**40, "7", True, 1.5, None])
        else:
            meta[key] = text(rng) if roll < 0.7 else anything(rng)
    return yaml.safe_dump(meta, allow_unicode=True), meta


TRUE_WORDS = {"true", "yes", "on", "1"}
FALSE_WORDS = {"false", "no", "off", "0"}


def said(meta: dict[str, Any], key: str, want: bool) -> bool:
    """Whether pack.yaml left ``key`` out or wrote ``want`` (a bool, or a quoted yes/no word)."""
    if key not in meta:
        return True
    value = meta[key]
    words = TRUE_WORDS if want else FALSE_WORDS
    return value is want or (isinstance(value, str) and value.strip().lower() in words)


def test_fuzz_packs(tmp_path) -> None:
    from engine.pack import read_pack

    rng = random.Random(SEED + 4)
    files = puzzle_files()
    sources = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in files]
    ids = [d["id"] for d in sources]
    for n in range(N_PACKS):
        folder = tmp_path / f"pack{n}"
        folder.mkdir()
        body, meta = pack_yaml(rng, ids)
        if rng.random() < 0.1:
            body = byte_mutant(rng, body.encode()).decode("utf-8", "replace")
            meta = None
        (folder / "pack.yaml").write_text(body, encoding="utf-8")
        for k in range(rng.randint(0, 3)):
            roll = rng.random()
            target = folder / f"{k}-{rng.choice(['a', 'b'])}.yaml"
            if target.exists():
                continue
            if roll < 0.4:
                shutil.copy(rng.choice(files), target)  # sometimes the same id twice
            elif roll < 0.7:
                data = puzzle_mutant(rng, rng.choice(sources))
                target.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
            elif roll < 0.8:
                os.mkfifo(target)
            elif roll < 0.9:
                target.mkdir()
            else:
                target.symlink_to(folder / "nowhere.yaml")
        where = f"pack input {n}"
        with watchdog(where):
            pack, puzzles, problems = read_pack(folder)
        assert isinstance(pack.hints, bool) and isinstance(pack.solutions, bool), where
        if isinstance(meta, dict):  # true only when the teacher wrote true (or nothing)
            assert not pack.hints or said(meta, "hints", True), f"{where}: hints"
            assert not pack.solutions or (said(meta, "solutions", True)
                                          and said(meta, "solutions_hidden", False)), where
        found = [p.id for p in puzzles]
        assert len(found) == len(set(found)), f"{where}: one id twice"
        assert all(LOCATED.match(str(p)) for p in problems), where
        assert pack.problems == [str(p) for p in problems], where
        shutil.rmtree(folder)


# --------------------------------------------------------------------------- the real command


def test_fuzz_sample_through_the_real_command(tmp_path) -> None:
    """A few inputs of each kind through `python -m game`, as a player would run it."""
    rng = random.Random(SEED + 5)
    home = tmp_path / "home"
    data = home / "data"
    data.mkdir(parents=True)
    env = {**os.environ, "LINEUP_HOME": str(home), "HF_HUB_OFFLINE": "1"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "game", *args], capture_output=True,
                              text=True, cwd=ROOT, env=env, timeout=60,
                              stdin=subprocess.DEVNULL)

    cases: list[tuple[list[str], set[int]]] = []
    save = data / "progress.json"
    save.write_bytes(byte_mutant(rng, json.dumps(good_save(rng)).encode()))
    cases.append((["list"], {0}))
    circuit = tmp_path / "c.yaml"
    circuit.write_text(circuit_text(rng, "induction-head") + "\n{{{", encoding="utf-8")
    cases.append((["check", "induction-head", str(circuit)], {2}))
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    cases.append((["check", "induction-head", str(fifo)], {2}))
    puzzle = tmp_path / "p.yaml"
    source = yaml.safe_load(puzzle_files()[0].read_text(encoding="utf-8"))
    puzzle.write_text(yaml.safe_dump(puzzle_mutant(rng, source), allow_unicode=True))
    cases.append((["validate", str(puzzle)], {0, 1}))
    cases.append((["play", "--pack", str(tmp_path)], {2}))  # no terminal here
    for args, codes in cases:
        result = run(*args)
        assert result.returncode in codes, (args, result.returncode, result.stderr)
        assert "Traceback" not in result.stderr, (args, result.stderr)
    os.unlink(save)
    os.mkfifo(save)  # a FIFO where the save is: listed, not blocked on
    result = run("list")
    assert result.returncode == 0 and "named pipe" in result.stderr
