"""Retention periods such as "30d", "12h", "90m" or "45s", in milliseconds.

Only positive whole numbers with one unit parse: a typo never becomes "keep nothing".
"""

from __future__ import annotations

import re

_UNITS_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_PATTERN = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")


def parse_duration_ms(text: str) -> int:
    """Milliseconds in `text`; ValueError names the accepted forms otherwise."""
    match = _PATTERN.match(text) if isinstance(text, str) else None
    if match is None or int(match.group(1)) == 0:
        raise ValueError(
            f"invalid duration {text!r}: use a positive whole number and a unit "
            "s, m, h or d, e.g. '30d', '12h', '90m'"
        )
    return int(match.group(1)) * _UNITS_MS[match.group(2)]
