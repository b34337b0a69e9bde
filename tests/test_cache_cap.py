"""The run cache is bounded: it never holds more than its cap, the runs used longest ago go
first, and a check gives the same report whatever the cache keeps or loses meanwhile."""

from __future__ import annotations

import json

import pytest

from engine import cache
from tests.cli import lineup


def entry(seed: int, floats: int = 2500) -> dict:
    import torch

    g = torch.Generator().manual_seed(seed)
    return {"x": torch.randn(floats, generator=g)}


def entry_bytes() -> int:
    return len(cache.encode("t", "0" * 24, entry(0)))


def test_the_cache_never_holds_more_than_its_cap(monkeypatch) -> None:
    one = entry_bytes()
    monkeypatch.setenv("LINEUP_CACHE_MB", str(3.5 * one / cache.MB))  # room for three
    limit = cache.cap().bytes
    for i in range(12):
        assert cache.save("t", f"{i:024x}", entry(i)) is not None
        assert cache.size()[1] <= limit
    assert cache.size()[0] == 3
    assert cache.STATS["evicted"] >= 9


def test_the_runs_used_longest_ago_go_first(monkeypatch) -> None:
    one = entry_bytes()
    monkeypatch.setenv("LINEUP_CACHE_MB", str(3.5 * one / cache.MB))
    keys = [f"{i:024x}" for i in range(4)]
    for i, key in enumerate(keys[:3]):
        cache.save("t", key, entry(i), memo=True)
    memo_hits = cache.STATS["memo_hits"]
    # used again, from memory (the file is not read): still the newest use
    assert cache.load("t", keys[0], memo=True) is not None
    assert cache.STATS["memo_hits"] == memo_hits + 1
    cache.save("t", keys[3], entry(3))
    assert cache.path_for("t", keys[0]).exists()
    assert not cache.path_for("t", keys[1]).exists()  # the oldest use went
    assert cache.path_for("t", keys[2]).exists() and cache.path_for("t", keys[3]).exists()


def test_an_entry_larger_than_the_cap_is_not_written(monkeypatch) -> None:
    monkeypatch.setenv("LINEUP_CACHE_MB", str(entry_bytes() / 2 / cache.MB))
    assert cache.save("t", "ab" * 12, entry(1)) is None
    assert cache.size() == (0, 0)
    assert "cap" in cache.LAST_REJECTED[0]


def test_the_cap_comes_from_the_environment_then_the_config_file(monkeypatch,
                                                                 lineup_home) -> None:
    assert cache.cap().bytes == cache.DEFAULT_CAP_MB * cache.MB
    (lineup_home / "config.toml").write_text("cache_mb = 120\n")
    assert (cache.cap().bytes, cache.cap().source) == (120 * cache.MB,
                                                      str(lineup_home / "config.toml"))
    monkeypatch.setenv("LINEUP_CACHE_MB", "80")
    assert (cache.cap().bytes, cache.cap().source) == (80 * cache.MB, "LINEUP_CACHE_MB")
    monkeypatch.setenv("LINEUP_CACHE_MB", "lots")
    bad = cache.cap()
    assert bad.bytes == cache.DEFAULT_CAP_MB * cache.MB and "lots" in (bad.problem or "")
    monkeypatch.delenv("LINEUP_CACHE_MB")
    (lineup_home / "config.toml").write_text("cache_mb = [1")
    assert "TOML" in (cache.cap().problem or "")


@pytest.fixture(scope="module")
def toy():
    from engine.models import load_model

    return load_model("toy", device="cpu")


def graded(toy) -> dict:
    from engine.judge import grade
    from engine.puzzle import Circuit, find_puzzle

    puzzle = find_puzzle("ioi-name-mover")
    circuit = Circuit(puzzle.id, list(puzzle.models["toy"].solution))
    report = grade(puzzle, circuit, toy).to_json()
    report.pop("timing_s")
    return report


def test_a_check_gives_the_same_report_whatever_the_cache_loses(toy, monkeypatch) -> None:
    first = graded(toy)
    cache.clear()
    # Another process evicting everything before each read: every run is a miss.
    real_load = cache.load

    def load_after_eviction(*args, **kwargs):
        cache.evict(0)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(cache, "load", load_after_eviction)
    assert graded(toy) == first
    monkeypatch.setattr(cache, "load", real_load)
    # A cap that keeps nothing at all.
    cache.clear()
    monkeypatch.setenv("LINEUP_CACHE_MB", "0")
    assert graded(toy) == first
    assert cache.size() == (0, 0)


def test_lineup_cache_shows_and_clears(lineup_home) -> None:
    cache.save("t", "cd" * 12, entry(2))
    shown = lineup("cache", "--json", env={"LINEUP_CACHE_MB": "50"})
    assert shown.returncode == 0, shown.stderr
    info = json.loads(shown.stdout)
    assert (info["files"], info["cap_bytes"], info["cap_source"]) == (1, 50 * cache.MB,
                                                                     "LINEUP_CACHE_MB")
    cleared = lineup("cache", "clear")
    assert cleared.returncode == 0 and "deleted 1 cached run file" in cleared.stdout
    assert cache.size() == (0, 0)
    doctor = lineup("doctor", "--json", env={"LINEUP_CACHE_MB": "many"})
    row = next(c for c in json.loads(doctor.stdout)["checks"] if c["check"] == "run cache")
    assert not row["ok"] and "many" in row["detail"] and "cap" in row["detail"]
