"""Persistent state shared by every worker and replica (one Store protocol)."""

from tidegate.stores.base import Store

__all__ = ["Store"]
