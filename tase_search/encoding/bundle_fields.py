"""What a parsed ``bundle.json`` must hold to be one :func:`.query_bundle.write_bundle` wrote.

Why a module of its own: the bundle is untrusted input (an index may come from anyone), so every field
is checked by type, range and pattern before anything is read or run by its name; the rules are here,
apart from the reading and writing.
"""

from __future__ import annotations

import math
import re

from . import graph_store

#: The only names the bundle's files may have: what the writer writes (a hex key, no path).
GRAPH_NAME = re.compile(r"[0-9a-f]{40}\.onnx")
TOKENIZER_NAME = re.compile(r"[0-9a-f]{40}\.tokenizer\.json")
_MAX_PROBES, _MAX_PROBE_CHARS = 16, 20_000
_HEX64 = re.compile(r"[0-9a-f]{64}")


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def bundle_problem(bundle: object, dimension: int | None = None) -> str | None:
    """Why a parsed ``bundle.json`` is not one :func:`.query_bundle.write_bundle` wrote (None when its fields are).

    Names must be the writer's bare file names; numbers in range; probe vectors a matrix of finite
    floats, one ``dimension``-wide row per probe text (``dimension``: the index's, when given)."""
    if not isinstance(bundle, dict):
        return "it is not a JSON object"
    strings = ("model_id", "fingerprint", "prompt", "passage_prompt", "graph", "tokenizer", "pad_token")
    for key in strings:
        if not isinstance(bundle.get(key), str):
            return f"its field {key!r} is missing or not a string"
    for key in ("dimension", "max_seq_length", "pad_id", "pad_type_id"):
        if not _is_int(bundle.get(key)) or not 0 <= bundle[key] <= 1 << 20:
            return f"its field {key!r} is missing or not a whole number in range"
    if not _is_int(bundle.get("graph_bytes")) or not 0 < bundle["graph_bytes"] <= graph_store.MAX_GRAPH_BYTES:
        return "its field 'graph_bytes' is missing or out of range"
    if not isinstance(bundle.get("graph_sha256"), str) or not _HEX64.fullmatch(bundle["graph_sha256"]):
        return "its field 'graph_sha256' is missing or not a SHA-256"
    if not isinstance(bundle.get("lowercase"), bool):
        return "its field 'lowercase' is missing or not true/false"
    if not GRAPH_NAME.fullmatch(bundle["graph"]) or not TOKENIZER_NAME.fullmatch(bundle["tokenizer"]):
        return "it names files other than its own graph and tokenizer (only bare names in the folder)"
    if dimension is not None and bundle["dimension"] != dimension:
        return f"its vectors have {bundle['dimension']} dimensions, the index's {dimension}"
    if bundle["dimension"] < 1 or bundle["max_seq_length"] < 1:
        return "its dimension or maximum sequence length is zero"
    texts, vectors = bundle.get("probe_texts"), bundle.get("probe_vectors")
    if (
        not isinstance(texts, list)
        or not 1 <= len(texts) <= _MAX_PROBES
        or not all(isinstance(t, str) and len(t) <= _MAX_PROBE_CHARS for t in texts)
    ):
        return "its probe texts are missing or malformed"
    if (
        not isinstance(vectors, list)
        or len(vectors) != len(texts)
        or not all(isinstance(r, list) and len(r) == bundle["dimension"] for r in vectors)
        or not all(isinstance(x, (int, float)) and math.isfinite(x) for r in vectors for x in r)
    ):
        return "its probe vectors are missing or do not match its probe texts and dimension"
    return None
