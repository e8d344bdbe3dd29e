"""The index store: a directory with a manifest, a FAISS index and a SQLite document store."""
