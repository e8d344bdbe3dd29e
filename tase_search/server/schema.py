"""The HTTP API's request and response bodies (pydantic) and the request limits they enforce.

A body over a limit is refused with 422 (413 for the raw size) before any work is done; the OpenAPI
description at ``/docs`` is generated from these models.
"""

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from ..errors import InputError
from ..query import filters as _filters
from ..query.options import MODES
from ..runtime.config import MAX_RERANK
from ..store.docs import MAX_METADATA_DEPTH, json_depth

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
MAX_VECTOR_DIM = 65_536
MAX_WHERE_CHARS = 65_536
INDEX_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"

Mode = Literal["auto", "dense", "sparse", "hybrid"]
DocId = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]
QueryText = Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS)]
QueryBatch = Annotated[list[QueryText], Field(min_length=1, max_length=MAX_QUERIES)]
FilterItem = Annotated[str, Field(pattern=r"^[^=]+=", max_length=MAX_QUERY_CHARS)]
assert set(Mode.__args__) == set(MODES)  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------- the filter
_SCALAR: dict[str, Any] = {
    "type": ["string", "number", "boolean", "null"],
    "maxLength": _filters.MAX_STRING_CHARS,
}
_ORDERED: dict[str, Any] = {"type": ["string", "number"], "maxLength": _filters.MAX_STRING_CHARS}
_SUBFILTERS: dict[str, Any] = {"type": "array", "minItems": 1, "items": {"type": "object"}}
#: The filter language (:mod:`tase_search.query.filters`, docs/filters.md) as JSON Schema: exact at the
#: top level (nested filters are objects of the same form, checked by the parser).
FILTER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A metadata filter: {field: value} (equal), {field: {operator: value, ...}} with "
    + ", ".join(_filters.COMPARISONS)
    + ', $not; {"$and" | "$or": [filters]}, {"$not": filter}. Several entries must all hold. Values '
    "compare by type (a string never equals a number); a list field matches when an element does; $ne, "
    '$nin and $not match documents without the field. "id" and "source" are the document\'s id and '
    f"source. Bounds: {_filters.MAX_DEPTH} levels, {_filters.MAX_CLAUSES} comparisons, "
    f"{_filters.MAX_VALUES} values.",
    "propertyNames": {
        "minLength": 1,
        "maxLength": _filters.MAX_FIELD_CHARS,
        "anyOf": [{"enum": list(_filters.LOGICAL_OPERATORS)}, {"pattern": "^[^$]"}],
    },
    "properties": {"$and": _SUBFILTERS, "$or": _SUBFILTERS, "$not": {"type": "object"}},
    "additionalProperties": {
        "anyOf": [
            _SCALAR,
            {
                "type": "object",
                "minProperties": 1,
                "additionalProperties": False,
                "properties": {
                    "$eq": _SCALAR,
                    "$ne": _SCALAR,
                    **{op: _ORDERED for op in ("$gt", "$gte", "$lt", "$lte")},
                    "$in": {"type": "array", "items": _SCALAR, "maxItems": _filters.MAX_VALUES},
                    "$nin": {"type": "array", "items": _SCALAR, "maxItems": _filters.MAX_VALUES},
                    "$prefix": {"type": "string"},
                    "$exists": {"type": "boolean"},
                    "$not": {"type": "object"},
                },
            },
        ]
    },
    "examples": [
        {"topic": "spor"},
        {"year": {"$gte": 2020}, "$or": [{"tags": {"$in": ["derbi", "maç"]}}, {"id": {"$prefix": "spor-"}}]},
    ],
}
FilterJSON = Annotated[dict[str, Any], WithJsonSchema(FILTER_SCHEMA)]


# ----------------------------------------------------------------------------- bodies
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MMROptions(_Strict):
    """Maximal marginal relevance: of the ``fetch_k`` nearest documents, ``k`` picked for relevance less
    similarity to those already picked (``lambda_mult`` 1: relevance only, 0: diversity only)."""

    # a JSON integer: 20 or 20.0, never true or "20"
    fetch_k: Annotated[
        StrictInt | StrictFloat,
        Field(ge=1, le=MAX_K, multiple_of=1),
        WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_K, "default": 20}),
    ] = 20
    lambda_mult: StrictFloat | StrictInt = Field(0.5, ge=0, le=1)


