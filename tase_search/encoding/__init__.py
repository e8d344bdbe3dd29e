"""Encoding: models in, unit vectors out, split by role.

* :mod:`.protocols` - :class:`QueryEncoder` and :class:`DocumentEncoder`, what the rest of the package takes;
* :mod:`.encoder` - :class:`Encoder`, the full encoder (queries, documents, passages);
* :mod:`.loading` - which loader a model gets: :mod:`.light_layout` / :mod:`.light_model` (transformers
  alone) or :mod:`.st_loader` (sentence-transformers);
* :mod:`.precision` - bf16 detection and the bf16 weight cast; :mod:`.fingerprint` - the weights hash;
* :mod:`.passages` - documents cut into model windows;
* :mod:`.onnx_runtime` - the ONNX Runtime query session (export, check); :mod:`.query_bundle` - the
  torch-free query path kept in the index directory.

Importing this package imports neither torch nor transformers.
"""

from __future__ import annotations

from .encoder import Encoder
from .passages import Passage
from .protocols import DocumentEncoder, QueryEncoder

__all__ = ["DocumentEncoder", "Encoder", "Passage", "QueryEncoder"]
