"""``python -m engine.toys build|check``."""

import sys

from engine.toys.measure import main

sys.exit(main())
