"""The encoder protocols, declared once in tase_search/encoding/protocols.py: who satisfies which."""

from __future__ import annotations

from tase_search.encoding import DocumentEncoder, QueryEncoder
from tase_search.testing import FakeEncoder


class _QueriesOnly:
    model_id = "q"
    fingerprint = "f"
    dimension = 4
    max_seq_length = 8

    def encode_query(self, texts, *, batch_size=None):  # noqa: ANN001, ANN201
        raise NotImplementedError


def test_the_fake_encoder_is_a_full_encoder() -> None:
    fake = FakeEncoder()
    assert isinstance(fake, DocumentEncoder) and isinstance(fake, QueryEncoder)


def test_a_query_only_object_is_no_document_encoder() -> None:
    assert isinstance(_QueriesOnly(), QueryEncoder)
    assert not isinstance(_QueriesOnly(), DocumentEncoder)


def test_the_old_import_path_names_the_same_protocol() -> None:
    from tase_search.encoding.protocols import DocumentEncoder as EncoderLike

    assert EncoderLike is DocumentEncoder
