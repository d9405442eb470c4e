"""The voice real-stack helper reports every failure as `RealStackError` (shared with ``realstack.jasmin``)."""

from __future__ import annotations

from realstack.jasmin.errors import RealStackError

__all__ = ["RealStackError"]
