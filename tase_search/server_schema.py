"""The HTTP API's request and response bodies (pydantic) and the request limits they enforce.

A body over a limit is refused with 422 (413 for the raw size) before any work is done; the OpenAPI
description at ``/docs`` is generated from these models.
"""

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    field_validator,
    model_validator,
)

from .search_options import MODES
from .store.docs import MAX_METADATA_DEPTH, json_depth

#: Request limits: a request over them is refused with 413 (body) or 422 (fields), before any work
#: (metadata deeper than :data:`~tase_search.store.docs.MAX_METADATA_DEPTH` too).
MAX_BODY_BYTES = 8 << 20
MAX_K = 1000
MAX_QUERY_CHARS = 2000
MAX_QUERIES = 64
MAX_DOCUMENTS = 1000
MAX_IDS = 10_000
MAX_ID_CHARS = 512
MAX_FILTER_FIELDS = 16
INDEX_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"

Mode = Literal["auto", "dense", "sparse", "hybrid"]
FilterValue = StrictBool | StrictInt | StrictFloat | Annotated[str, Field(max_length=MAX_QUERY_CHARS)]
FieldName = Annotated[str, Field(min_length=1, max_length=128)]
DocId = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]
QueryText = Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS)]
QueryBatch = Annotated[list[QueryText], Field(min_length=1, max_length=MAX_QUERIES)]
FilterItem = Annotated[str, Field(pattern=r"^[^=]+=", max_length=MAX_QUERY_CHARS)]
assert set(Mode.__args__) == set(MODES)  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------- bodies
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SearchRequest(_Strict):
    """``query``: one query, or a list of queries answered together (one result per query). ``q`` is
    accepted for it too, so the GET route's parameter names work in a POST body as they are."""

    query: QueryText | QueryBatch | None = Field(
        None, description="a query, or a list of up to 64 queries (required; `q` is the same)"
    )
    q: QueryText | QueryBatch | None = Field(None, description="the same as `query` (give one of them)")
    k: int = Field(10, ge=1, le=MAX_K, description="documents per query")
    filter: dict[FieldName, FilterValue] | None = Field(
        None, max_length=MAX_FILTER_FIELDS, description="metadata field -> value; all must match"
    )
    mode: Mode | None = Field(
        None, description="auto, dense, sparse or hybrid (default: the index's default)"
    )

    @model_validator(mode="after")
    def _one_query(self) -> "SearchRequest":
        if (self.query is None) == (self.q is None):
            raise ValueError("give the query once, as 'query' (or its alias 'q')")
        if self.query is None:
            self.query, self.q = self.q, None
        return self

    @property
    def queries(self) -> list[str]:
        """The query or queries asked, as a list."""
        query = self.query if self.query is not None else self.q
        assert query is not None  # checked by _one_query
        return [query] if isinstance(query, str) else list(query)


class Passage(BaseModel):
    index: int
    count: int
    start: int
    end: int
    text: str


class HitOut(BaseModel):
    rank: int
    id: str
    score: float
    text: str
    metadata: dict[str, Any]
    source: str | None
    passage: Passage


class QueryResult(BaseModel):
    query: str
    hits: list[HitOut]


class SearchResponse(BaseModel):
    index: str
    k: int
    mode: Mode | None
    results: list[QueryResult]
    took_ms: float


class DocumentIn(_Strict):
    id: DocId | None = Field(None, description="default: the index assigns one")
    text: str = Field(min_length=1)
    metadata: dict[str, Any] = Field(
        default_factory=dict, description=f"a JSON object nested at most {MAX_METADATA_DEPTH} levels deep"
    )

    @field_validator("metadata")
    @classmethod
    def _shallow_enough(cls, value: dict[str, Any]) -> dict[str, Any]:
        """Refused here, before any work: the index stores no metadata it could not read back."""
        depth = json_depth(value)
        if depth > MAX_METADATA_DEPTH:
            raise ValueError(
                f"metadata is nested {depth} levels deep, over the limit of {MAX_METADATA_DEPTH}; flatten it"
            )
        return value


class AddRequest(_Strict):
    documents: list[DocumentIn] = Field(min_length=1, max_length=MAX_DOCUMENTS)
    on_duplicate: Literal["error", "skip", "replace"] = "error"


class AddResponse(BaseModel):
    index: str
    added: int
    passages: int
    replaced: int
    skipped_duplicate: int
    skipped_empty: int
    unchanged: int
    ids: list[str]
    documents: int
    generation: int
    took_ms: float


class DeleteRequest(_Strict):
    ids: list[DocId] = Field(min_length=1, max_length=MAX_IDS)


class DeleteResponse(BaseModel):
    index: str
    deleted: list[str]
    missing: list[str]
    documents: int
    generation: int


class StoredDocument(BaseModel):
    id: str
    text: str
    metadata: dict[str, Any]
    source: str | None = None
    line: int | None = None


class IndexSummary(BaseModel):
    name: str
    documents: int
    generation: int
    model: str


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    indexes: list[IndexSummary]


class ErrorBody(BaseModel):
    status: int
    type: str
    message: str
    details: list[dict[str, Any]] | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: {"model": ErrorResponse} for c in (*codes, 413, 422)}
