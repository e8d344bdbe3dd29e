"""The checks of what callers pass to :class:`~tase_search.Retriever`, made before any slow work.

Why up front: a wrong argument used to surface as a bare AttributeError or TypeError from deep inside,
after seconds of model loading; each check here names the bad value and what to give instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from .errors import InputError
from .runtime.config import PROGRESS_MODES
from .runtime.progress import Progress


def id_list(ids: object, what: str) -> list[Any]:
    """``ids`` as a list, refusing a lone string (which would be taken letter by letter) and non-iterables."""
    if isinstance(ids, (str, bytes)):
        raise InputError(f"{what}: ids={ids!r} is a single string; give a list of ids, e.g. [{ids!r}]")
    if isinstance(ids, Mapping) or not isinstance(ids, Iterable):
        raise InputError(f"{what}: ids is {type(ids).__name__}; give a list of ids (strings)")
    return list(ids)


class OwnedProgress(Progress):
    """A reporter made from a mode name: the call that made it closes it when it ends."""


def progress_arg(progress: object) -> Callable[[int], None] | None:
    """``progress`` as a callable: None, a callable ``progress(n)``, or a mode name (``auto``, ``bar``,
    ``log``, ``off``), which becomes a :class:`tase_search.runtime.progress.Progress` reporting on stderr."""
    if progress is None or callable(progress):
        return progress  # type: ignore[return-value]
    if isinstance(progress, str) and progress in PROGRESS_MODES:
        return OwnedProgress(progress)
    raise InputError(
        f"progress={progress!r} is not valid: give None, a callable progress(n) (e.g. "
        f"tase_search.runtime.progress.Progress('log')), or one of {', '.join(PROGRESS_MODES)}"
    )


def close_progress(progress: object) -> None:
    """End a reporter made here from a mode name (its last line); a caller's own is left to the caller."""
    if isinstance(progress, OwnedProgress):
        progress.close()


def check_choice(name: str, value: object, choices: Sequence[str]) -> None:
    if value not in choices:
        raise InputError(f"{name}={value!r} is not valid: give one of {', '.join(choices)}")


def check_int(name: str, value: object, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InputError(f"{name}={value!r} is not valid: give a whole number from {low} to {high}")


def check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise InputError(f"{name}={value!r} is not valid: give True or False")


def check_docs(docs: object) -> None:
    if isinstance(docs, (str, bytes)):
        raise InputError(
            'docs must be a list or iterable of documents, not a single string; e.g. ["bir belge"]'
        )
    if isinstance(docs, Mapping) or not isinstance(docs, Iterable):
        raise InputError(
            f"docs is {type(docs).__name__}; give a list or iterable of documents (str, dict with 'text', "
            "or Document)"
        )


def model_arg(model: object) -> Any:
    """``model`` as given, a path as its string; None and plain values (numbers, bytes, containers) refused."""
    if isinstance(model, os.PathLike):
        model = os.fspath(model)
    if isinstance(model, str):
        return model
    if model is None or isinstance(model, (bytes, bool, int, float, list, tuple, dict, set)):
        raise InputError(
            f"model={model!r} is not valid: give a registered name (tase_search.models.list_models()), "
            "a model directory, a hub id, or an Encoder"
        )
    return model


def check_load_options(precision: object, batch_size: object, query_backend: object) -> None:
    from .runtime.config import PRECISIONS, QUERY_BACKENDS

    check_choice("precision", precision, PRECISIONS)
    check_int("batch_size", batch_size, 1, 65536)
    check_choice("query_backend", query_backend, QUERY_BACKENDS)
