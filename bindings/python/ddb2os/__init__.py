"""ddb2os: keep an OpenSearch index in sync with a DynamoDB table.

The C++ core of ddb2os as a Python module. It reads Lambda's event dicts in place (no JSON round
trip) and writes OpenSearch ``_bulk`` bodies, with exact numbers, mixed-list handling, composite
``_id`` mapping, and every bad record reported instead of dropped.
"""

from __future__ import annotations

import datetime as _datetime
import importlib as _importlib
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Tuple, Union

from ._errors import (
    CredentialsError,
    DocumentIdError,
    Error,
    EventError,
    OptionError,
    RecordError,
    SigningError,
    UnmarshalError,
)
try:
    # Not "from . import _core": its error for a missing core says "partially initialized module (most
    # likely due to a circular import)", and names no module.
    _core = _importlib.import_module("._core", __name__)
except ImportError as _e:
    # Said in words that name what to install; and run as Lambda's runtime (python3 -m
    # ddb2os.lambda_runtime), told to Lambda, as its own runtime tells of a module it cannot import.
    from ._runtime_api import core_import_error, report_import_failure

    _error = core_import_error(_e)
    report_import_failure(_error)
    if _error is _e:
        raise
    raise _error from None
from ._handler import handler

__version__: str = _core.__version__

__all__ = [
    "__version__",
    "unmarshal",
    "to_json",
    "document_id",
    "bulk_bodies",
    "sign",
    "Signer",
    "handler",
    "BulkResult",
    "BulkRecordError",
    "Error",
    "EventError",
    "RecordError",
    "UnmarshalError",
    "DocumentIdError",
    "OptionError",
    "SigningError",
    "CredentialsError",
]

BulkResult = _core.BulkResult
BulkRecordError = _core.BulkRecordError
Signer = _core.Signer
Signer.__module__ = "ddb2os"
Signer.__doc__ = """A SigV4 signer with its region, service and credentials bound once (as botocore's
SigV4Auth): ``Signer(region=..., service=..., access_key=..., secret_key=..., session_token=None)``.
``signer.sign(method, url, headers=None, body=None, *, timestamp=None)`` returns the headers to
add, as :func:`sign` does, with the same errors; it is the fast path for signing many requests.
Its repr shows the access key id, never the secret key or the token."""


def _as_dict(value: Any, name: str) -> dict:
    """A mapping argument as a dict; anything else a TypeError naming the argument (dict()'s own
    error for a str or a list says neither what nor which)."""
    if isinstance(value, dict):
        return value
    if not isinstance(value, Mapping) and not hasattr(value, "keys"):  # what dict() takes as a mapping
        raise TypeError(f"{name} must be a mapping (a dict), not {type(value).__name__}")
    return dict(value)


def unmarshal(image: Mapping[str, Any]) -> dict:
    """Convert a DynamoDB item image (attribute name -> typed value) to Python values as boto3's
    ``TypeDeserializer`` does: N -> ``decimal.Decimal``, S -> ``str``, BOOL -> ``bool``,
    NULL -> ``None``, M -> ``dict``, L -> ``list``, SS/NS/BS -> ``set``; but B -> ``bytes`` (from the
    base64 text stream events carry, or bytes as boto3 returns them), where boto3 gives its
    ``Binary`` wrapper (whose ``.value`` is those bytes).

    Raises :class:`UnmarshalError` naming the path of the first invalid value."""
    image = _as_dict(image, "image")
    return _core.unmarshal(image)


def to_json(image: Mapping[str, Any], *, numbers: str = "exact", lists: str = "stringify") -> bytes:
    """The document for an item image, as ddb2os indexes it (compact JSON, one line).

    ``numbers``: ``"exact"`` (a JSON number with the same decimal value), ``"string"`` (its text as a
    JSON string) or ``"double"`` (nearest double, lossy). ``lists``: ``"stringify"`` (mixed-type
    arrays become strings, as OpenSearch needs) or ``"keep"``."""
    image = _as_dict(image, "image")
    return _core.to_json(image, numbers=numbers, lists=lists)


