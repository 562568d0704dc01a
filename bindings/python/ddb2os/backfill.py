"""Backfill: the items a table already holds, written into OpenSearch the way the handler writes stream
changes, so that an index can start from a table that existed before its stream did.

    python -m ddb2os.backfill TABLE [--segments N] [--page-size N] [--margin-seconds S]

The OpenSearch side is configured by the handler's environment variables (``OPENSEARCH_ENDPOINT``,
``INDEX_NAME``, ``TABLE_KEYS``, ... see the README); the table is read with boto3's ``Scan``
(``DYNAMODB_ENDPOINT``, ``AWS_REGION`` and the usual AWS credentials).

Order with the stream. Every item is written with the version a stream change made
``margin_seconds`` before the scan started would carry, so a change made after the scan started
(its ``ApproximateCreationDateTime`` is later) always wins over the backfill, whichever reaches
OpenSearch first, and the backfill wins over older changes. Enable the stream and its handler
first; the margin covers the clock difference between this host and DynamoDB (60 s by default;
DynamoDB Local rounds its times to the minute).

Nothing is lost: an item OpenSearch refuses goes to the dead-letter index as a stream record would.
Items still failing after the retries (OpenSearch unreachable, a refused request) stop the backfill
after the pages being written: they are listed in the result (and the command exits with 1), and a
second run writes everything again (the writes are idempotent).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import os
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Mapping, Optional

from . import _core
from ._handler import config_from_environment

__all__ = ["backfill", "main"]



def _key_names(description: Mapping[str, Any]) -> List[str]:
    schema = description["KeySchema"]
    return [k["AttributeName"] for kind in ("HASH", "RANGE") for k in schema if k["KeyType"] == kind]


def backfill(table: str, *, dynamodb: Any = None, segments: int = 1, page_size: Optional[int] = None,
             margin_seconds: float = 60.0, environment: Optional[Mapping[str, str]] = None,
             log: Optional[Callable[[str], None]] = None, attempts: int = 3,
             attempt_seconds: float = 60.0) -> Dict[str, Any]:
    """Writes every item of ``table`` into OpenSearch; returns the counts and the failures:
    ``{"items", "indexed", "dead_lettered", "failed": [{"key", "reason"}], "stopped", "pages", "seconds",
    "version"}`` ("stopped": items failed, and the scan was not finished).

    ``dynamodb``: a boto3 DynamoDB client (default: one for ``DYNAMODB_ENDPOINT`` / ``AWS_REGION``).
    ``segments``: parallel Scan segments (the Scans overlap; OpenSearch gets one page at a time).
    ``environment``: the handler's variables (default ``os.environ``). ``log``: one JSON line per page.
    ``attempts`` engine calls per page, each retrying failed items until ``attempt_seconds`` have passed."""
    if segments < 1 or attempts < 1:
        raise ValueError("segments and attempts must be at least 1")
    if margin_seconds < 0:
        raise ValueError("margin_seconds must not be negative")
    env = dict(os.environ if environment is None else environment)
    config = config_from_environment(env)
    if dynamodb is None:
        import boto3  # only here: not part of the handler's cold start
        dynamodb = boto3.client("dynamodb", endpoint_url=env.get("DYNAMODB_ENDPOINT") or None,
                                region_name=config["region"] or None)
    description = dynamodb.describe_table(TableName=table)["Table"]
    keys = _key_names(description)
    config["table_keys"] = {**config["table_keys"], table: keys}  # no DescribeTable through the engine
    engine = _core.SyncEngine(config, env)
    # The table's ARN in the stream-ARN form the engine reads the table name from.
    source_arn = description["TableArn"] + "/stream/backfill"
    started = time.time()
    version = math.floor(started - margin_seconds)

    lock = threading.Lock()
    totals: Dict[str, Any] = {"items": 0, "indexed": 0, "dead_lettered": 0, "failed": [], "stopped": False,
                              "pages": 0}
    stop = threading.Event()

    def write_page(segment: int, page: int, items: List[Dict[str, Any]]) -> None:
        records = {}
        for n, item in enumerate(items):
            sequence = f"backfill-{segment}-{page}-{n}"
            records[sequence] = {
                "eventID": sequence, "eventName": "INSERT", "eventSourceARN": source_arn,
                "dynamodb": {"ApproximateCreationDateTime": version, "Keys": {k: item[k] for k in keys},
                             "NewImage": item, "SequenceNumber": sequence, "StreamViewType": "NEW_IMAGE"},
            }
        pending = list(records)
        indexed = dead = 0
        reasons: Dict[str, str] = {}
        for attempt in range(attempts):
            report = engine.process({"Records": [records[s] for s in pending]}, attempt_seconds)
            indexed += report["indexed"]
            dead += report["dead_lettered"]
            reasons = {f["sequence_number"]: f["reason"] for f in report["failures"]}
            pending = [s for s in pending if s in reasons]
            if not pending or attempt + 1 == attempts:
                break
            time.sleep(min(2 ** attempt, 30))
        failed = [{"key": json.loads(_core.to_json(records[s]["dynamodb"]["Keys"])), "reason": reasons[s]}
                  for s in pending]
        with lock:
            totals["items"] += len(items)
            totals["indexed"] += indexed
            totals["dead_lettered"] += dead
            totals["failed"].extend(failed)
            totals["pages"] += 1
        if failed:
            stop.set()
        if log is not None:
            log(json.dumps({"message": "ddb2os backfill page", "table": table, "segment": segment, "page": page,
                            "items": len(items), "indexed": indexed, "dead_lettered": dead, "failed": len(failed)}))

    def scan(segment: int) -> None:
        kwargs: Dict[str, Any] = {"TableName": table, "ConsistentRead": True}
        if segments > 1:
            kwargs.update(Segment=segment, TotalSegments=segments)
        if page_size:
            kwargs["Limit"] = page_size
        page = 0
        while not stop.is_set():
            answer = dynamodb.scan(**kwargs)
            if answer.get("Items"):
                write_page(segment, page, answer["Items"])
                page += 1
            if "LastEvaluatedKey" not in answer:
                return
            kwargs["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        totals["stopped"] = True

    with concurrent.futures.ThreadPoolExecutor(max_workers=segments) as pool:
        for f in [pool.submit(scan, s) for s in range(segments)]:
            f.result()
    totals["seconds"] = round(time.time() - started, 3)
    totals["version"] = version
    return totals


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ddb2os.backfill", description=__doc__.split("\n\n")[0])
    p.add_argument("table", help="the DynamoDB table to read")
    p.add_argument("--segments", type=int, default=1, help="parallel Scan segments (1)")
    p.add_argument("--page-size", type=int, default=None, help="items per Scan page (DynamoDB's 1 MB pages by default)")
    p.add_argument("--margin-seconds", type=float, default=60.0,
                   help="how long before the scan started the items' version is set (60): stream changes after it win")
    a = p.parse_args(argv)
    result = backfill(a.table, segments=a.segments, page_size=a.page_size, margin_seconds=a.margin_seconds,
                      log=lambda line: print(line, flush=True))
    failed = result.pop("failed")
    print(json.dumps({"message": "ddb2os backfill done", "table": a.table, **result, "failed": len(failed)}), flush=True)
    for f in failed[:20]:
        print(json.dumps({"message": "ddb2os backfill item failed", **f}, default=str), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
