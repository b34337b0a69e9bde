"""Shared fixtures: models loaded once per session, and a private LINEUP_HOME per test."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def lineup_home(tmp_path_factory, monkeypatch):
    """Keep every test's progress and cache out of the real user folders."""
    home = tmp_path_factory.mktemp("lineup-home")
    monkeypatch.setenv("LINEUP_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def random_gpt2():
    """GPT-2 small's exact shape with seeded random weights and the real tokenizer."""
    from engine.models import load_model

    return load_model("random-gpt2", device="cpu")


@pytest.fixture(scope="session")
def gpt2():
    """Real GPT-2 when it is in the Hugging Face cache; otherwise the test is skipped."""
    from engine.models import gpt2_cache_dir, load_model

    if gpt2_cache_dir() is None:
        pytest.skip("real GPT-2 weights are not in the Hugging Face cache (no network here)")
    return load_model("gpt2", device="cpu")


def pytest_collection_modifyitems(config, items):
    """Tests marked gpt2 skip with a reason when the real weights are absent."""
    from engine.models import gpt2_cache_dir

    if gpt2_cache_dir() is not None:
        return
    skip = pytest.mark.skip(reason="needs real GPT-2 weights in the Hugging Face cache")
    for item in items:
        if "gpt2" in item.keywords:
            item.add_marker(skip)


os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network


@pytest.fixture(scope="session")
def planted():
    """Planted GPT-2-small-shaped models (engine.planted): ``planted(name) -> LoadedModel``,
    each variant built in memory once per session."""
    from engine.planted import build

    return build
