"""``python -m durably``: runs the command line of :mod:`durably.cli`.

Only an entry point: importing it starts nothing unless it runs as ``__main__``.
"""

from __future__ import annotations

import sys

from durably.cli import main

if __name__ == "__main__":
    sys.exit(main())
