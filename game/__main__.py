"""`python -m game` is the same as `lineup`."""

from game.cli import main

raise SystemExit(main())
