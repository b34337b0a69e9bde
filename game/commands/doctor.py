"""`lineup doctor`: check the install and say what to do about each problem."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import Any

from game.output import Exit, add_json_option, emit_json

Check = tuple[str, bool, str]  # (what, ok, detail or what to do)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "doctor",
        help="check the installation and suggest fixes",
        description="Check packages, the bundled tokenizer and toy models, the data and cache "
        "folders, the size of the judge's run cache and its cap, whether real GPT-2 is cached "
        "and SmolLM2 "
        "converted (each of its files against the size and sha256 the conversion recorded), "
        "and which model plays by default; then run each tool of the game once, briefly, on "
        "that model and name any that fails; print what to do about each problem. "
        "Exits 1 if something needed is broken (a missing GPT-2 or SmolLM2 alone is not a "
        "problem). Never touches the network.",
    )
    parser.add_argument("--clear-cache", action="store_true",
                        help="first delete the judge's cached runs (they are rebuilt when "
                        "needed)")
    add_json_option(parser)
    parser.set_defaults(run=run)


def _packages() -> list[Check]:
    checks = []
    for name in ("torch", "transformers", "tokenizers", "textual", "yaml", "platformdirs", "gguf"):
        try:
            module = importlib.import_module(name)
            checks.append((f"package {name}", True, getattr(module, "__version__", "present")))
        except ImportError as exc:
            fix = f"{exc}; reinstall: make test, or pip install -e ."
            checks.append((f"package {name}", False, fix))
    return checks


def _tokenizer() -> list[Check]:
    from engine.models import gpt2_tokenizer

    try:
        ids = gpt2_tokenizer().encode(" John Mary")
    except Exception as exc:  # report, never crash: doctor exists for broken installs
        return [("GPT-2 tokenizer", False, f"{exc}; the package data is damaged: reinstall")]
    ok = ids == [1757, 5335]
    return [("GPT-2 tokenizer", ok, "bundled" if ok else f"wrong ids {ids}: reinstall")]


def _toys() -> list[Check]:
    from engine.models import load_model, toy_names

    names = toy_names()
    if not names:
        return [("toy models", False, "none bundled: run python -m engine.toys build")]
    checks = []
    for name in names:
        try:
            lm = load_model(name)
            checks.append((f"toy model {name}", True, f"{lm.n_layers} layers x {lm.n_heads} heads"))
        except Exception as exc:
            checks.append((f"toy model {name}", False, f"{exc}; run python -m engine.toys build"))
    return checks


def _folders() -> list[Check]:
    from engine.paths import cache_dir, data_dir

    checks = []
    for label, path in (("data folder", data_dir()), ("cache folder", cache_dir())):
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe = path / ".lineup-write-test"
            probe.write_text("ok")
            probe.unlink()
            checks.append((label, True, str(path)))
        except OSError as exc:
            checks.append((label, False, f"{path} is not writable ({exc}); set LINEUP_HOME"))
    return checks


def _gpt2() -> list[Check]:
    from engine.models import gpt2_cache_dir

    found = gpt2_cache_dir()
    detail = str(found) if found else "not cached (optional): lineup download gpt2 when online"
    return [("real GPT-2", True, detail)]


def _smollm2() -> list[Check]:
    """SmolLM2 is optional like GPT-2: absent is fine, but a broken conversion is reported,
    with what is wrong and how to mend it. Every file is compared with the size and sha256
    the conversion recorded; a conversion made before they were recorded gets what can be
    checked without them (the files, config.json's shape, the weights file's header)."""
    from engine import smollm2
    from engine.errors import ModelError
    from engine.models import safetensors_header

    found = smollm2.converted_dir()
    if found is None:
        damaged = smollm2.damaged_dir()
        if damaged is not None:
            return [("SmolLM2-135M", False, f"{damaged[0]} is damaged: {damaged[1]}; "
                     f"{smollm2.MEND_HINT}")]
        return [("SmolLM2-135M", True, f"not converted (optional): {smollm2.DOWNLOAD_HINT}; "
                 f"it would go to {smollm2.target_dir()}")]
    card = smollm2.source_card(found)
    if card.get("gguf_sha256") != smollm2.GGUF_SHA256:
        return [("SmolLM2-135M", False, f"{found} records an unexpected source; "
                 f"{smollm2.MEND_HINT}")]
    problem = smollm2.damage(found, hashes=True)
    recorded = smollm2.recorded_files(found) is not None
    if problem is None and not recorded:
        try:
            safetensors_header(found / "model.safetensors")
        except ModelError as exc:
            problem = str(exc).removeprefix(f"{found}/")
    if problem is not None:
        return [("SmolLM2-135M", False, f"{found} is damaged: {problem}; {smollm2.MEND_HINT}")]
    if not recorded:
        return [("SmolLM2-135M", True, f"converted in {found}; this conversion predates "
                 "recorded sizes and hashes, so only its files, config and weights header "
                 f"were checked (`lineup download smollm2 --force` records them)")]
    return [("SmolLM2-135M", True, f"converted in {found}, every file as the conversion "
             "wrote it (sizes and sha256)")]


def _default() -> list[Check]:
    from engine.models import default_model

    return [("default model", True, default_model().reason)]


def _cache() -> list[Check]:
    from game.commands.cache import status, summary

    info = status()
    detail = summary(info)
    if info["files"]:
        detail += "; free the space with: lineup cache clear"
    if info["cap_problem"]:
        return [("run cache", False, f"{detail}; ignored: {info['cap_problem']}")]
    return [("run cache", True, detail)]


PROBE_SENTENCE = "When Mary and John went to the store, John gave a drink to"


def tool_probes(engine: Any, puzzle: Any) -> list[tuple[str, Callable[[], Any]]]:
    """Each tool of the game as the screens call it (``game.engine_bridge.Engine``), on the
    smallest input that still takes its whole path: one sentence, or one prompt of a puzzle
    the model plays; each experiment's first-order estimate, and the exact grids on their
    last row."""
    lm = engine.lm(puzzle)
    probes: list[tuple[str, Callable[[], Any]]] = [
        ("think now (logit lens)", lambda: engine.lens(PROBE_SENTENCE, puzzle=puzzle)),
        ("who answers (attention)", lambda: engine.attention(
            PROBE_SENTENCE, lm.n_layers - 1, 0, puzzle=puzzle)),
        ("who answers: find", lambda: engine.listeners(PROBE_SENTENCE, 3, 1, puzzle=puzzle)),
    ]
    if puzzle is not None:
        for at, name in (("head", "swap one question's answer"), ("query", "swap the question"),
                         ("key", "swap who answers"), ("value", "swap the answer"),
                         ("resid", "swap a person: first picture"),
                         ("silence", "silence a question: first picture")):
            probes.append((name, lambda at=at: engine.patch(puzzle, at, n=1, estimate=True)))
        last = [lm.n_layers - 1]  # the exact grids' whole path, on their last row only
        probes.append(("swap a person", lambda: engine.patch(puzzle, "resid", n=1,
                                                             layers=last)))
        probes.append(("silence a question", lambda: engine.patch(puzzle, "silence", n=1,
                                                                  layers=last)))
        probes.append(("swap exactly", lambda: engine.patch(puzzle, "head", n=1,
                                                            layers=last)))
    return probes


def _tools() -> list[Check]:
    """Run every tool once, briefly, on the model that plays by default, and name any that
    fails (a tool can break on one model family only: issue 21's lens on Llama)."""
    import time

    from engine.models import default_model
    from engine.puzzle import load_all
    from game.engine_bridge import Engine

    name = default_model().name
    engine = Engine(name)
    try:
        lm = engine.lm()
    except Exception as exc:  # report, never crash
        return [(f"tools on {name}", False, f"the model does not load: {exc}")]
    puzzle = next((p for p in load_all() if p.block(lm.block) is not None
                   and p.block(lm.block).solution), None)
    checks: list[Check] = []
    try:
        probes = tool_probes(engine, puzzle)
    except Exception as exc:
        return [(f"tools on {name}", False, f"{type(exc).__name__}: {exc}")]
    for label, probe in probes:
        t0 = time.perf_counter()
        try:
            probe()
        except Exception as exc:  # the point is to name the tool that fails
            checks.append((f"tool: {label}", False, f"fails on {lm.label}: "
                           f"{type(exc).__name__}: {exc}"))
        else:
            checks.append((f"tool: {label}", True,
                           f"works on {name} ({time.perf_counter() - t0:.1f} s)"))
    return checks


CHECKS: list[Callable[[], list[Check]]] = [
    _packages, _tokenizer, _toys, _folders, _cache, _gpt2, _smollm2, _default, _tools,
]


def run(args: argparse.Namespace) -> int:
    cleared = None
    if getattr(args, "clear_cache", False):
        from engine import cache

        cleared = cache.clear()
    results = [check for group in CHECKS for check in group()]
    healthy = all(ok for _, ok, _ in results)
    if args.json:
        payload = {"ok": healthy, "checks": [
            {"check": what, "ok": ok, "detail": detail} for what, ok, detail in results
        ]}
        if cleared is not None:
            payload["cache_files_deleted"] = cleared
        emit_json(payload)
    else:
        if cleared is not None:
            print(f"deleted {cleared} cached run file{'' if cleared == 1 else 's'}")
        for what, ok, detail in results:
            print(f"{'ok ' if ok else 'BAD'}  {what}: {detail}")
        print("everything needed is in place" if healthy else "fix the BAD lines above")
    return Exit.OK if healthy else Exit.NO
