"""Query-side building blocks shared by every front end (Retriever, CLI, HTTP, the integrations).

:mod:`.filters` is the one metadata filter language (parsed, validated, evaluated in Python); the
store compiles it to SQL (:mod:`tase_search.store.filter_sql`). This package imports nothing at
import time, so the store may use :mod:`.filters` without an import circle.
"""
