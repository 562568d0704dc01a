"""Backfill: the items a table already holds, written into OpenSearch the way the handler writes stream
changes, so that an index can start from a table that existed before its stream did.

    python -m ddb2os.backfill TABLE [--segments N] [--page-size N] [--margin-seconds S] [--page-seconds S]
                                    [--checkpoint FILE]

The OpenSearch side is configured by the handler's environment variables (``OPENSEARCH_ENDPOINT``,
``INDEX_NAME``, ``TABLE_KEYS``, ... see the README; ``REFRESH`` is ignored); the table is read with
boto3's ``Scan`` (``DYNAMODB_ENDPOINT``, ``AWS_REGION`` and the usual AWS credentials).

Order with the stream. Every item is written with the version a stream change made
``margin_seconds`` before the scan started would carry, so a change made after the scan started
(its ``ApproximateCreationDateTime`` is later) always wins over the backfill, whichever reaches
OpenSearch first, and the backfill wins over older changes. Enable the stream and its handler
first; the margin covers the clock difference between this host and DynamoDB (60 s by default;
DynamoDB Local rounds its times to the minute). A page is written within ``page_seconds`` (30) of
being read, or not at all: OpenSearch remembers a deleted document's version for
``index.gc_deletes`` (60 s), and a page written later than that after one of its items was deleted
would bring the document back.

Nothing is lost: an item OpenSearch refuses goes to the dead-letter index as a stream record would.
Items that could not be written in time (OpenSearch unreachable, a refused request) stop the
backfill after the pages being written: they are listed in the result (and the command exits with
1), and a second run writes everything again (the writes are idempotent). With a checkpoint file, a
second run goes on from where each segment's last fully written page ended instead: the file holds, per
Scan segment, the key to start from (or that the segment is done); it is written after each such page and
removed when the whole table has been written. A resumed run reads its items afresh and versions them
from its own start, so the order with the stream holds as in a first run.
"""
from __future__ import annotations

import argparse
import base64
import concurrent.futures
import decimal
import json
import math
import os
import sys
import threading
import time
import uuid
from typing import Any, Callable, Dict, List, Mapping, Optional

from . import _core
from ._errors import Error
from ._handler import config_from_environment, _index_name_problem, shorten_reason

__all__ = ["backfill", "main", "BackfillError"]

MAX_SEGMENTS = 1000  # a thread and an OpenSearch connection each
MAX_MARGIN_SECONDS = 86400.0  # a stream keeps a day of changes: a larger margin has no use


class BackfillError(RuntimeError):
    """A segment's Scan or write raised (DynamoDB refused a Scan, ...). The other segments ended after their
    page; ``result`` holds what the run did, its failed items listed as in a finished run's result, and
    ``errors`` each segment's exception (``{segment: exception}``; the first is also ``__cause__``)."""

    def __init__(self, message: str, result: Optional[Dict[str, Any]] = None,
                 errors: Optional[Dict[int, BaseException]] = None):
        super().__init__(message)
        self.result = {} if result is None else result
        self.errors = {} if errors is None else errors

    def __reduce__(self):  # pickled and copied with its parts, as the module's other errors are
        return (type(self), (str(self), self.result, self.errors), self.__dict__)

def _key_names(description: Mapping[str, Any]) -> List[str]:
    schema = description["KeySchema"]
    return [k["AttributeName"] for kind in ("HASH", "RANGE") for k in schema if k["KeyType"] == kind]


def _handler_keys(config: Mapping[str, Any], table: str, described: List[str]) -> List[str]:
    """The key schema the handler uses for the table (so both write the same _ids): TABLE_KEYS, then
    DB_HASH_KEY/DB_SORT_KEY, then DescribeTable's. One naming other attributes than the table's
    key is an error: the handler's records would fail with it."""
    keys = config["table_keys"].get(table) or config["default_keys"] or described
    if sorted(keys) != sorted(described):
        raise ValueError(f"the key schema configured for table {table!r} ({','.join(keys)}) is not the table's "
                         f"key ({','.join(described)})")
    return list(keys)


