"""Shipping the runtime: the vendor layout, the static-site bundle and their sources.

Nothing here is imported by the runtime itself; ``make setup``, ``make dist`` and
``python -m durably bundle`` use it.
"""

from __future__ import annotations

from durably.bundle.site import bundle
from durably.bundle.vendor import SetupError, lay_out_vendor

__all__ = ["SetupError", "bundle", "lay_out_vendor"]
