"""The only game module that calls the engine's model code.

Screens call these methods from thread workers only; every method may block for seconds. The
TUI receives plain dataclasses (``LineView``, ``AttentionView``, ``SwapView``, ``Prediction``,
the engine's ``LensReport`` and the judge's ``Report``) and never touches a tensor.

``Engine`` is the real thing. ``FakeEngine`` answers instantly with fixed, made-up numbers of
the same shape: the tests, the snapshots and the screenshots in docs/playing.md use it
(``LINEUP_ENGINE=fake lineup`` starts the game with it).

``line_of(puzzle)`` draws a puzzle's first prompt as a line of people without any tokenizer
library (a word splitter stands in), so the puzzle screen appears before torch is imported.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.judge import HeadEvidence, QuestionReport, Report  # plain dataclasses, no torch

if TYPE_CHECKING:
    from engine.puzzle import Puzzle, Question

Progress = Callable[[str, float], None]
Cancelled = Callable[[], bool]

GPT2_FIX = "lineup download gpt2"


# --------------------------------------------------------------------------- views


@dataclass
class LineView:
    """A prompt as people: ``tokens[i]`` is person i's word; ``roles`` name some of them;
    ``at`` is the person whose guess the puzzle scores."""

    text: str
    tokens: list[str]
    roles: dict[str, int]
    at: int | None

    def label(self, pos: int) -> str:
        names = [name for name, p in self.roles.items() if p == pos]
        return "/".join(names)


@dataclass
class AttentionView:
    """``pattern[q][k]``: how much person q listens to person k in head ``layer.head``."""

    text: str
    tokens: list[str]
    layer: int
    head: int
    n_layers: int
    n_heads: int
    pattern: list[list[float]]


@dataclass
class SwapView:
    """Activation patching for a puzzle's metric, as a fraction of the clean-vs-corrupted gap
    restored (1 = all of it). ``by_role[layer][j]``: the person ``roles[j]`` swapped in at the
    start of round ``layer``; ``heads[layer][h]``: head ``layer.h``'s output swapped in."""

    roles: list[str]
    by_role: list[list[float]]
    heads: list[list[float]]
    metric_clean: float
    metric_corrupted: float


@dataclass
class Prediction:
    text: str
    tokens: list[str]
    top: list[tuple[str, float]]

    @classmethod
    def from_lens(cls, lens: Any) -> Prediction:
        """The model's prediction is the lens's last stage at the last person: no second run."""
        return cls(lens.text, list(lens.tokens), list(lens.layers[-1].positions[-1].top))


# --------------------------------------------------------------------------- the line, cheaply


class WordTokenizer:
    """Splits text into words and punctuation (the space stays with the word, as in GPT-2).
    Enough for ``engine.puzzle.build_prompts`` to find every role without transformers."""

    PIECE = re.compile(r"\s*\d{1,2}|\s*[^\W\d]+'?\w*|\s*[^\w\s]|\s+$")

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.words: list[str] = []

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        out = []
        for piece in self.PIECE.findall(text):
            if piece not in self.ids:
                self.ids[piece] = len(self.words)
                self.words.append(piece)
            out.append(self.ids[piece])
        return out

    def decode(self, ids: list[int]) -> str:
        return "".join(self.words[i] for i in ids)


def line_of(puzzle: Puzzle, index: int = 0) -> LineView:
    """Prompt ``index`` of a puzzle as a line of people (no torch, no transformers)."""
    from engine.errors import LineupError
    from engine.puzzle import build_prompts, sample

    try:
        ps = build_prompts(puzzle, WordTokenizer(), "play")
    except LineupError:  # the word splitter disagrees with the model's tokenizer: plain words
        raw = sample(puzzle, "play")[index]
        from engine.puzzle import Template

        text, _ = Template.parse(puzzle.prompts.templates[raw.template]).render(raw.words)
        tok = WordTokenizer()
        words = [tok.decode([i]) for i in tok.encode(text)]
        return LineView(text, words, {}, len(words) - 1)
    return LineView(
        text=ps.texts[index],
        tokens=list(ps.tokens[index]),
        roles={name: pos[index] for name, pos in ps.roles.items()},
        at=ps.roles[puzzle.metric.at][index] if puzzle.metric.at in ps.roles else None,
    )


def block_for(model: str) -> str | None:
    """Which puzzle block a --model value plays, without loading it."""
    from engine.models import block_for_spec

    return block_for_spec(model)


# --------------------------------------------------------------------------- the real engine


