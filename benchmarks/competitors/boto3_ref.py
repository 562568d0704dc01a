"""The boto3 reference: what a user writes instead of ddb2os (the AWS guidance seed, the blog Lambdas).

Per record: ``boto3.dynamodb.types.TypeDeserializer`` on every attribute of the image, the mixed-type list
normalization the founding Lambdas did ("lists of numbers and strings are converted to lists of strings"),
a Decimal-aware ``json.dumps``, ``_id`` from the keys, and bulk NDJSON lines::

    {"index":{"_index":"orders","_id":"user#1|42"}}
    {...document...}
    {"delete":{"_index":"orders","_id":"user#2|7"}}

Entry points:
    bulk_bodies(event_dict, key_schema=KEY_SCHEMA) -> list[bytes]   from the event as Lambda hands it over
    bulk_bodies_from_bytes(data, key_schema=KEY_SCHEMA) -> list[bytes]   json.loads first (the C++ comparison)
    bulk_ndjson(...) / bulk_ndjson_from_bytes(...) -> bytes   the bodies concatenated

Semantics, and where they differ from ddb2os (issue 2) -- check.py knows each of these:
  * Numbers: TypeDeserializer gives ``Decimal`` (38 digits, exact); the encoder then does what the Lambdas'
    ``DecimalEncoder`` does: an integral value becomes ``int`` (exact, even 9.99...E+125 as a 126-digit
    integer), any other value becomes ``float``: LOSSY beyond 15-17 significant digits (38-digit decimals,
    0.000<37 digits>, 38-digit values in E notation become nearest doubles; short ones like 1.602176634E-19
    survive). ddb2os's ``exact`` mode keeps the text. (The classic AWS sample tests ``o % 1 > 0``, which turns -0.5 into 0 and
    raises on 1E+125 in a 28-digit context; we use a correct integrality test so only precision is lost.)
  * Sets (SS/NS/BS): TypeDeserializer returns Python ``set``s, so set ORDER IS LOST (string hashing is
    randomized per process); ddb2os keeps the given order. check.py compares sets order-free.
  * B/BS: in a stream event they are base64 text, but TypeDeserializer's ``Binary`` wants bytes, so (as a user
    must) we decode them (validating) and the encoder writes base64 back: same text for canonical base64.
  * Mixed-type lists: issue 2's ``stringify`` policy, on the deserialized values (numbers as ``str(Decimal)``:
    same value as DynamoDB's text, though e.g. 0.0000001 prints as 1E-7; objects as compact JSON text).
  * ``_id``: key values read by name from ``Keys`` using the table's key schema; S as is, N as its text, B as
    its base64 text; two attributes joined by ``|`` with ``\\`` and ``|`` escaped; ids over 512 bytes become
    ``sha256-<hex>``. Index: the table name from ``eventSourceARN``, lowercased.
  * No dedup: every record gives one action, as in the Lambdas (ddb2os emits only the last change per _id;
    check.py dedups both sides).  Bodies are cut at 1000 actions / 5 MiB like ddb2os's defaults.
  * Not done (the generated corpora never need them): renaming metadata field names (``_id``...), per-record
    error reporting (a bad record raises), skipping TTL deletes.
"""
from __future__ import annotations

import base64
import hashlib
import json
from decimal import Decimal
from typing import Any, Dict, List, Optional, Sequence

from boto3.dynamodb.types import Binary, TypeDeserializer

KEY_SCHEMA: Dict[str, List[str]] = {"Orders": ["pk", "sk"], "Customers": ["pk", "sk"]}
MAX_BYTES = 5 * 1024 * 1024
MAX_ACTIONS = 1000
MAX_ID_BYTES = 512


class StreamTypeDeserializer(TypeDeserializer):
    """TypeDeserializer for stream events, whose B values are base64 text rather than bytes."""

    def _deserialize_b(self, value):
        return Binary(base64.b64decode(value, validate=True))


_deserializer = StreamTypeDeserializer()
_deserialize = _deserializer.deserialize


def _default(o: Any) -> Any:
    """The Lambdas' DecimalEncoder, plus what json cannot write natively (set, Binary)."""
    if isinstance(o, Decimal):
        if o == o.to_integral_value():
            return int(o)          # exact
        return float(o)            # nearest double: loses digits beyond ~17 significant
    if isinstance(o, set):
        return list(o)             # set order is lost
    if isinstance(o, Binary):
        return base64.b64encode(o.value).decode("ascii")
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


def dumps(o: Any) -> str:
    return json.dumps(o, default=_default, separators=(",", ":"), ensure_ascii=False)


# ---- mixed-type lists ---------------------------------------------------------------------------------------
def _kinds(values, acc: set) -> set:
    for v in values:
        if v is None:
            continue
        t = type(v)
        if t is list or t is set:
            _kinds(v, acc)
        elif t is dict:
            acc.add("object")
        elif t is str or t is Binary:
            acc.add("string")
        elif t is bool:
            acc.add("boolean")
        else:
            acc.add("number")
    return acc


