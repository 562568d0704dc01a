#!/usr/bin/env python3
"""One end-to-end competitor in its own process (a fresh "Lambda container"): run_all.py starts it.

    python3 benchmarks/e2e_worker.py ddb2os|guidance|founding EVENTS.jsonl --endpoint URL --prefix P
                                     [--limit N] [--sample OUT.json --sample-every K]

Reads the events (one per line), parses each (not timed), then calls the competitor's handler on it; the wall
and CPU time of the handler calls is summed. ``--limit N`` stops after N changes (a batch is cut to fit).
``--sample`` writes, for the ids with crc32(table|id) % K == 0, the last record that touched them (what the index
must hold for that id), for run_all.py's check. Prints one JSON line.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "competitors"))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import gen_events  # noqa: E402

TABLE_KEYS = ";".join(f"{t}={','.join(ks)}" for t, ks in gen_events.KEY_SCHEMA.items())


def load_handler(name: str, endpoint: str, prefix: str):
    os.environ["OPENSEARCH_ENDPOINT"] = endpoint
    os.environ["INDEX_PREFIX"] = prefix
    if name == "ddb2os":
        os.environ.update(OPENSEARCH_AUTH="none", TABLE_KEYS=TABLE_KEYS, INDEX_TEMPLATE=prefix + "{table}")
        import ddb2os
        return ddb2os.handler
    if name == "guidance":
        import guidance_handler
        return guidance_handler.handler
    if name == "founding":
        import founding_lambda
        return founding_lambda.handler
    raise SystemExit(f"unknown competitor {name}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("competitor")
    ap.add_argument("events")
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--sample")
    ap.add_argument("--sample-every", type=int, default=100)
    args = ap.parse_args()

    import streams
    handler = load_handler(args.competitor, args.endpoint, args.prefix)
    wall = cpu = 0.0
    changes = events = 0
    failures = 0
    latest = {}
    boto3_ref = None
    if args.sample:
        import boto3_ref
    log = io.StringIO()
    last_log = ""
    with open(args.events, "rb") as f:
        for line in f:
            if args.limit and changes >= args.limit:
                break
            event = json.loads(line)
            if args.limit and changes + len(event["Records"]) > args.limit:
                event["Records"] = event["Records"][:args.limit - changes]
            ctx = streams.FakeContext(900_000)
            c0, t0 = time.process_time(), time.perf_counter()
            with contextlib.redirect_stdout(log):
                result = handler(event, ctx)
            wall += time.perf_counter() - t0
            cpu += time.process_time() - c0
            lines = log.getvalue().splitlines()
            if lines:
                last_log = lines[0]  # the batch's line (ddb2os.handler adds one per failed record after it)
            log = io.StringIO()
            if isinstance(result, dict):
                failures += len(result.get("batchItemFailures", [])) + len(result.get("errors", []))
            events += 1
            changes += len(event["Records"])
            if boto3_ref is not None:
                for rec in event["Records"]:
                    table = boto3_ref.table_of(rec["eventSourceARN"])
                    doc_id = boto3_ref.document_id(rec["dynamodb"]["Keys"], table, boto3_ref.KEY_SCHEMA)
                    if zlib.crc32(f"{table}|{doc_id}".encode()) % args.sample_every == 0:
                        latest[(table, doc_id)] = rec
    if args.sample:
        with open(args.sample, "w") as f:
            json.dump([{"table": t, "id": i, "record": r} for (t, i), r in latest.items()], f)
    print(json.dumps({"competitor": args.competitor, "events": events, "changes": changes, "wall_seconds": wall,
                      "cpu_seconds": cpu, "failures": failures, "sampled_ids": len(latest),
                      "last_log_line": last_log[:2000]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
