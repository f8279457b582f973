"""Tidegate: a fast, secure, wire-compatible Ocean Protocol Provider."""

__version__ = "0.1.0"