class SearchRequest(_Strict):
    """``query``: one query, or a list of queries answered together (one result per query). ``q`` is
    accepted for it too, so the GET route's parameter names work in a POST body as they are. ``vector``:
    a query vector made elsewhere (by the model or embedder the index was built with), instead of the
    query or with its text (one query), which the keyword part then searches (mode hybrid or auto)."""

    # the one-query rule in the schema too: `query` or `q` (not both), or a `vector`
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {"required": [name], "properties": {name: {"not": {"type": "null"}}}}
                for name in ("query", "q", "vector")
            ],
            "not": {
                "required": ["query", "q"],
                "properties": {"query": {"not": {"type": "null"}}, "q": {"not": {"type": "null"}}},
            },
        },
    )

    query: QueryText | QueryBatch | None = Field(
        None, description="a query, or a list of up to 64 queries (required; `q` is the same)"
    )
    q: QueryText | QueryBatch | None = Field(None, description="the same as `query` (give one of them)")
    k: int = Field(10, ge=1, le=MAX_K, description="documents per query")
    filter: FilterJSON | None = Field(None, description="a metadata filter (docs/filters.md)")
    mode: Mode | None = Field(
        None, description="auto, dense, sparse or hybrid (default: the index's default)"
    )
    vector: list[StrictFloat | StrictInt] | None = Field(
        None,
        min_length=1,
        max_length=MAX_VECTOR_DIM,
        description="a query vector of the index's dimension (instead of the query, or with one query text)",
    )
    mmr: MMROptions | None = Field(None, description="re-rank by maximal marginal relevance")
    min_score: StrictFloat | StrictInt | None = Field(
        None,
        description="leave out hits scoring below it (scores are probabilities of relevance with a "
        "calibrated model: 0.5 and up probably relevant, under 0.2 probably not; docs/cli.md)",
    )
    highlight: bool = Field(False, description="name each hit's sentence that best answers the query")
    rerank: int | None = Field(
        None,
        ge=0,
        le=MAX_RERANK,
        description="rerank the top N hits with the cross-encoder reranker (each hit's score is then its "
        "probability that the passage answers the query); 0 off; default the server's rerank setting",
    )

    @field_validator("filter")
    @classmethod
    def _filter_parses(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        """Refused here (422) with the parser's message naming the bad operator or value."""
        try:
            _filters.parse_filter(value)
        except InputError as exc:
            raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _one_query(self) -> "SearchRequest":
        if self.vector is not None and self.query is None and self.q is None:
            return self  # a search by vector alone
        if (self.query is None) == (self.q is None):
            raise ValueError("give the query once, as 'query' (or its alias 'q')")
        if self.query is None:
            self.query, self.q = self.q, None
        return self

    @property
    def queries(self) -> list[str]:
        """The query or queries asked, as a list."""
        query = self.query if self.query is not None else self.q
        if query is None:  # a search by vector alone (checked by _one_query)
            return [""]
        return [query] if isinstance(query, str) else list(query)


class Passage(BaseModel):
    index: int
    count: int
    start: int
    end: int
    text: str


class HighlightOut(BaseModel):
    start: int = Field(description="offset of the sentence in passage.text")
    end: int
    text: str


class HitOut(BaseModel):
    rank: int
    id: str
    score: float = Field(
        description="as score_kind says: with a calibrated model, the probability of relevance"
    )
    score_kind: str = Field(description="probability, cosine, fused or keyword (docs/cli.md)")
    mode: Mode | None = Field(description="the mode this query was searched in")
    dense_score: float | None = Field(description="the cosine (None: the dense part did not run)")
    rerank_score: float | None = Field(
        None, description="the reranker's probability (None: the hit was not reranked)"
    )
    keyword_score: float | None = Field(
        description="BM25 normalised by the query (None: the keyword part did not run)"
    )
    text: str
    metadata: dict[str, Any]
    source: str | None
    passage: Passage
    highlight: HighlightOut | None = None


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
