"""Write web/durably/protocol-definition.js from the Python side of the protocol.

    python scripts/gen_protocol.py          # regenerate (`make setup` runs this)
    python scripts/gen_protocol.py --check  # exit 1 if the committed file is stale

See src/durably/browser/protocol_js.py for what the file holds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from durably.browser.protocol_js import OUTPUT, render

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that it is current")
    args = parser.parse_args()
    path = REPO / OUTPUT
    text = render()
    current = path.read_text(encoding="utf-8") if path.exists() else None
    if args.check:
        if current != text:
            print(f"{OUTPUT} is stale: run make setup", file=sys.stderr)
            return 1
        return 0
    if current != text:
        path.write_text(text, encoding="utf-8")
        print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
