"""Model sources: random GPT-2's shape and labels, the bundled tokenizer, local directories."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.errors import ModelError, UsageError
from engine.models import gpt2_tokenizer, load_model, load_tokenizer


def test_bundled_gpt2_tokenizer_matches_the_published_ids():
    tokenizer = gpt2_tokenizer()
    text = "When John and Mary went to the shops, John gave a bag to"
    assert tokenizer.encode(text) == [2215, 1757, 290, 5335, 1816, 284, 262, 12437, 11, 1757,
                                      2921, 257, 6131, 284]
    assert len(tokenizer) == 50257
    assert len(tokenizer.encode(" Johnathan")) > 1


def test_random_gpt2_has_gpt2_small_shape_and_says_it_is_random(random_gpt2):
    lm = random_gpt2
    assert (lm.n_layers, lm.n_heads, lm.d_model, lm.d_head) == (12, 12, 768, 64)
    assert sum(p.numel() for p in lm.model.parameters()) == 124_439_808
    assert "RANDOM" in lm.label
    assert lm.block == "gpt2"
    assert lm.model.config._attn_implementation == "eager"
    assert not lm.model.training


def test_random_gpt2_is_the_same_every_time(random_gpt2):
    from engine.models import _random_gpt2

    again = _random_gpt2("cpu")
    for (name, a), (_, b) in zip(random_gpt2.model.named_parameters(),
                                 again.model.named_parameters(), strict=True):
        assert (a == b).all(), name


def test_a_saved_checkpoint_directory_loads_and_plays_the_gpt2_block(random_gpt2, tmp_path):
    random_gpt2.model.save_pretrained(tmp_path)  # weights and config, no tokenizer files
    lm = load_model(str(tmp_path))
    assert lm.kind == "directory" and lm.block == "gpt2"
    assert lm.tokenizer.encode(" John") == [1757]
    assert lm.fingerprint.startswith("directory:")


def test_bad_directories_give_one_line_errors(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        load_model(str(tmp_path / "missing/dir"))
    with pytest.raises(ModelError, match=r"no config\.json"):
        load_model(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ModelError, match="not supported"):
        load_model(str(tmp_path))


def test_unknown_names_list_the_choices():
    with pytest.raises(UsageError, match="random-gpt2"):
        load_tokenizer("gpt-7")


def test_attention_only_forward_on_32_prompts_stays_under_2_gb():
    bench = Path(__file__).resolve().parents[1] / "bench" / "bench_memory.py"
    out = subprocess.run([sys.executable, str(bench)], capture_output=True, text=True,
                         check=True, timeout=300)
    row = out.stdout.strip().splitlines()[-1].split("|")
    peak_mb = float(row[3])
    assert peak_mb < 2048, out.stdout


def test_which_block_a_model_plays_is_read_without_loading_it(random_gpt2, tmp_path):
    from engine.models import block_for_spec

    assert block_for_spec("gpt2") == block_for_spec("random-gpt2") == "gpt2"
    assert block_for_spec("toy") == "toy"
    assert block_for_spec(str(tmp_path)) is None  # no config.json
    gpt2_dir = tmp_path / "toy-looking-name"
    random_gpt2.model.config.save_pretrained(gpt2_dir)
    assert block_for_spec(str(gpt2_dir)) == "gpt2" == random_gpt2.block


def test_an_unusable_device_is_a_usage_error_for_library_callers():
    import torch

    from engine.errors import UsageError
    from engine.models import resolve_device

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: cuda is a usable device here")
    with pytest.raises(UsageError, match="not usable"):
        resolve_device("cuda")
    with pytest.raises(UsageError, match="not usable"):
        resolve_device("no-such-device")


def test_planted_test_models_load_by_name_and_play_the_gpt2_block():
    from engine.models import block_for_spec

    assert block_for_spec("planted-gpt2") == "gpt2"
    with pytest.raises(UsageError, match="no planted test model"):
        load_model("planted-nonsense")
    lm = load_model("planted-gpt2")
    assert (lm.kind, lm.block, lm.n_layers, lm.n_heads) == ("planted", "gpt2", 12, 12)
