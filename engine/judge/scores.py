"""Every head's detector scores on repeated random tokens, cached per model and detector
settings: what the pattern and copying cards are checked against."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine.judge.thresholds import JUDGE_VERSION

if TYPE_CHECKING:
    from engine.loaded import LoadedModel


def _detector_params() -> dict[str, Any]:
    """Everything the detector scores depend on besides the weights: the detectors' default
    arguments and constants, read from ``engine.detectors`` itself so that changing one
    there changes the cache key."""
    import inspect

    from engine import detectors

    def defaults(fn: Callable) -> dict[str, Any]:
        return {name: p.default for name, p in inspect.signature(fn).parameters.items()
                if p.default is not inspect.Parameter.empty}

    return {
        "attention_scores": defaults(detectors.attention_scores),
        "repeated_random_tokens": defaults(detectors.repeated_random_tokens),
        "copy_scores": defaults(detectors.copy_scores),
        "COPY_TOP_K": detectors.COPY_TOP_K,
        "SCORE_NAMES": list(detectors.SCORE_NAMES),
    }


def _heads_key(lm: LoadedModel) -> str:
    from engine.cache import key_of

    return key_of("heads", JUDGE_VERSION, lm.fingerprint, _detector_params())


def _head_scores(lm: LoadedModel) -> dict[str, Any]:
    """Detector scores [5, L, H] and the uniform baselines of the attention detectors,
    cached per model and detector parameters. The detectors run with their defaults, which
    are what the key records."""
    import torch

    from engine import cache
    from engine.detectors import attention_scores, copy_scores, repeated_random_tokens

    key = _heads_key(lm)
    data = cache.load("heads", key, memo=True)
    if data is not None:
        return data
    _ids, prefix, half = repeated_random_tokens(lm, n_sequences=1)
    total = prefix + 2 * half
    every = torch.arange(prefix + 1, total).float()
    second = torch.arange(prefix + half, total).float()
    data = {
        "scores": torch.cat([attention_scores(lm), copy_scores(lm)]),  # [5, L, H]
        "uniform_every": float((1 / (every + 1)).mean()),
        "uniform_second": float((1 / (second + 1)).mean()),
    }
    cache.save("heads", key, data, memo=True)
    return data
