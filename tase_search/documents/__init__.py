"""Documents on their way in: the :class:`Document` type, corpus readers (:mod:`.readers`), input
coercion (:mod:`.inputs`), binary sniffing (:mod:`.sniff`) and ingest into a write (:mod:`.ingest`)."""