def _check_clock(answer: Mapping[str, Any], margin_seconds: float) -> None:
    """Refuses a host clock ahead of DynamoDB's by more than the margin (read from the Date of an
    answer, to the second): the backfill's versions would then beat changes made after it started."""
    date = ((answer.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}).get("date")
    if not date:
        return
    import email.utils
    try:
        server = email.utils.parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError, OverflowError):  # OverflowError: a year past what datetime holds
        return
    ahead = time.time() - server
    if ahead > margin_seconds:
        raise ValueError(f"this host's clock is {ahead:.0f} s ahead of DynamoDB's (the Date of its answer), more than "
                         f"margin_seconds ({margin_seconds:g}): fix the clock or raise the margin")


def _typed_key(keys: Mapping[str, Any]) -> Dict[str, Any]:
    """A failed item's key as DynamoDB types it ({"pk": {"N": "1.5"}}, B in base64): exact, JSON-safe, and
    what GetItem takes (a plain 1.5 would be a float, and the same as the string "1.5" once printed)."""
    return {k: {t: base64.b64encode(v).decode() if t == "B" else v for t, v in typed.items()}
            for k, typed in keys.items()}


def _check_index(config: Mapping[str, Any], name: str, keys: List[str], source_arn: str) -> None:
    """Refuses a table whose index name, or dead-letter index name, would be invalid (a name starting
    with '_', a template that makes it too long), before any Scan: every item would go to the
    dead-letter index, or no dead letter could be written. The handler cannot know its tables in
    advance; the backfill can. Asked of the engine's own rules."""
    probe = {"eventID": "probe", "eventName": "REMOVE", "eventSourceARN": source_arn,
             "dynamodb": {"Keys": {k: {"S": "probe"} for k in keys}, "SequenceNumber": "1",
                          "ApproximateCreationDateTime": 1}}
    result = _core.bulk_bodies({"Records": [probe]}, index=config["index"] or None, key_schemas={name: keys})
    for e in result.errors:
        if e.id == "index.invalid":
            raise ValueError(f"table {name!r} cannot be written: {e.message} (set INDEX_NAME or INDEX_TEMPLATE)")
        # Any other: the ARN names no table the engine can read (every record would fail the same way).
        raise ValueError(f"table {name!r} cannot be written: DescribeTable's TableArn "
                         f"{source_arn[:source_arn.rfind('/stream/')]!r} names no table ({e.id})")
    if config["dlq_index"]:
        index = json.loads(result.bodies[0].split(b"\n")[0])["delete"]["_index"]
        problem = _index_name_problem(config["dlq_index"].replace("{index}", index))
        if problem is not None:
            raise ValueError(f"table {name!r} cannot be written: its dead-letter index: {problem} (set DLQ_INDEX)")


def _untyped_key(keys: Any, types: Optional[Mapping[str, Optional[str]]] = None) -> Dict[str, Any]:
    """_typed_key's inverse: B back to bytes, as boto3's client takes an ExclusiveStartKey. ValueError for
    anything else than key attributes typed S, N or B; with ``types`` (the table's key attributes, each
    with its type when DescribeTable gave it), for other attributes than those, or another type."""
    if not isinstance(keys, dict) or not keys:
        raise ValueError("not a key")
    if types is not None and set(keys) != set(types):
        raise ValueError("not the table's key")
    out = {}
    for k, typed in keys.items():
        if not isinstance(typed, dict) or len(typed) != 1:
            raise ValueError("not a key")
        (t, v), = typed.items()
        if t not in ("S", "N", "B") or not isinstance(v, str) or (types is not None and types[k] not in (None, t)):
            raise ValueError("not a key")
        if t == "N":
            try:
                if not decimal.Decimal(v).is_finite():
                    raise ValueError("not a number")
            except decimal.InvalidOperation:
                raise ValueError("not a number") from None
        out[k] = {t: base64.b64decode(v, validate=True) if t == "B" else v}
    return out


def _key_types(description: Mapping[str, Any], keys: List[str]) -> Dict[str, Optional[str]]:
    """Each key attribute's type (S, N or B) from DescribeTable's AttributeDefinitions, None where absent."""
    defined = {a.get("AttributeName"): a.get("AttributeType") for a in description.get("AttributeDefinitions") or []}
    return {k: defined.get(k) for k in keys}


