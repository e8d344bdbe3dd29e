"""``python -m tase_search.cli``: the same command line as ``tase-search``."""

from .app import main

main()
