"""``python -m engine.planted check [VARIANT...]``."""

import sys

from engine.planted.measure import main

sys.exit(main())