def gpt2_cached_cheaply() -> bool:
    """Whether real GPT-2 is in the Hugging Face cache, by the cache's folder layout alone: the
    walk ``engine.models.gpt2_cache_dir`` makes through ``try_to_load_from_cache``, with
    ``os.path`` only, so the first frame does not wait for huggingface_hub to import."""
    from engine.models import GPT2_REPO, GPT2_WEIGHT_FILES

    def path(value: str) -> str:
        return os.path.expandvars(os.path.expanduser(value))

    cache_home = os.getenv("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache"))
    hf_home = path(os.getenv("HF_HOME", os.path.join(cache_home, "huggingface")))
    hub = path(os.getenv("HF_HUB_CACHE",
                         os.getenv("HUGGINGFACE_HUB_CACHE", os.path.join(hf_home, "hub"))))
    repo = os.path.join(hub, "models--" + GPT2_REPO.replace("/", "--"))
    revision = "main"
    ref = os.path.join(repo, "refs", revision)
    try:
        if os.path.isfile(ref):
            with open(ref, encoding="utf-8") as handle:
                revision = handle.read()
    except OSError:
        return False
    snapshot = os.path.join(repo, "snapshots", revision)
    if not os.path.isfile(os.path.join(snapshot, "config.json")):
        return False
    return any(os.path.isfile(os.path.join(snapshot, name)) for name in GPT2_WEIGHT_FILES)


class Engine:
    """Model work for the TUI. Loads each model once, on first use, in whatever worker asks.

    With no ``--model`` the model is real GPT-2 when it is cached, else the toy; that is
    decided on first use of ``model`` by looking at the cache folder (no imports). A puzzle's
    toy block may name its own bundled toy (``toy:``): the heavy methods given a puzzle load
    that one, as the CLI does (``engine.judge.model_spec_for``)."""

    fake = False

    def __init__(self, model: str | None = None, device: str | None = None) -> None:
        self.requested = model
        self._model = model
        self.device = device
        self._block: str | None = None
        self._lms: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def model(self) -> str:
        if self._model is None:
            from engine.models import DEFAULT_TOY

            self._model = "gpt2" if gpt2_cached_cheaply() else DEFAULT_TOY
        return self._model

    @property
    def block(self) -> str | None:
        return self._block if self._block is not None else block_for(self.model)

    @block.setter
    def block(self, value: str | None) -> None:
        self._block = value

    # ---------------------------------------------------------------- cheap
    def banner(self) -> str:
        if self.model == "gpt2":
            return "Model: GPT-2 small (real weights)"
        if self.model == "random-gpt2":
            return "Model: random-gpt2 (GPT-2's shape with random weights: for tests only)"
        if self.model.startswith("toy"):
            why = "" if self.requested else " because GPT-2 is not downloaded: run " \
                                             f"`{GPT2_FIX}` to play on the real thing"
            return f"Model: the toy model{why}"
        return f"Model: checkpoint {self.model}"

    def spec_for(self, puzzle: Puzzle | None = None) -> str:
        """The --model value a puzzle is played on (its toy block's ``toy:``, if any)."""
        if puzzle is None:
            return self.model
        from engine.judge import model_spec_for

        return model_spec_for(puzzle, self.model)

    # ---------------------------------------------------------------- heavy (workers only)
    def lm(self, puzzle: Puzzle | None = None) -> Any:
        spec = self.spec_for(puzzle)
        with self._lock:
            lm = self._lms.get(spec)
            if lm is None:
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # a progress bar would scribble on the screen
                from engine.models import load_model

                lm = self._lms[spec] = load_model(spec, device=self.device)
                if spec == self.model:
                    self.block = lm.block
            return lm

    def grade(self, puzzle: Puzzle, questions: list[Question], *, progress: Progress | None = None,
              cancelled: Cancelled | None = None) -> Any:
        from engine.judge import grade
        from engine.puzzle import Circuit

        if progress:
            progress("loading the model", 0.0)
        lm = self.lm(puzzle)
        circuit = Circuit(puzzle.id, list(questions), model=lm.name)
        return grade(puzzle, circuit, lm, progress=progress, cancelled=cancelled)

    def attention(self, text: str, layer: int, head: int, *,
                  puzzle: Puzzle | None = None) -> AttentionView:
        from engine.hooks import act_name, run_with_cache

        lm = self.lm(puzzle)
        layer = max(0, min(lm.n_layers - 1, layer))
        head = max(0, min(lm.n_heads - 1, head))
        tokens = lm.tokenize([text])
        name = act_name("pattern", layer)
        _, cache = run_with_cache(lm, tokens, names=[name], logits="none")
        pattern = cache[name][0, head].float().tolist()
        words = lm.token_strings(tokens.ids[0].tolist())
        return AttentionView(text, words, layer, head, lm.n_layers, lm.n_heads,
                             [[round(v, 4) for v in row] for row in pattern])

    def lens(self, text: str, k: int = 3, *, puzzle: Puzzle | None = None) -> Any:
        from engine.lens import logit_lens

        return logit_lens(self.lm(puzzle), text, k=k)

    def swap(self, puzzle: Puzzle, *, n: int = 8, cancelled: Cancelled | None = None) -> SwapView:
        """Denoising patching on the first ``n`` play prompts: each role's residual stream at
        the start of each layer, and each head's output, from clean into corrupted."""
        import torch

        from engine.errors import LineupError
        from engine.hooks import forward
        from engine.interventions import head_patch_grid, resid_patch_grid
        from engine.judge import LastMetric
        from engine.models import pad_rows

        lm = self.lm(puzzle)
        ps = first_prompts(puzzle.build_prompts(lm.tokenizer, "play"), n)
        if any(a != len(ids) - 1 for a, ids in zip(ps.at, ps.token_ids, strict=True)):
            raise LineupError(f"{puzzle.id}: the metric is not read at the last token, so "
                              "swapping cannot measure it")
        clean = pad_rows(ps.token_ids, device=lm.device)
        corrupted = pad_rows(ps.corrupted_ids, device=lm.device)
        metric = LastMetric(ps)
        with torch.inference_mode():
            m_clean = float(metric(forward(lm, clean, logits="last").logits).mean())
            m_corr = float(metric(forward(lm, corrupted, logits="last").logits).mean())
        gap = (m_clean - m_corr) or 1e-9
        roles = list(puzzle.roles)
        grid = resid_patch_grid(lm, corrupted, clean, {r: ps.roles[r] for r in roles}, metric,
                                cancelled=cancelled)
        by_role = [[round((float(v) - m_corr) / gap, 3) for v in row] for row in grid.tolist()]
        grid = head_patch_grid(lm, corrupted, clean, metric, cancelled=cancelled)
        heads = [[round((float(v) - m_corr) / gap, 3) for v in row] for row in grid.tolist()]
        return SwapView(roles, by_role, heads, round(m_clean, 3), round(m_corr, 3))


