"""The only game module that calls the engine's model code.

Screens call these methods from thread workers only; every method may block for seconds. The
TUI receives plain dataclasses (``LineView``, ``AttentionView``, ``SwapView``, ``Prediction``,
the engine's ``LensReport`` and the judge's ``Report``) and never touches a tensor.

``Engine`` is the only engine the game has; the tests' stand-in (``tests/fake_engine.py``)
answers the same methods instantly with made-up numbers of the same shape.

``line_of(puzzle)`` draws a puzzle's first prompt as a line of people without any tokenizer
library (a word splitter stands in), so the puzzle screen appears before torch is imported.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from game.views import (  # noqa: F401 - re-exported for callers of the old names
    AttentionView,
    LineView,
    Prediction,
    SwapView,
    WordTokenizer,
    line_of,
    words_of,
)

if TYPE_CHECKING:
    from engine.puzzle import Puzzle, Question

Progress = Callable[[str, float], None]
Cancelled = Callable[[], bool]

GPT2_FIX = "lineup download gpt2"


def block_for(model: str) -> str | None:
    """Which puzzle block a --model value plays, without loading it."""
    from engine.models import block_for_spec

    return block_for_spec(model)


# --------------------------------------------------------------------------- the real engine


def gpt2_cached_cheaply() -> bool:
    """Whether real GPT-2 is in the Hugging Face cache, by the cache's folder layout alone
    (``engine.models.gpt2_cache_dir`` reads the disk only), so the first frame does not wait
    for huggingface_hub to import."""
    from engine.models import gpt2_cache_dir

    return gpt2_cache_dir() is not None


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
        self._preparing: set[threading.Thread] = set()
        self._stop_preparing = threading.Event()

    @property
    def model(self) -> str:
        if self._model is None:
            import engine.models as models

            choose = getattr(models, "default_model_choice", None)
            if choose is not None:
                self._model = str(choose(None)[0])
            else:
                self._model = "gpt2" if gpt2_cached_cheaply() else models.DEFAULT_TOY
        return self._model

    @property
    def block(self) -> str | None:
        return self._block if self._block is not None else block_for(self.model)

    @block.setter
    def block(self, value: str | None) -> None:
        self._block = value

    # ---------------------------------------------------------------- cheap
    def banner(self) -> str:
        """Which model is playing and why, in one line, without loading anything (the
        engine's ``default_model_choice``: disk checks only). Never says "real" for weights
        that are not on this machine."""
        import engine.models as models

        choose = getattr(models, "default_model_choice", None)
        if choose is not None:
            try:
                return f"Model: {choose(self.requested)[1]}"
            except Exception:  # a reason is a courtesy: fall back to the plain rule below
                pass
        if self.model == "gpt2":
            if not gpt2_cached_cheaply():
                return (f"Model: GPT-2 small, which is not downloaded: run `{GPT2_FIX}` "
                        "(checks fail until then)")
            return "Model: GPT-2 small (real weights)"
        if self.model == "random-gpt2":
            return "Model: random-gpt2 (GPT-2's shape with random weights: for tests only)"
        if self.model.startswith("toy"):
            why = "" if self.requested else " because GPT-2 is not downloaded: run " \
                                             f"`{GPT2_FIX}` to play on the real thing"
            return f"Model: the toy model{why}"
        return f"Model: {self.model}"

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

    def prepare(self, puzzle: Puzzle, *, progress: Progress | None = None,
                cancelled: Cancelled | None = None) -> Any:
        """Run ahead, at low priority, what a check of ``puzzle`` will need
        (``engine.judge.prepare``); stops when ``cancelled()`` turns true. Only this thread
        is made nicer: the player's own check, when it comes, runs at full speed."""
        from engine.errors import LineupError
        from engine.judge.prepare import Prepared, prepare

        with contextlib.suppress(OSError, AttributeError):  # not every system has it
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        me = threading.current_thread()
        self._preparing.add(me)
        stop = self._stop_preparing

        def give_up() -> bool:
            return stop.is_set() or (cancelled is not None and cancelled())

        try:
            return prepare(puzzle, self.lm(puzzle), progress=progress, cancelled=give_up)
        except LineupError:  # a locked puzzle, prompts too long: the check will say so
            return Prepared(puzzle.id, cancelled=True)
        finally:
            self._preparing.discard(me)

    def stop_preparing(self, wait: float = 5.0) -> None:
        """Stop every preparation and wait for its thread to leave torch: a process that
        exits while a thread is inside a torch kernel aborts (exit 134)."""
        self._stop_preparing.set()
        for thread in list(self._preparing):
            thread.join(wait)

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
        return SwapView(roles, by_role, heads, round(m_clean, 3), round(m_corr, 3),
                        clean_text=ps.texts[0], corrupted_text=ps.corrupted[0])


    def patch(self, puzzle: Puzzle, at: str = "head", *, position: str = "*",
              n: int | None = None, estimate: bool = False,
              progress: Callable[[int, int], None] | None = None,
              cancelled: Cancelled | None = None, layers: list[int] | None = None) -> Any:
        """One of the essay's experiments on the first ``n`` play prompts, as
        ``engine.patching.PatchReport`` (the report ``lineup patch --json`` prints). By
        default ``n`` keeps an exact grid to a few seconds (``prompts_for``)."""
        from engine.patching import puzzle_patch

        lm = self.lm(puzzle)
        return puzzle_patch(puzzle, lm, at=at, position=position,
                            count=n or prompts_for(lm.facts.heads), estimate=estimate,
                            progress=progress, cancelled=cancelled, layers=layers)

    def listeners(self, text: str, asker: int, responder: int, *,
                  puzzle: Puzzle | None = None) -> Any:
        """Every head ranked by how much ``asker`` listens to ``responder`` in ``text``
        (``engine.detectors.rank_listening``)."""
        from engine.detectors import rank_listening

        lm = self.lm(puzzle)
        return rank_listening(lm, lm.tokenize([text]), [asker], [responder])


def prompts_for(heads: int) -> int:
    """Prompts per exact grid in the game: 8 for GPT-2 small's 144 heads, 4 for SmolLM2's
    270; a grid's cost grows with heads x prompts."""
    return max(2, min(8, 1200 // max(heads, 1)))


def first_prompts(ps: Any, n: int) -> Any:
    """A prompt set cut to its first ``n`` prompts (every per-prompt list, every role)."""
    from dataclasses import fields, replace

    per_prompt = {f.name: getattr(ps, f.name)[:n] for f in fields(ps)
                  if isinstance(getattr(ps, f.name), list)}
    return replace(ps, **per_prompt, roles={k: v[:n] for k, v in ps.roles.items()})


def make_engine(model: str | None = None) -> Engine:
    """The engine the game runs on (the tests hand the app a fake one of their own)."""
    return Engine(model)
