"""``manifest.json``: what an index holds and how it was built.

The manifest is the index's commit point: it names the current generation directory
(immutable once written) and the checksums of its files. Replacing the manifest atomically
is what makes a write visible; everything before that is invisible to readers.
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import IndexCorrupt, IndexMismatch, IndexNotFound, TaseSearchError
from .entries import check_files_field, validate_segments
from .layout import MANIFEST_NAME, generation_name
from .lock import atomic_write_bytes
from .safeio import read_bytes

FORMAT_VERSION = 2
#: Versions this tase-search reads: 1 is one generation directory (read as one segment and upgraded by
#: the next write), 2 a list of segments (:mod:`.segment`).
READABLE_VERSIONS = (1, 2)


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def sha256_file(path: Path, bufsize: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(bufsize):
            h.update(chunk)
    return h.hexdigest()


def package_versions() -> dict[str, str]:
    """The versions of the packages an index's files depend on (looked up once per process: a write
    records them, and looking them up costs milliseconds)."""
    return dict(_package_versions())


@functools.lru_cache(maxsize=1)
def _package_versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("tase-search", "faiss-cpu", "numpy", "torch", "sentence-transformers", "transformers"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


@dataclass(frozen=True)
class ModelInfo:
    id: str
    fingerprint: str
    dimension: int
    max_seq_length: int
    normalized: bool = True
    #: the prompts the encoder put before queries and passages (None: none); part of what the vectors mean
    query_prompt: str | None = None
    passage_prompt: str | None = None


@dataclass(frozen=True)
class Manifest:
    model: ModelInfo
    factory: str  # the FAISS factory string of the vector index (without the IDMap2 wrapper)
    index_type: str  # "auto" or "custom": whether tase-search may re-pick the type as the index grows
    generation: int = 0
    rows: int = 0  # vectors (passages) searchable
    documents: int = 0
    tombstones: int = 0  # vectors of deleted documents still inside an index type that cannot remove
    metric: str = "inner_product"
    backend: str = "faiss"
    search_params: str = ""  # FAISS search-time parameters (efSearch=..., nprobe=...)
    overlap_tokens: int = 32
    format_version: int = FORMAT_VERSION
    created: str = field(default_factory=now_iso)
    updated: str = field(default_factory=now_iso)
    versions: dict[str, str] = field(default_factory=package_versions)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {bytes, sha256}
    #: format 2: the segments (:class:`.segment.Segment` as JSON), oldest first
    segments: list[dict[str, Any]] = field(default_factory=list)
    #: format 2: ``next_pid``, ``next_doc_key``, ``next_auto_id``, ``next_segment`` (ids never reused)
    counters: dict[str, int] = field(default_factory=dict)

    @property
    def generation_dir(self) -> str:
        return generation_name(self.generation)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Manifest:
        """A manifest from its parsed JSON, every field checked first (:func:`validate_manifest`)."""
        version = raw.get("format_version")
        if version not in READABLE_VERSIONS:
            raise IndexMismatch(
                f"index format version {version!r} is not supported by this tase-search "
                f"(expects {FORMAT_VERSION}); rebuild the index with this version"
            )
        validate_manifest(raw)
        try:
            model = ModelInfo(**raw["model"])
            rest = {k: v for k, v in raw.items() if k != "model"}
            return cls(model=model, **rest)
        except (KeyError, TypeError) as exc:
            raise IndexCorrupt(f"manifest has missing or unknown fields: {exc}") from exc

    def bumped(self, **changes: Any) -> Manifest:
        return replace(self, updated=now_iso(), versions=package_versions(), **changes)


def read_manifest(index_dir: Path) -> Manifest:
    """The manifest of ``index_dir``: a regular file (no link followed) of at most
    :data:`MAX_MANIFEST_BYTES`, JSON, every field validated. FileNotFoundError when there is none."""
    path = Path(index_dir) / MANIFEST_NAME
    data = read_bytes(path, str(path), MAX_MANIFEST_BYTES)
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:  # ValueError: JSONDecodeError, integer digit limit
        raise IndexCorrupt(
            f"{path} is unreadable or not JSON ({str(exc)[:200]}); the index is damaged"
        ) from exc
    except RecursionError:
        raise IndexCorrupt(
            f"{path} is JSON nested too deeply to be a manifest; the index is damaged"
        ) from None
    if not isinstance(raw, dict):
        raise IndexCorrupt(f"{path} is not a JSON object; the index is damaged")
    try:
        return Manifest.from_dict(raw)
    except IndexCorrupt as exc:
        raise IndexCorrupt(f"{path}: {exc}") from None


def read_existing(index_dir: Path) -> Manifest:
    """The manifest of an index that must exist: IndexNotFound (saying how to build one) when there is none."""
    try:
        return read_manifest(index_dir)
    except FileNotFoundError:
        hint = ""
        if Path(index_dir).is_dir() and any(Path(index_dir).iterdir()):
            hint = f" (the directory exists but has no {MANIFEST_NAME}: not an index, or never finished)"
        raise IndexNotFound(
            f"no index at {index_dir}{hint}; build one with `tase-search index CORPUS --index {index_dir}`"
        ) from None


def read_manifest_safe(index_dir: Path) -> Manifest | None:
    """The manifest, or None for any problem (only used to keep generation numbers increasing)."""
    try:
        return read_manifest(index_dir)
    except Exception:  # noqa: BLE001 - any unreadable manifest: nothing to stay above
        return None


def read_generation(index_dir: Path) -> int | None:
    """The generation the manifest names, or None when there is no valid manifest (never raises)."""
    try:
        return read_manifest(index_dir).generation
    except (OSError, TaseSearchError):
        return None


# ------------------------------------------------------------------------------------ schema
#: A manifest is a few kilobytes; anything far bigger is not one (and is not read into memory).
MAX_MANIFEST_BYTES = 1 << 20
_MAX_COUNT = (1 << 53) + 1
_HEX64 = re.compile(r"[0-9a-f]{64}")
_TOKEN = re.compile(r"[0-9A-Za-z:._+-]{1,256}")
_PARAMS = re.compile(
    r"([A-Za-z_][A-Za-z0-9_]{0,63}=[0-9]{1,9})(,[A-Za-z_][A-Za-z0-9_]{0,63}=[0-9]{1,9}){0,15}"
)
#: field -> (type, required, allowed): a ``range`` (of the value, or of a string's length), a set of
#: values, or a regex the string must match.
_Check = tuple[type, bool, Any]
_MODEL_FIELDS: dict[str, _Check] = {
    "id": (str, True, range(1, 4097)),
    "fingerprint": (str, True, _TOKEN),
    "dimension": (int, True, range(1, 65_537)),
    "max_seq_length": (int, True, range(0, (1 << 20) + 1)),
    "normalized": (bool, False, None),
    "query_prompt": (str, False, range(0, 4097)),
    "passage_prompt": (str, False, range(0, 4097)),
}
_FIELDS: dict[str, _Check] = {
    "model": (dict, True, None),
    "factory": (str, True, range(1, 257)),
    "index_type": (str, True, {"auto", "custom"}),
    "generation": (int, False, range(0, 1_000_000_000)),
    "rows": (int, False, range(0, _MAX_COUNT)),
    "documents": (int, False, range(0, _MAX_COUNT)),
    "tombstones": (int, False, range(0, _MAX_COUNT)),
    "metric": (str, False, {"inner_product"}),
    "backend": (str, False, _TOKEN),
    "search_params": (str, False, _PARAMS),
    "overlap_tokens": (int, False, range(0, 65_537)),
    "format_version": (int, True, None),
    "created": (str, False, range(0, 65)),
    "updated": (str, False, range(0, 65)),
    "versions": (dict, False, None),
    "files": (dict, False, None),
    "segments": (list, False, None),
    "counters": (dict, False, None),
}
_OPTIONAL_NULL = ("query_prompt", "passage_prompt")  # may also be null: no prompt


def validate_manifest(raw: dict[str, Any]) -> None:
    """Refuse a manifest whose fields have the wrong type, are out of range, or name files outside the
    generation directory, with one line naming the field (as :class:`IndexCorrupt`)."""
    _check_fields(raw, _FIELDS, "")
    unknown = sorted(set(raw) - set(_FIELDS))
    if unknown:
        raise IndexCorrupt(
            f"manifest has unknown field(s) {', '.join(map(repr, unknown[:5]))}; the index is damaged"
        )
    if not isinstance(raw["model"], dict):
        raise IndexCorrupt("manifest field 'model' must be an object; the index is damaged")
    _check_fields(raw["model"], _MODEL_FIELDS, "model.")
    versions = raw.get("versions", {})
    if len(versions) > 64 or not all(
        isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 64
        for k, v in versions.items()
    ):
        raise IndexCorrupt(
            "manifest field 'versions' must map package names to version strings; the index is damaged"
        )
    counters = raw.get("counters", {})
    if len(counters) > 8 or not all(
        isinstance(k, str) and len(k) <= 32 and _is_int(v, 0, _MAX_COUNT) for k, v in counters.items()
    ):
        raise IndexCorrupt("manifest field 'counters' must map names to counts; the index is damaged")
    if raw.get("segments"):
        validate_segments(raw["segments"])
    check_files_field(raw.get("files", {}))


def _is_int(v: Any, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _check_fields(raw: dict[str, Any], spec: dict[str, _Check], prefix: str) -> None:
    for key, (typ, required, allowed) in spec.items():
        if key not in raw:
            if required:
                raise IndexCorrupt(f"manifest has no {prefix}{key!r} field; the index is damaged")
            continue
        v = raw[key]
        if v is None and key in _OPTIONAL_NULL:
            continue
        ok = isinstance(v, typ) and not (typ is int and isinstance(v, bool))
        if ok and isinstance(allowed, range):
            ok = (len(v) if isinstance(v, str) else v) in allowed
        elif ok and isinstance(allowed, set):
            ok = v in allowed
        elif ok and isinstance(allowed, re.Pattern):
            ok = bool(allowed.fullmatch(v)) or (key == "search_params" and v == "")
        if not ok:
            shown = repr(v)[:60] if isinstance(v, (str, int, float, bool)) or v is None else type(v).__name__
            raise IndexCorrupt(
                f"manifest field {prefix}{key!r} has an invalid value ({shown}); the index is damaged"
            )


def write_manifest(index_dir: Path, manifest: Manifest) -> None:
    atomic_write_bytes(Path(index_dir) / MANIFEST_NAME, manifest.to_json().encode("utf-8"))


def check_compatible(
    manifest: Manifest,
    *,
    model_id: str,
    fingerprint: str,
    dimension: int,
    prompts: tuple[str | None, str | None] | None = None,
) -> None:
    """Refuse to search an index with vectors from other weights, or made with other prompts.

    ``prompts`` is the encoder's ``(query_prompt, passage_prompt)``; None skips that check.
    """
    m = manifest.model
    if prompts is not None and (m.query_prompt, m.passage_prompt) != tuple(prompts):
        raise IndexMismatch(
            f"index was built with prompts query={m.query_prompt!r} passage={m.passage_prompt!r} but model "
            f"{model_id!r} uses query={prompts[0]!r} passage={prompts[1]!r}; load it with the model it was "
            f"built with ({m.id!r}) or rebuild the index"
        )
    if m.dimension != dimension:
        raise IndexMismatch(
            f"index vectors have dimension {m.dimension} but model {model_id!r} gives {dimension}; "
            f"load it with the model it was built with ({m.id!r}) or rebuild it"
        )
    if m.fingerprint != fingerprint and (m.id.startswith("external:") or model_id.startswith("external:")):
        raise IndexMismatch(
            f"index vectors were made by {m.id!r} ({m.dimension} dimensions), not by {model_id!r}: give the "
            "embedder the index was built with (the same name), or build a new index"
        )
    if m.fingerprint != fingerprint and m.id == model_id:
        from ..models.registry import earlier_version

        how = earlier_version(m.id, m.fingerprint)
        if how is not None:
            raise IndexMismatch(
                f"index was built with an earlier version of {m.id!r} (weights {m.fingerprint[:12]}), not the "
                f"one installed now (weights {fingerprint[:12]}): {how}"
            )
    if m.fingerprint != fingerprint:
        raise IndexMismatch(
            f"index was built with model {m.id!r} (weights {m.fingerprint[:12]}) but the loaded model is "
            f"{model_id!r} (weights {fingerprint[:12]}); use --model {m.id!r} or rebuild the index "
            "with the new model"
        )


def model_info(encoder: Any) -> ModelInfo:
    """What a manifest records of the encoder an index is built with."""
    return ModelInfo(
        id=encoder.model_id,
        fingerprint=encoder.fingerprint,
        dimension=encoder.dimension,
        max_seq_length=encoder.max_seq_length,
        normalized=bool(getattr(encoder, "normalized", True)),
        query_prompt=getattr(encoder, "query_prompt", None),
        passage_prompt=getattr(encoder, "passage_prompt", None),
    )


def new_manifest(encoder: Any, factory: str | None, backend: str, overlap: int) -> Manifest:
    """The manifest of a first build: an explicit ``factory`` fixes the index type (``custom``); without
    one it starts Flat and follows the corpus size (``auto``)."""
    return Manifest(
        model=model_info(encoder),
        factory=factory or "Flat",
        index_type="custom" if factory else "auto",
        backend=backend,
        overlap_tokens=overlap,
    )


def check_encoder(manifest: Manifest, encoder: Any) -> None:
    """:func:`check_compatible` with an encoder's weights, dimension and prompts."""
    check_compatible(
        manifest,
        model_id=encoder.model_id,
        fingerprint=encoder.fingerprint,
        dimension=encoder.dimension,
        prompts=(getattr(encoder, "query_prompt", None), getattr(encoder, "passage_prompt", None)),
    )
    normalized = getattr(encoder, "normalized", None)  # an external embedder's choice (ours: always)
    if normalized is not None and bool(normalized) != manifest.model.normalized:
        raise IndexMismatch(
            f"index vectors of {manifest.model.id!r} are {'' if manifest.model.normalized else 'not '}"
            f"normalised to unit length but the embedder given {'normalises' if normalized else 'does not'}; "
            f"give normalize={manifest.model.normalized}"
        )