def document_id(keys: Mapping[str, Any], key_schema: Union[Sequence[str], str]) -> str:
    """The OpenSearch ``_id`` for a record's ``Keys``: the value itself for one key attribute,
    ``<partition>|<sort>`` (with ``\\`` and ``|`` escaped) for two, ``sha256-<hex>`` past 512 bytes.
    ``key_schema`` is the names in key order, or one str ``"partition[,sort]"`` (as in ``bulk_bodies``'
    ``key_schemas``). An empty ``key_schema`` is allowed when ``keys`` holds a single attribute."""
    keys = _as_dict(keys, "keys")
    # A str is "partition[,sort]", as in bulk_bodies' key_schemas and TABLE_KEYS. Passed as it is: a
    # set (no order) is refused there rather than turned into a list whose order, and so the _id,
    # would change from process to process.
    return _core.document_id(keys, key_schema)


def bulk_bodies(
    event: Union[Mapping[str, Any], Sequence[Mapping[str, Any]], bytes, str],
    *,
    index: Optional[str] = None,
    key_schemas: Optional[Mapping[str, Union[Sequence[str], str]]] = None,
    numbers: str = "exact",
    lists: str = "stringify",
    max_bytes: int = 5 * 2**20,
    max_actions: int = 1000,
    skip_ttl_deletes: bool = False,
    exclude: Optional[Sequence[str]] = None,
    include: Optional[Sequence[str]] = None,
) -> BulkResult:
    """Turn a DynamoDB Streams event (the Lambda event dict, its list of records, or raw JSON
    bytes) into OpenSearch ``_bulk`` bodies.

    Returns a :class:`BulkResult`: ``.bodies`` (``list[bytes]``, NDJSON), ``.errors`` (one per bad
    record, with ``sequence_number``, ``event_id``, ``id``, ``path``, ``message``), ``.superseded``
    (earlier changes of a document replaced by a later one in the same event), ``.actions``,
    ``.skipped_ttl`` and ``.ttl_deletes`` (removes by DynamoDB's TTL, skipped or written),
    ``.body_records`` (for each body, the index in ``Records`` of each action) and
    ``.sequence_numbers``.

    ``index``: a fixed index name, or a template with ``{table}``; default: the table's name,
    lowercased. ``key_schemas``: table name -> ordered key attribute names (partition, sort).
    ``exclude``: top-level attribute names left out of every document (their values are not read);
    ``include``: the only top-level attribute names documents keep (``exclude`` still applies)."""
    if isinstance(event, Mapping) and not isinstance(event, dict):
        event = dict(event)
    # A mapping of another kind is read as a dict; anything else is refused by the module, naming
    # key_schemas (dict() of a str or a list of pairs took it apart or read it as something else).
    if isinstance(key_schemas, Mapping) and not isinstance(key_schemas, dict):
        key_schemas = dict(key_schemas)
    return _core.bulk_bodies(
        event,
        index=index,
        key_schemas=key_schemas,
        numbers=numbers,
        lists=lists,
        max_bytes=max_bytes,
        max_actions=max_actions,
        skip_ttl_deletes=skip_ttl_deletes,
        exclude=exclude,
        include=include,
    )


def sign(
    method: str,
    url: str,
    headers: Union[Mapping[str, str], Iterable[Tuple[str, str]], None],
    body: Union[bytes, str, None],
    *,
    region: str,
    service: str,
    access_key: str,
    secret_key: str,
    session_token: Optional[str] = None,
    timestamp: Optional[_datetime.datetime] = None,
) -> Dict[str, str]:
    """Sign a request with AWS Signature Version 4 and return the headers to add:
    ``Authorization``, ``X-Amz-Date``, and ``X-Amz-Security-Token`` (with a session token) and
    ``X-Amz-Content-Sha256`` (for ``aoss`` and ``s3``) where they apply.

    ``service`` is the signing name: ``"es"`` (Amazon OpenSearch Service), ``"aoss"`` (OpenSearch
    Serverless), ``"dynamodb"``, or another (signed as ``es`` is; ``s3`` as S3 wants: paths
    neither normalized nor encoded twice);
    ``timestamp`` is an aware datetime (default: now). The body is hashed with the
    GIL released. The secret key and token never appear in an error message."""
    return _core.sign(method, url, headers, body, region=region, service=service, access_key=access_key,
                      secret_key=secret_key, session_token=session_token, timestamp=timestamp)
