"""The ``tase-search`` command line: :mod:`.app` collects the commands (``main``, the console script,
also importable as ``tase_search.cli.main``); one module per command group (:mod:`.index`,
:mod:`.query`, :mod:`.admin`, :mod:`.home`, :mod:`.model`, :mod:`.sparse`, :mod:`.eval`, :mod:`.train`,
:mod:`.serve`, :mod:`.ray`); what they share is in :mod:`.common`. Commands parse arguments, call the
library and print, nothing more. Importing this package sets the CLI process's oneDNN kernel cache cap
(:mod:`.app`)."""

from __future__ import annotations

from .app import main

__all__ = ["main"]