def first_prompts(ps: Any, n: int) -> Any:
    """A prompt set cut to its first ``n`` prompts (every per-prompt list, every role)."""
    from dataclasses import fields, replace

    per_prompt = {f.name: getattr(ps, f.name)[:n] for f in fields(ps)
                  if isinstance(getattr(ps, f.name), list)}
    return replace(ps, **per_prompt, roles={k: v[:n] for k, v in ps.roles.items()})


# --------------------------------------------------------------------------- the fake engine


class FakeEngine:
    """Instant, deterministic stand-in for ``Engine`` (tests, snapshots, screenshots).

    It grades by comparing the circuit with the puzzle's reference solution for its block:
    reference questions are confirmed, a right asker and card with the wrong responder gets
    "wrong-responder", anything else "no-such-question"."""

    fake = True
    n_layers = 2
    n_heads = 4

    def __init__(self, model: str = "toy", *, steps: int = 3,
                 gate: threading.Event | None = None) -> None:
        self.model = model
        self.requested = model
        self.block = block_for(model)
        self.steps = steps
        self.gate = gate  # tests hold the grading here to see the progress bar and cancel
        self.graded = 0

    def banner(self) -> str:
        return "Model: the fake engine (made-up numbers, for tests and screenshots)"

    def grade(self, puzzle: Puzzle, questions: list[Question], *, progress: Progress | None = None,
              cancelled: Cancelled | None = None) -> Report:
        for step in range(self.steps):
            if progress:
                progress(["running the prompts", "checking each question", "ablating the rest"]
                         [step % 3], step / self.steps)
            if self.gate is not None:
                while not self.gate.wait(0.01):
                    if cancelled and cancelled():
                        raise InterruptedError("check cancelled")
            if cancelled and cancelled():
                raise InterruptedError("check cancelled")
        self.graded += 1
        block = puzzle.models[self.block or "toy"]
        solution = {(q.round, q.asker, q.card, q.responder) for q in block.solution}
        given = {(q.round, q.asker, q.card, q.responder) for q in block.given}
        reports = []
        for k, q in enumerate(questions):
            key = (q.round, q.asker, q.card, q.responder)
            if key in solution:
                layer = block.rounds[q.round][0]
                reports.append(QuestionReport(
                    *key, key in given, "confirmed",
                    f"{q.asker} gives {q.responder} most of its attention in round {q.round}",
                    [HeadEvidence(f"{layer}.{k % 4}", layer, k % 4, 0.82, 0.91, 0.64)]))
                continue
            near = [s for s in solution if s[1:3] == key[1:3]]
            if near and near[0][0] == q.round:
                reports.append(QuestionReport(
                    *key, False, "wrong-responder",
                    f"in round {q.round}, {q.asker} mostly asks {near[0][3]} (0.78, head 1.2), "
                    f"not {q.responder} (0.04)", []))
            elif near:
                reports.append(QuestionReport(
                    *key, False, "wrong-round",
                    f"nobody asks that in round {q.round}; try round {near[0][0]}", []))
            else:
                reports.append(QuestionReport(
                    *key, False, "no-such-question",
                    f"no head in round {q.round} has {q.asker} ask {q.responder} that question "
                    "(best 0.06)", []))
        placed = {(q.round, q.asker, q.card, q.responder) for q in questions} | given
        found = len(solution & placed) / max(1, len(solution))
        wrong = sum(not r.holds for r in reports)
        faith = round(max(0.0, found - 0.1 * wrong) * 0.93, 2)
        pass_line = block.thresholds.faithfulness
        held_line = block.thresholds.heldout_faithfulness
        # the judge's rules: held-out prompts run only once the play prompts pass; one star
        # when every question holds, two with faithfulness at the pass line, three when the
        # held-out prompts pass too
        holds = bool(reports) and wrong == 0
        held = round(faith * 0.97, 2) if holds and faith >= pass_line else None
        stars = 0
        if holds:
            stars = 1
            if faith >= pass_line:
                stars = 2
                if held is not None and held >= held_line:
                    stars = 3
        return Report(puzzle.id, self.model, "fake engine", stars >= 2, stars, 2.5, 0.1, faith,
                      held, pass_line, reports, [], {}, heldout_pass_line=held_line)

    def attention(self, text: str, layer: int, head: int, *,
                  puzzle: Puzzle | None = None) -> AttentionView:
        tokens = WordTokenizer()
        words = [tokens.decode([i]) for i in tokens.encode(text)]
        n = len(words)
        layer = max(0, min(self.n_layers - 1, layer))
        head = max(0, min(self.n_heads - 1, head))
        pattern = []
        for q in range(n):
            target = max(0, q - 1 - ((layer + head) % 2))
            row = [0.0] * n
            row[target] += 0.7
            for k in range(q + 1):
                row[k] += round(0.3 / (q + 1), 4)
            pattern.append([round(v, 2) for v in row])
        return AttentionView(text, words, layer, head, self.n_layers, self.n_heads, pattern)

    def lens(self, text: str, k: int = 3, *, puzzle: Puzzle | None = None) -> Any:
        from engine.lens import LensLayer, LensPosition, LensReport

        tokens = WordTokenizer()
        words = [tokens.decode([i]) for i in tokens.encode(text)]
        layers = []
        for stage in range(self.n_layers + 1):
            label = "embeddings" if stage == 0 else f"after layer {stage - 1}"
            positions = []
            for pos, word in enumerate(words):
                guess = words[(pos + stage) % len(words)]
                positions.append(LensPosition(word, [(guess, round(0.3 + 0.2 * stage, 2)),
                                                     (" the", 0.1), (" a", 0.05), (".", 0.03),
                                                     (" and", 0.02)][:k]))
            layers.append(LensLayer(stage, label, positions))
        return LensReport(self.model, text, words, layers)

    def swap(self, puzzle: Puzzle, *, n: int = 8, cancelled: Cancelled | None = None) -> SwapView:
        roles = list(puzzle.roles)
        by_role = [[round(1.0 if (j + layer) % len(roles) == 0 else 0.05 * j, 2)
                    for j in range(len(roles))] for layer in range(self.n_layers)]
        heads = [[round(0.7 if (layer, h) == (1, 2) else 0.02 * h, 2) for h in range(self.n_heads)]
                 for layer in range(self.n_layers)]
        return SwapView(roles, by_role, heads, 2.5, 0.1)


def make_engine(model: str | None = None) -> Engine | FakeEngine:
    """The engine the game runs on: ``LINEUP_ENGINE=fake`` picks the fake one."""
    if os.environ.get("LINEUP_ENGINE") == "fake":
        return FakeEngine(model or "toy")
    return Engine(model)
