"""`lineup cache`: how much the judge's run cache holds, its cap, and clearing it."""

from __future__ import annotations

import argparse
from typing import Any

from game.output import Exit, add_json_option, emit_json, note


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "cache",
        help="show or clear the judge's run cache",
        description="The judge keeps the model runs of each puzzle on disk, so that the next\n"
        "check answers at once. The cache is bounded: when a new run would take it over its\n"
        "cap, the runs used longest ago are deleted. The cap is 500 MB unless the environment\n"
        "variable LINEUP_CACHE_MB or `cache_mb = N` in the config file (`lineup cache` says\n"
        "where it is) sets another number of megabytes; 0 keeps nothing. Deleting the cache\n"
        "is always safe: runs are rebuilt when they are needed.",
        epilog="examples:\n  lineup cache\n  lineup cache clear\n"
        "  LINEUP_CACHE_MB=200 lineup check ioi-name-mover my.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", nargs="?", choices=("show", "clear"), default="show",
                        help="show (the default) or clear: delete every cached run")
    add_json_option(parser)
    parser.set_defaults(run=run)


def size_text(n_bytes: int) -> str:
    """Bytes as people read them (decimal megabytes, as the cap is set)."""
    if n_bytes < 1000:
        return f"{n_bytes} bytes"
    if n_bytes < 1_000_000:
        return f"{n_bytes / 1000:.1f} kB"
    return f"{n_bytes / 1_000_000:.1f} MB"


def status() -> dict[str, Any]:
    """What the cache holds and may hold: the one summary `lineup cache` and `lineup doctor`
    print."""
    from engine import cache
    from engine.paths import config_file

    files, total = cache.size()
    limit = cache.cap()
    return {"folder": str(cache.runs_dir()), "files": files, "bytes": total,
            "cap_bytes": limit.bytes, "cap_source": limit.source,
            "cap_problem": limit.problem, "config_file": str(config_file())}


def summary(info: dict[str, Any]) -> str:
    files = info["files"]
    where = {"default": "the default", "LINEUP_CACHE_MB": "set by LINEUP_CACHE_MB"}.get(
        info["cap_source"], f"set in {info['cap_source']}")
    return (f"{files} file{'' if files == 1 else 's'}, {size_text(info['bytes'])} of a "
            f"{size_text(info['cap_bytes'])} cap ({where}) in {info['folder']}")


def run(args: argparse.Namespace) -> int:
    from engine import cache

    deleted = cache.clear() if args.action == "clear" else None
    info = status()
    if args.json:
        emit_json({**info, **({"deleted": deleted} if deleted is not None else {})})
        return Exit.OK
    if info["cap_problem"]:
        note(f"ignored: {info['cap_problem']}")
    if deleted is not None:
        print(f"deleted {deleted} cached run file{'' if deleted == 1 else 's'}")
    print(f"run cache: {summary(info)}")
    if args.action == "show":
        print(f"settings: LINEUP_CACHE_MB, or cache_mb = N in {info['config_file']}")
    return Exit.OK
