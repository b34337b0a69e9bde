"""`lineup download gpt2`: fetch the real GPT-2 into the Hugging Face cache."""

from __future__ import annotations

import argparse
import sys

from game.output import Exit


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "download",
        help="download real GPT-2 small (needs the network once)",
        description="Download GPT-2 small's weights into the Hugging Face cache with a "
        "progress bar. Offline, it fails within seconds. Afterwards every command uses real "
        "GPT-2 by default.",
    )
    parser.add_argument("name", choices=["gpt2"], help="the model to download")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from engine.errors import ModelError
    from engine.models import download_gpt2

    try:
        folder = download_gpt2()
    except ModelError as exc:  # offline or the hub refused: a failure, not a usage error
        print(f"lineup: error: {exc}", file=sys.stderr)
        return Exit.NO
    print(f"GPT-2 is in {folder}")
    return Exit.OK
