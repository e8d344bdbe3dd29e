"""Loading through sentence-transformers: any model it can load, and plain Hugging Face checkpoints.

Training and every model the light loader (:mod:`.light_layout`) does not reproduce come here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ModelError

if TYPE_CHECKING:  # pragma: no cover
    from sentence_transformers import SentenceTransformer


def load_sentence_transformer(
    location: str, *, device: str = "cpu", trust_remote_code: bool = False
) -> SentenceTransformer:
    """Load a SentenceTransformer from a directory or hub id.

    A plain Hugging Face checkpoint (no ``modules.json``) becomes transformer + mean pooling;
    T5-family checkpoints load encoder-only (sentence-transformers picks ``T5EncoderModel``),
    which is how the paper uses flan-t5-small. ``trust_remote_code`` stays off unless asked for.
    """
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from sentence_transformers import SentenceTransformer

    quiet_transformers()

    path = Path(location)
    try:
        if path.is_dir() and not (path / "modules.json").is_file():
            if not (path / "config.json").is_file():
                raise ModelError(
                    f"{location} has neither modules.json nor config.json: not a model directory"
                )
            return _plain_checkpoint(location, device=device, trust_remote_code=trust_remote_code)
        return SentenceTransformer(location, device=device, trust_remote_code=trust_remote_code)
    except ModelError:
        raise
    except OSError as exc:
        raise ModelError(
            f"could not load model {location!r}: {exc}. A hub id needs network access "
            "(or a warm Hugging Face cache); offline, use a registered name or a local directory."
        ) from exc
    except Exception as exc:  # custom code refused, pickled weights refused, broken files: the model's fault
        first = (str(exc).strip().splitlines() or [""])[0]
        raise ModelError(f"could not load model {location!r}: {type(exc).__name__}: {first[:300]}") from exc


def quiet_transformers() -> None:
    """Weight-loading progress bars and notices belong to transformers' own CLI, not ours."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except Exception:  # noqa: BLE001 - cosmetic only
        pass


def _plain_checkpoint(location: str, *, device: str, trust_remote_code: bool) -> SentenceTransformer:
    """Transformer + mean pooling, written against the pinned sentence-transformers 6 API (its renamed
    methods and arguments; the old names warn)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    tr = Transformer(location, model_kwargs={"trust_remote_code": trust_remote_code})
    dim = tr.get_embedding_dimension()
    if dim is None:
        config = tr.auto_model.config
        dim = config.d_model if hasattr(config, "d_model") else config.hidden_size
    return SentenceTransformer(modules=[tr, Pooling(dim, pooling_mode="mean")], device=device)