def _stringify(v: Any) -> Any:
    if v is None:
        return None
    t = type(v)
    if t is str:
        return v
    if t is list or t is set:
        return [_stringify(x) for x in v]
    if t is dict:
        return dumps(normalize(v))
    if t is bool:
        return "true" if v else "false"
    if t is Binary:
        return base64.b64encode(v.value).decode("ascii")
    return str(v)  # Decimal: its exact text


def normalize(v: Any) -> Any:
    """Apply the ``stringify`` policy at every depth (in place for dicts and lists); returns the value."""
    t = type(v)
    if t is dict:
        for k, x in v.items():
            tx = type(x)
            if tx is dict or tx is list:
                v[k] = normalize(x)
        return v
    if t is list:
        if len(_kinds(v, set())) > 1:
            return [_stringify(x) for x in v]
        for i, x in enumerate(v):
            tx = type(x)
            if tx is dict or tx is list:
                v[i] = normalize(x)
        return v
    return v


# ---- ids, index, bulk lines ---------------------------------------------------------------------------------
def _key_text(av: Dict[str, Any]) -> str:
    for t in ("S", "N", "B"):
        if t in av:
            return av[t]
    raise ValueError(f"key attribute value must be S, N or B: {av!r}")


def _escape(part: str) -> str:
    return part.replace("\\", "\\\\").replace("|", "\\|")


def document_id(keys: Dict[str, Any], table: str, key_schema: Dict[str, Sequence[str]]) -> str:
    names = key_schema.get(table)
    if names is None:
        raise KeyError(f"no key schema for table {table!r}")
    parts = []
    for name in names:
        av = keys.get(name)
        if av is None:
            raise KeyError(f"table {table!r}: key attribute {name!r} missing from Keys")
        parts.append(_key_text(av))
    doc_id = parts[0] if len(parts) == 1 else "|".join(_escape(p) for p in parts)
    raw = doc_id.encode("utf-8")
    if len(raw) > MAX_ID_BYTES:
        doc_id = "sha256-" + hashlib.sha256(raw).hexdigest()
    return doc_id


def table_of(arn: str) -> str:
    # arn:aws:dynamodb:<region>:<account>:table/<Table>/stream/<label>
    return arn.split(":", 5)[5].split("/")[1]


def unmarshall_image(image: Dict[str, Any]) -> Dict[str, Any]:
    return {k: _deserialize(v) for k, v in image.items()}


def record_lines(record: Dict[str, Any], key_schema: Dict[str, Sequence[str]]) -> str:
    ddb = record["dynamodb"]
    table = table_of(record["eventSourceARN"])
    meta = {"_index": table.lower(), "_id": document_id(ddb["Keys"], table, key_schema)}
    if record["eventName"] == "REMOVE":
        return dumps({"delete": meta}) + "\n"
    image = ddb.get("NewImage")
    if image is None:
        raise KeyError(f"{record['eventName']} record without NewImage (stream view {ddb.get('StreamViewType')})")
    doc = normalize(unmarshall_image(image))
    return dumps({"index": meta}) + "\n" + dumps(doc) + "\n"


def bulk_bodies(event: Dict[str, Any], key_schema: Optional[Dict[str, Sequence[str]]] = None,
                max_bytes: int = MAX_BYTES, max_actions: int = MAX_ACTIONS) -> List[bytes]:
    schema = KEY_SCHEMA if key_schema is None else key_schema
    bodies: List[bytes] = []
    cur: List[bytes] = []
    cur_bytes = 0
    for record in event["Records"]:
        chunk = record_lines(record, schema).encode("utf-8")
        if cur and (len(cur) >= max_actions or cur_bytes + len(chunk) > max_bytes):
            bodies.append(b"".join(cur))
            cur, cur_bytes = [], 0
        cur.append(chunk)
        cur_bytes += len(chunk)
    if cur:
        bodies.append(b"".join(cur))
    return bodies


def bulk_bodies_from_bytes(data: bytes, key_schema: Optional[Dict[str, Sequence[str]]] = None,
                           max_bytes: int = MAX_BYTES, max_actions: int = MAX_ACTIONS) -> List[bytes]:
    return bulk_bodies(json.loads(data), key_schema, max_bytes, max_actions)


def bulk_ndjson(event: Dict[str, Any], key_schema: Optional[Dict[str, Sequence[str]]] = None) -> bytes:
    return b"".join(bulk_bodies(event, key_schema))


def bulk_ndjson_from_bytes(data: bytes, key_schema: Optional[Dict[str, Sequence[str]]] = None) -> bytes:
    return b"".join(bulk_bodies_from_bytes(data, key_schema))


if __name__ == "__main__":  # python3 boto3_ref.py event.json > bulk.ndjson
    import sys

    with open(sys.argv[1], "rb") as f:
        sys.stdout.buffer.write(bulk_ndjson_from_bytes(f.read()))
