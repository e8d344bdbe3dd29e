"""Moved: the fake encoder lives in :mod:`tase_search.testing` (import it from there)."""

from tase_search.testing import FakeEncoder

__all__ = ["FakeEncoder"]
