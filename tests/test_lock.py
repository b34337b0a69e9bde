"""requirements.lock is the whole environment: every dependency pyproject.toml names is pinned
there exactly, with hashes, and the running .venv is what the lock says (see the README's
Development section for how to change it)."""

from __future__ import annotations

import os
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "circuit-lineup"


def read_lock(path: Path) -> dict[str, tuple[Version, int]]:
    """name -> (pinned version, number of hashes), from a pip-compile file."""
    pins: dict[str, tuple[Version, int]] = {}
    for entry in re.split(r"\n(?=\S)", path.read_text()):
        line = entry.strip()
        if not line or line.startswith(("#", "-")):
            continue
        requirement = line.split("\\", 1)[0].split(";", 1)[0].strip()
        name, sep, version = requirement.partition("==")
        assert sep, f"{path.name}: not an exact pin: {requirement}"
        pins[canonicalize_name(name)] = (Version(version.strip()),
                                        entry.count("--hash=sha256:"))
    return pins


def declared() -> list[tuple[str, Requirement]]:
    """Every requirement pyproject.toml states: runtime, each extra, the build backend."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    found = [("dependencies", Requirement(r)) for r in project["project"]["dependencies"]]
    for extra, reqs in project["project"].get("optional-dependencies", {}).items():
        found += [(f"extra {extra}", Requirement(r)) for r in reqs]
    found += [("build-system", Requirement(r)) for r in project["build-system"]["requires"]]
    return found


LOCK = read_lock(ROOT / "requirements.lock")


def test_every_declared_dependency_is_pinned_with_hashes():
    for where, requirement in declared():
        name = canonicalize_name(requirement.name)
        assert name in LOCK, f"pyproject.toml ({where}) names {requirement} and the lock " \
                             "does not pin it: run `make lock`"
        version, hashes = LOCK[name]
        assert requirement.specifier.contains(version, prereleases=True), \
            f"the lock pins {name}=={version}, outside pyproject's {requirement}: run `make lock`"
        assert hashes, f"the lock pins {name} without a hash"


def test_constraints_agree_with_the_lock():
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            requirement = Requirement(line)
            version, _ = LOCK[canonicalize_name(requirement.name)]
            assert requirement.specifier.contains(version), f"constraints.txt {line} vs {version}"


def test_the_lock_reader_finds_an_unpinned_dependency(tmp_path):
    lock = tmp_path / "lock.txt"
    lock.write_text("numpy==2.0.0 \\\n    --hash=sha256:00\n    # via x\ntorch>=2\n")
    with pytest.raises(AssertionError, match="not an exact pin: torch>=2"):
        read_lock(lock)
    lock.write_text("numpy==2.0.0 \\\n    --hash=sha256:00 \\\n    --hash=sha256:11\n")
    assert read_lock(lock) == {"numpy": (Version("2.0.0"), 2)}


def installed() -> dict[str, Version]:
    found = {}
    for dist in metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"])
        if name != PROJECT:
            found[name] = Version(dist.version)
    return found


@pytest.mark.skipif(Path(sys.prefix).resolve() != (ROOT / ".venv").resolve(),
                    reason="runs inside the project's .venv only (`make test`)")
def test_the_venv_is_the_lock():
    have = installed()
    wrong = {n: (str(have.get(n)), str(v)) for n, (v, _) in LOCK.items() if have.get(n) != v}
    assert not wrong, f"installed vs locked: {wrong}; `make test` rebuilds .venv from the lock"
    extra = sorted(set(have) - set(LOCK))
    # A developer may add a tool by hand; a new machine (CI) must hold the lock and nothing else.
    if os.environ.get("CI"):
        assert not extra, f"installed but not in the lock: {extra}"