class _Checkpoint:
    """Where each Scan segment goes on from, in a JSON file written whole (a new file renamed over the old),
    so that a run stopped at any moment leaves the last complete state."""

    def __init__(self, path: str, table_arn: str, table_id: Optional[str], segments: int, target: Dict[str, Any],
                 key_types: Mapping[str, Optional[str]]):
        self.path, self.lock, self.resumed, self.key_types = path, threading.Lock(), False, key_types
        # The table's id too: a table deleted and created again under the same name has the same ARN,
        # and its items before the saved keys would be skipped.
        self.state: Dict[str, Any] = {"table": table_arn, "table_id": table_id, "segments": segments,
                                      "target": target, "next": {}, "done": []}
        try:
            with open(path, encoding="utf-8") as f:
                saved = json.load(f)
        except FileNotFoundError:
            self._check_writable()
            return
        except (OSError, ValueError, RecursionError) as e:  # RecursionError: JSON nested past Python's limit
            raise ValueError(f"checkpoint {path!r} cannot be read: {e}") from None
        if not (isinstance(saved, dict) and isinstance(saved.get("next"), dict) and isinstance(saved.get("done"), list)
                and isinstance(saved.get("target"), dict)):
            raise ValueError(f"checkpoint {path!r} is not a ddb2os backfill checkpoint")
        if saved.get("table") != table_arn or saved.get("segments") != segments:
            raise ValueError(f"checkpoint {path!r} is for table {saved.get('table')!r} in {saved.get('segments')} "
                             f"segments, not {table_arn!r} in {segments}: give the same table and --segments, "
                             f"or remove the file to start over")
        # A file without one was written before the id was recorded: the ARN and the rest are checked.
        if "table_id" in saved and saved["table_id"] != table_id:
            raise ValueError(f"checkpoint {path!r} is for another table of that name (TableId "
                             f"{saved.get('table_id')!r}, not {table_id!r}: deleted and created again since); "
                             f"remove the file to start over")
        # The pages before the checkpoint went where, and as what, the first run wrote them: resumed
        # elsewhere, or with other documents, they would be missing there, silently.
        changed = [k for k in target if saved["target"].get(k) != target[k]]
        if changed:
            raise ValueError(f"checkpoint {path!r} was written with other settings ({', '.join(changed)} differ): "
                             f"its pages are not in what this run writes; remove the file to start over")
        for segment, key in saved["next"].items():
            try:
                if not (segment.isdigit() and int(segment) < segments):
                    raise ValueError("not a segment")
                _untyped_key(key, key_types)
            except (ValueError, TypeError):
                raise ValueError(f"checkpoint {path!r} holds no valid start key for segment {segment!r}") from None
        if not all(isinstance(s, int) and 0 <= s < segments for s in saved["done"]):
            raise ValueError(f"checkpoint {path!r} lists segments that are not 0 to {segments - 1} as done")
        self._check_writable()
        self.state, self.resumed = saved, True

    def _temporary(self) -> str:
        return f"{self.path}.{os.getpid()}.tmp"

    def _check_writable(self) -> None:
        """Before any Scan: a checkpoint that cannot be written would stop the run after its first page."""
        try:
            with open(self._temporary(), "w", encoding="utf-8"):
                pass
            os.remove(self._temporary())
        except OSError as e:
            raise ValueError(f"checkpoint {self.path!r} cannot be written: {e.strerror or e}") from None

    def start(self, segment: int) -> Optional[Dict[str, Any]]:
        """None: the segment is done; {}: from its first item; else the ExclusiveStartKey."""
        if segment in self.state["done"]:
            return None
        key = self.state["next"].get(str(segment))
        return _untyped_key(key, self.key_types) if key else {}

    def advance(self, segment: int, last_key: Optional[Mapping[str, Any]]) -> None:
        with self.lock:
            if last_key is None:
                self.state["next"].pop(str(segment), None)
                self.state["done"].append(segment)
            else:
                self.state["next"][str(segment)] = _typed_key(last_key)
            temporary = self._temporary()
            try:
                with open(temporary, "w", encoding="utf-8") as f:
                    json.dump(self.state, f)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(temporary, self.path)
            except BaseException:
                try:
                    os.remove(temporary)
                except OSError:
                    pass
                raise

    def finish(self) -> None:
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass


