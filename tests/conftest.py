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


@pytest.fixture(scope="session")
def tiny_llama():
    """A tiny random Llama-family model in memory (grouped key/value heads, rotary
    positions, no tokenizer): the hooked forward's Llama adapter on three layers."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from engine.models import LoadedModel

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=128, hidden_size=48, intermediate_size=96,
                         num_hidden_layers=3, num_attention_heads=6, num_key_value_heads=2,
                         head_dim=8, max_position_embeddings=64, tie_word_embeddings=True,
                         attn_implementation="eager")
    model = LlamaForCausalLM(config).eval()
    return LoadedModel(name="tiny-llama", kind="directory", label="tiny random Llama",
                       model=model, tokenizer=None, fingerprint="tiny-llama")


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory):
    """A tiny random Llama-family checkpoint in Hugging Face format (grouped key/value
    heads, rotary positions) with GPT-2's tokenizer files: ``--model DIR`` for any tool."""
    import shutil

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from engine.paths import GPT2_TOKENIZER_DIR

    folder = tmp_path_factory.mktemp("tiny-llama")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=50257, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         head_dim=8, max_position_embeddings=128, tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(folder)
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(GPT2_TOKENIZER_DIR / name, folder / name)
    return folder


@pytest.fixture(scope="session")
def smollm2_lm():
    """SmolLM2-135M when converted here (CI converts it); otherwise the test is skipped."""
    from engine.models import load_model
    from engine.smollm2 import converted_dir

    if converted_dir() is None:
        pytest.skip("SmolLM2 is not converted here (`lineup download smollm2`)")
    return load_model("smollm2", device="cpu")
