"""``manifest.json``: what an index holds and how it was built.

The manifest is the index's commit point: it names the current generation directory
(immutable once written) and the checksums of its files. Replacing the manifest atomically
is what makes a write visible; everything before that is invisible to readers.
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import IndexCorrupt, IndexMismatch
from .lock import atomic_write_bytes

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def sha256_file(path: Path, bufsize: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(bufsize):
            h.update(chunk)
    return h.hexdigest()


def package_versions() -> dict[str, str]:
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

    @property
    def generation_dir(self) -> str:
        return f"gen-{self.generation:06d}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Manifest:
        version = raw.get("format_version")
        if version != FORMAT_VERSION:
            raise IndexMismatch(
                f"index format version {version!r} is not supported by this tase-search "
                f"(expects {FORMAT_VERSION}); rebuild the index with this version"
            )
        try:
            model = ModelInfo(**raw["model"])
            rest = {k: v for k, v in raw.items() if k != "model"}
            return cls(model=model, **rest)
        except (KeyError, TypeError) as exc:
            raise IndexCorrupt(f"manifest has missing or unknown fields: {exc}") from exc

    def bumped(self, **changes: Any) -> Manifest:
        return replace(self, updated=now_iso(), versions=package_versions(), **changes)


def read_manifest(index_dir: Path) -> Manifest:
    path = Path(index_dir) / MANIFEST_NAME
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexCorrupt(f"{path} is unreadable or not JSON ({exc}); the index is damaged") from exc
    if not isinstance(raw, dict):
        raise IndexCorrupt(f"{path} is not a JSON object; the index is damaged")
    return Manifest.from_dict(raw)


def write_manifest(index_dir: Path, manifest: Manifest) -> None:
    atomic_write_bytes(Path(index_dir) / MANIFEST_NAME, manifest.to_json().encode("utf-8"))


def check_compatible(manifest: Manifest, *, model_id: str, fingerprint: str, dimension: int) -> None:
    """Refuse to search an index with vectors from other weights."""
    m = manifest.model
    if m.dimension != dimension:
        raise IndexMismatch(
            f"index vectors have dimension {m.dimension} but model {model_id!r} gives {dimension}; "
            f"load it with the model it was built with ({m.id!r}) or rebuild it"
        )
    if m.fingerprint != fingerprint:
        raise IndexMismatch(
            f"index was built with model {m.id!r} (weights {m.fingerprint[:12]}) but the loaded model is "
            f"{model_id!r} (weights {fingerprint[:12]}); use --model {m.id!r} or rebuild the index "
            "with the new model"
        )