def backfill(table: str, *, dynamodb: Any = None, segments: int = 1, page_size: Optional[int] = None,
             margin_seconds: float = 60.0, page_seconds: float = 30.0,
             environment: Optional[Mapping[str, str]] = None,
             log: Optional[Callable[[str], None]] = None, checkpoint: Optional[str] = None) -> Dict[str, Any]:
    """Writes every item of ``table`` into OpenSearch; returns the counts and the failures:
    ``{"items", "indexed", "version_conflicts", "dead_lettered", "failed": [{"key", "reason"}],
    "stopped", "pages", "seconds", "version", "resumed"}``. ``version_conflicts``: items a newer stream
    change had already written; ``stopped``: items failed, and the scan was not finished; ``resumed``: the
    run went on from a checkpoint.

    ``dynamodb``: a boto3 DynamoDB client (default: one for ``DYNAMODB_ENDPOINT`` / ``AWS_REGION``).
    ``segments``: parallel Scan segments, each with its own connection to OpenSearch.
    ``page_seconds``: the time from a page's Scan to the end of its writes (retries included); keep
    it below the index's ``index.gc_deletes``. ``environment``: the handler's variables (default
    ``os.environ``). ``log``: one JSON line per page. ``checkpoint``: a file to go on from, and to record
    progress in (see the module's documentation)."""
    if not (isinstance(segments, int) and 1 <= segments <= MAX_SEGMENTS):
        raise ValueError(f"segments must be a whole number from 1 to {MAX_SEGMENTS} (a thread and an OpenSearch "
                         f"connection each)")
    if page_size is not None and not (isinstance(page_size, int) and page_size >= 1):
        raise ValueError("page_size must be a whole number, at least 1")
    if not (math.isfinite(margin_seconds) and margin_seconds >= 1):
        raise ValueError("margin_seconds must be at least 1 (ApproximateCreationDateTime is in whole seconds)")
    if margin_seconds > MAX_MARGIN_SECONDS:
        raise ValueError(f"margin_seconds must be at most {MAX_MARGIN_SECONDS:g} (a stream keeps a day of changes; "
                         f"a larger margin only lets older changes win over the backfill)")
    if checkpoint is not None:
        checkpoint = os.fspath(checkpoint)  # a str or a path-like object (pathlib.Path)
        if not isinstance(checkpoint, str) or not checkpoint:
            raise ValueError("checkpoint must be a file name" + (" (it is empty)" if checkpoint == "" else ""))
    if not (math.isfinite(page_seconds) and page_seconds > 0):
        raise ValueError("page_seconds must be a positive number")
    env = dict(os.environ if environment is None else environment)
    config = config_from_environment(env)
    config["refresh"] = ""  # a refresh per page only slows the backfill down
    if dynamodb is None:
        # botocore would send such a value and, refused by its HTTP client, quote it in its error (a
        # session token with a CR from a .env file): refused here by name, as the engine refuses it.
        for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            if any(ord(c) < 0x20 or ord(c) == 0x7F for c in env.get(var, "")):
                raise ValueError(f"{var} holds a control character (a line break?): it cannot be sent in a header")
        try:
            import boto3  # only here: not part of the handler's cold start
            from botocore.config import Config as BotoConfig
        except ImportError as e:  # Lambda's Python runtime has boto3; a plain pip install of ddb2os does not
            raise ImportError(f"the backfill reads DynamoDB with boto3, which cannot be imported ({e}): "
                              "pip install 'ddb2os[backfill]', or pass dynamodb= a client of your own") from e
        # Adaptive retries: a throttled Scan slows down and goes on, rather than ending the whole
        # backfill after botocore's default few attempts (a rerun starts from the first item).
        # The client reads what the engine reads: the endpoint as the handler parses it (a bare host is
        # https://) and, when `environment` is given, its credentials or profile rather than os.environ's.
        session = boto3.session.Session(**_session_arguments(env)) if environment is not None else boto3
        endpoint = config["dynamodb_endpoint"] if env.get("DYNAMODB_ENDPOINT", "").strip() else None
        dynamodb = session.client("dynamodb", endpoint_url=endpoint, region_name=config["region"] or None,
                                  config=BotoConfig(retries={"mode": "adaptive", "max_attempts": 10}))
    answer = dynamodb.describe_table(TableName=table)
    description = answer["Table"]
    name = description["TableName"]  # `table` may be an ARN
    _check_clock(answer, margin_seconds)
    described = _key_names(description)
    keys = _handler_keys(config, name, described)
    if keys != described and log is not None:
        # Kept (the handler makes its _ids in the configured order, and both must agree), but said: a
        # swapped TABLE_KEYS gives "<sort>|<partition>" _ids, which only the backfill can notice.
        log(json.dumps({"message": "ddb2os backfill: the configured key order is not the table's",
                        "table": name, "configured": keys, "table_key": described}))
    config["table_keys"] = {**config["table_keys"], name: keys}  # no DescribeTable through the engine
    # The table's ARN in the stream-ARN form the engine reads the table name from.
    if not isinstance(description.get("TableArn"), str):
        raise ValueError(f"table {name!r}: DescribeTable's answer has no TableArn")
    source_arn = description["TableArn"] + "/stream/backfill"
    _check_index(config, name, keys, source_arn)
    target = {"endpoint": config["endpoint"], "index": config["index"], "dlq_index": config["dlq_index"],
              "numbers": config["numbers"], "lists": config["lists"], "exclude": config["exclude"], "include": config["include"], "keys": keys}
    progress = None if checkpoint is None else _Checkpoint(
        checkpoint, description["TableArn"], description.get("TableId"), segments, target, _key_types(description, keys))
    started = time.time()
    run = uuid.uuid4().hex[:12]  # in every eventID: a resumed run's pages are numbered from 0 again
    version = math.floor(started - margin_seconds)

    lock = threading.Lock()
    stop = threading.Event()
    totals: Dict[str, Any] = {"items": 0, "indexed": 0, "version_conflicts": 0, "dead_lettered": 0, "failed": [],
                              "stopped": False, "pages": 0}

    def write_page(engine: Any, segment: int, page: int, items: List[Dict[str, Any]], read_at: float) -> bool:
        records = []
        for n, item in enumerate(items):
            # Unique per table and run: a dead letter's _id is its record's eventID (the version alone
            # is shared by runs started in the same second, and a resumed run numbers pages from 0).
            sequence = f"backfill-{name}-{version}-{run}-{segment}-{page}-{n}"
            records.append({
                "eventID": sequence, "eventName": "INSERT", "eventSourceARN": source_arn,
                "dynamodb": {"ApproximateCreationDateTime": version, "Keys": {k: item[k] for k in keys},
                             "NewImage": item, "SequenceNumber": sequence, "StreamViewType": "NEW_IMAGE"},
            })
        # The engine retries until the page's time is up, counted from the Scan.
        # On the monotonic clock: a wall clock stepped back would stretch the budget past gc_deletes.
        report = engine.process({"Records": records}, max(read_at + page_seconds - time.monotonic(), 0.001))
        failed = [{"key": _typed_key(records[f["record"]]["dynamodb"]["Keys"]),
                   "reason": shorten_reason(f["reason"])} for f in report["failures"]]
        with lock:
            totals["items"] += len(items)
            for k in ("indexed", "version_conflicts", "dead_lettered"):
                totals[k] += report[k]
            totals["failed"].extend(failed)
            totals["pages"] += 1
            if log is not None:
                log(json.dumps({"message": "ddb2os backfill page", "table": name, "segment": segment, "page": page,
                                "items": len(items), "indexed": report["indexed"],
                                "version_conflicts": report["version_conflicts"],
                                "dead_lettered": report["dead_lettered"], "failed": len(failed)}))
        if failed:
            stop.set()
        return not failed

    scanning = [0]  # segments in scan(), counted under `idle`: what an interrupted run waits for
    idle = threading.Condition()

    def scan(segment: int) -> None:
        with idle:
            scanning[0] += 1
        try:
            scan_segment(segment)
        finally:
            with idle:
                scanning[0] -= 1
                idle.notify_all()

    first_engine: List[Any] = []
    engines_lock = threading.Lock()

    def scan_segment(segment: int) -> None:
        # One engine per segment (a segment never waits for another's page), sharing the first one's
        # credentials: many segments fetching them at once from the instance metadata service (rate-limited
        # per instance) or a container endpoint could be refused, and every page then fails.
        with engines_lock:
            if first_engine:
                engine = _core.SyncEngine(config, env, credentials_from=first_engine[0])
            else:
                engine = _core.SyncEngine(config, env)
                first_engine.append(engine)
        # The table as given: an ARN names another account's table, a bare name the caller's own.
        kwargs: Dict[str, Any] = {"TableName": table, "ConsistentRead": True}
        if segments > 1:
            kwargs.update(Segment=segment, TotalSegments=segments)
        if page_size:
            kwargs["Limit"] = page_size
        if progress is not None:
            start = progress.start(segment)
            if start is None:
                return  # written whole by an earlier run
            if start:
                kwargs["ExclusiveStartKey"] = start
        page = 0
        try:
            while not stop.is_set():
                answer = dynamodb.scan(**kwargs)
                read_at = time.monotonic()
                written = True
                if answer.get("Items"):
                    written = write_page(engine, segment, page, answer["Items"], read_at)
                    page += 1
                if progress is not None and written:
                    progress.advance(segment, answer.get("LastEvaluatedKey"))
                if "LastEvaluatedKey" not in answer:
                    return
                kwargs["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
            totals["stopped"] = True
        except BaseException:
            stop.set()  # the other segments end after their page
            raise

    errors: Dict[int, Exception] = {}
    interrupted: Optional[BaseException] = None
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=segments) as pool:
            try:
                futures = [pool.submit(scan, s) for s in range(segments)]
                for segment, f in enumerate(futures):
                    try:
                        f.result()
                    except Exception as e:  # the others stop after their page; their failures are kept
                        errors[segment] = e
            except BaseException as e:  # Ctrl-C, or no thread to start: the others stop after their page
                stop.set()
                if log is not None:
                    with lock:  # as the segments log: two lines written at once could run together
                        log(json.dumps({"message": "ddb2os backfill interrupted: waiting for the pages being written"}))
                interrupted = e
        if interrupted is not None:  # the pool waits for its threads, but not one it was starting as Ctrl-C came
            with idle:
                idle.wait_for(lambda: scanning[0] == 0)
    except BaseException as e:  # a second Ctrl-C while waiting for them (or a first one then): not waited for
        stop.set()
        interrupted = e
    totals["seconds"] = round(time.time() - started, 3)
    totals["version"] = version
    totals["resumed"] = progress is not None and progress.resumed
    if interrupted is not None:
        # With the run's counts and failed items so far (final unless a second Ctrl-C cut the wait short).
        totals["stopped"] = True
        interrupted.backfill_result = totals  # type: ignore[attr-defined]
        raise interrupted
    if errors:
        totals["stopped"] = True
        # Segments that failed alike are named together (every segment's Scan refused: one line, not 1,000).
        alike: Dict[str, List[int]] = {}
        for segment, e in errors.items():
            alike.setdefault(f"{type(e).__name__}: {e}", []).append(segment)
        said = "; ".join(f"segment{'s' if len(s) > 1 else ''} {_ranges(s)}: {text}" for text, s in alike.items())
        kept = _kept(checkpoint)
        raise BackfillError(said + (f"; {kept}" if kept else ""), totals, errors) from next(iter(errors.values()))
    if progress is not None and not totals["failed"] and not totals["stopped"]:
        progress.finish()
    return totals


