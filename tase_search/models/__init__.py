"""Named models: one registry maps a short name to where its weights come from."""

from .registry import DEFAULT_MODEL, ModelEntry, get_entry, list_models, resolve

__all__ = ["DEFAULT_MODEL", "ModelEntry", "get_entry", "list_models", "resolve"]
