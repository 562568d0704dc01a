"""What README.md and the type stub (ddb2os/__init__.pyi) promise, checked against the code: every error id the
code can raise is in the README's Errors table (and every id there exists), and the README's calls type-check
under mypy --strict against the stub (which mypy reads, since the package has py.typed) and run."""
from __future__ import annotations

import pathlib
import re
import subprocess
import sys
import textwrap

import ddb2os

ROOT = pathlib.Path(__file__).resolve().parents[2]

# An error id: a family the code uses, a dot, a name ("sigv4.bad_url"); file names such as "sigv4.hpp" are not.
_ID = re.compile(r'"((?:json|event|record|attribute|number|base64|utf8|set|nesting|key|index|option|sigv4|'
                 r'credentials|transport|crypto)\.[a-z_]+)"')


def _code_ids() -> set:
    files = [*ROOT.glob("include/ddb2os/**/*.hpp"), ROOT / "bindings/python/src/module.cpp",
             *ROOT.glob("bindings/python/ddb2os/*.py")]
    return {m.group(1) for f in files for m in _ID.finditer(f.read_text()) if not m.group(1).endswith(".hpp")}


def _readme_ids() -> set:
    section = (ROOT / "README.md").read_text().split("\n### Errors\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    return {i for row in rows for i in re.findall(r"`([a-z0-9_]+\.[a-z0-9_]+)`", row)}


def test_every_error_id_the_code_raises_is_in_the_readmes_errors_table_and_each_listed_id_exists():
    code, readme = _code_ids(), _readme_ids()
    assert len(code) > 50, sorted(code)  # the scan found the ids (errc's table, sigv4, credentials, transport)
    assert {"json.syntax", "sigv4.bad_url", "credentials.expired", "transport.gzip", "crypto.init"} <= code
    assert sorted(code - readme) == [], "raised by the code but not in README's Errors table"
    assert sorted(readme - code) == [], "in README's Errors table but raised nowhere"


# The README's calls ("The Python module", "The Lambda handler"), each result given the type the stub promises.
# Run as written too (the handler's and the backfill's calls are only type-checked: they need servers).
_README_CALLS = '''
from __future__ import annotations

import datetime
from typing import Any, Dict, List

import ddb2os
from ddb2os import BulkRecordError, BulkResult

image: Dict[str, Any] = {"author": {"S": "Dan Brown"}, "bookTitle": {"S": "Inferno"}, "year": {"N": "2013"}}
doc: Dict[str, Any] = ddb2os.unmarshal(image)
body: bytes = ddb2os.to_json(image, numbers="exact", lists="stringify")
keys: Dict[str, Any] = {k: image[k] for k in ("author", "bookTitle")}
_id: str = ddb2os.document_id(keys, ["author", "bookTitle"])
same_id: str = ddb2os.document_id(keys, "author,bookTitle")
assert _id == same_id == "Dan Brown|Inferno"
record = {"eventName": "INSERT", "eventSource": "aws:dynamodb", "eventID": "1",
          "eventSourceARN": "arn:aws:dynamodb:us-east-1:1:table/books/stream/x",
          "dynamodb": {"Keys": keys, "NewImage": image,
                       "SequenceNumber": "100"}}
event: Dict[str, Any] = {"Records": [record]}
r: BulkResult = ddb2os.bulk_bodies(event, key_schemas={"books": ["author", "bookTitle"]})
for raw in (b'{"Records": []}', '{"Records": []}'):
    ddb2os.bulk_bodies(raw, index="books", key_schemas={"books": "author,bookTitle"}, numbers="exact",
                       lists="stringify", max_bytes=1 << 20, max_actions=100, skip_ttl_deletes=True,
                       exclude=["secret"], include=None)
ddb2os.bulk_bodies([record], key_schemas={"books": ("author", "bookTitle")})
bodies: List[bytes] = r.bodies
errors: List[BulkRecordError] = r.errors
for e in errors:
    text: str = e.id + e.path + e.message + e.sequence_number + e.event_id
    where: int = e.record
counts: int = r.superseded + r.actions + r.skipped_ttl + r.ttl_deletes
body_records: List[List[int]] = r.body_records
sequence_numbers: List[str] = r.sequence_numbers
assert bodies and body_records == [[0]] and sequence_numbers == ["100"] and not errors

at = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
headers: Dict[str, str] = ddb2os.sign("POST", "https://h.example/_bulk", {"Content-Type": "application/x-ndjson"},
                                      b"{}\\n", region="us-east-1", service="es", access_key="AKIDEXAMPLE",
                                      secret_key="not-a-secret", session_token=None, timestamp=at)
signer = ddb2os.Signer(region="us-east-1", service="es", access_key="AKIDEXAMPLE", secret_key="not-a-secret")
names: str = signer.region + signer.service + signer.access_key
again: Dict[str, str] = signer.sign("POST", "https://h.example/_bulk", [("Content-Type", "application/x-ndjson")],
                                    "{}\\n", timestamp=at)
assert again == headers
try:
    ddb2os.document_id({}, ["author"])
except ddb2os.DocumentIdError as err:
    parts: str = err.id + err.path + err.message
    assert isinstance(err, ddb2os.Error) and err.id == "key.empty"
else:
    raise AssertionError("document_id took an empty Keys")
version: str = ddb2os.__version__


def lambda_function(context: Any) -> None:  # type-checked only
    answer: Dict[str, List[Dict[str, str]]] = ddb2os.handler(event, context)
    ddb2os.handler(b'{"Records": []}', context)
    ddb2os.handler('{"Records": []}')


def backfill_books(client: Any) -> int:  # type-checked only
    from ddb2os.backfill import backfill

    done: Dict[str, Any] = backfill("books", dynamodb=client, segments=4, margin_seconds=120,
                                    environment={"INDEX_NAME": "books-backfill"}, log=print, checkpoint="books.json")
    items: int = done["items"]
    return items
'''

# Calls the stub must refuse, one per line, each named by its line's comment.
_WRONG_CALLS = '''
import ddb2os

ddb2os.bulk_bodies(123)  # wrong: an int event
ddb2os.document_id({}, 5)  # wrong: an int key schema
ddb2os.sign("GET", "https://h/", None, None)  # wrong: no region, service or keys
ddb2os.Signer("us-east-1", "es", "A", "S")  # wrong: positional credentials
ddb2os.handler(123)  # wrong: an int event
count: str = ddb2os.bulk_bodies(b"").actions  # wrong: actions is an int
ddb2os.to_json({}, numbers=1)  # wrong: numbers is a str
'''


def _mypy(tmp_path: pathlib.Path, source: str) -> subprocess.CompletedProcess:
    program = tmp_path / "program.py"
    program.write_text(textwrap.dedent(source))
    return subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--show-error-codes",
                           "--cache-dir", str(tmp_path / "cache"), str(program)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)


def test_the_readmes_calls_type_check_against_the_stub_and_run(tmp_path):
    checked = _mypy(tmp_path, _README_CALLS)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    ran = subprocess.run([sys.executable, str(tmp_path / "program.py")], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stdout + ran.stderr


def test_the_stub_refuses_wrong_calls(tmp_path):
    """The stub is what mypy reads (not an untyped module, where every call would pass): each wrong call is an
    error on its own line."""
    checked = _mypy(tmp_path, _WRONG_CALLS)
    lines = textwrap.dedent(_WRONG_CALLS).splitlines()
    wrong = [n for n, line in enumerate(lines, 1) if "# wrong:" in line]
    reported = {int(m.group(1)) for m in re.finditer(r"program\.py:(\d+): error:", checked.stdout)}
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert sorted(reported) == wrong, checked.stdout
    assert pathlib.Path(ddb2os.__file__).with_name("__init__.pyi").exists()