def _ranges(numbers: List[int]) -> str:
    """[0, 1, 2, 5] -> "0-2, 5"."""
    runs: List[List[int]] = []
    for n in sorted(numbers):
        if runs and runs[-1][1] == n - 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _kept(checkpoint: Optional[str]) -> Optional[str]:
    """What a stopped run says of its checkpoint, when there is one to go on from."""
    if checkpoint and os.path.exists(checkpoint):
        return f"checkpoint {checkpoint!r} kept: a rerun goes on from it"
    return None


def _rerun(checkpoint: Optional[str]) -> str:
    """What a rerun of a stopped command does."""
    return _kept(checkpoint) or "a rerun writes everything again"


def _session_arguments(env: Mapping[str, str]) -> Dict[str, Any]:
    """boto3 Session arguments for the credentials `env` names (keys, else a profile), as the engine reads them."""
    key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        return {"aws_access_key_id": key, "aws_secret_access_key": secret,
                "aws_session_token": env.get("AWS_SECURITY_TOKEN") or env.get("AWS_SESSION_TOKEN") or None}
    profile = env.get("AWS_DEFAULT_PROFILE") or env.get("AWS_PROFILE")
    return {"profile_name": profile} if profile else {}


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ddb2os.backfill", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("table", help="the DynamoDB table to read (name or ARN)")
    p.add_argument("--segments", type=int, default=1, help="parallel Scan segments (1)")
    p.add_argument("--page-size", type=int, default=None, help="items per Scan page (DynamoDB's 1 MB pages by default)")
    p.add_argument("--margin-seconds", type=float, default=60.0,
                   help="how long before the scan started the items' version is set (60): stream changes after it win")
    p.add_argument("--page-seconds", type=float, default=30.0,
                   help="a page is written within this time of its Scan, or reported (30; below index.gc_deletes)")
    p.add_argument("--checkpoint", metavar="FILE", default=None,
                   help="record progress in FILE, and go on from it if it exists (removed once the table is written)")
    a = p.parse_args(argv)
    error = None
    try:
        result = backfill(a.table, segments=a.segments, page_size=a.page_size, margin_seconds=a.margin_seconds,
                          page_seconds=a.page_seconds, log=_print_line, checkpoint=a.checkpoint)
    except BackfillError as e:  # the run's counts and failed items first, then what stopped it
        result, error = e.result, e
    except (Error, ValueError) as e:
        p.error(str(e))
    except KeyboardInterrupt as e:
        result = getattr(e, "backfill_result", None)
        if result is not None:
            _print_result("ddb2os backfill interrupted", a.table, result)
        print(f"{p.prog}: interrupted; {_rerun(a.checkpoint)}", file=sys.stderr)
        return 130
    except Exception as e:  # botocore's (no region, no table, throttled): one line, not a traceback
        print(f"{p.prog}: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    # "done" only for a table read and written whole.
    stopped = error is not None or result["stopped"] or result["failed"]
    failed = _print_result("ddb2os backfill stopped" if stopped else "ddb2os backfill done", a.table, result)
    if error is not None:
        print(f"{p.prog}: error: {error}", file=sys.stderr)
        return 1
    if failed:
        print(f"{p.prog}: {failed} item{'s' if failed > 1 else ''} not written (listed above); {_rerun(a.checkpoint)}",
              file=sys.stderr)
        return 1
    return 0


_stdout_lock = threading.Lock()


def _print_line(line: str) -> None:
    """One JSON line to stdout in one write: print() writes the text and its end apart, and a segment's
    page line (after a second Ctrl-C, segments may still be writing) could come between them."""
    with _stdout_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _print_result(message: str, table: str, result: Dict[str, Any]) -> int:
    """The run's counts, then its first 20 failed items (and how many more): the number failed."""
    failed = result["failed"]
    _print_line(json.dumps({"message": message, "table": table, **{k: v for k, v in result.items() if k != "failed"},
                            "failed": len(failed)}))
    for f in failed[:20]:
        _print_line(json.dumps({"message": "ddb2os backfill item failed", **f}, default=str))
    if len(failed) > 20:
        _print_line(json.dumps({"message": "ddb2os backfill items failed", "not_shown": len(failed) - 20}))
    return len(failed)


if __name__ == "__main__":
    sys.exit(main())
