"""``python -m durably``: see :mod:`durably.cli`."""

from __future__ import annotations

import sys

from durably.cli import main

if __name__ == "__main__":
    sys.exit(main())
