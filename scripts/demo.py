#!/usr/bin/env python3
"""`make demo`: a DynamoDB table's changes synced into OpenSearch by ddb2os.handler, end to end.

Starts OpenSearch and DynamoDB Local (scripts/stack.py), creates the founding guide's `books`
table (partition key `author`, sort key `bookTitle`, stream NEW_AND_OLD_IMAGES), inserts,
modifies and deletes items with boto3, reads the stream and hands the records to
`ddb2os.handler` in batches shaped exactly like Lambda's, then shows what OpenSearch holds.
Stops everything it started.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import pathlib
import signal
import sys
import time
import urllib.request
from decimal import Decimal

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import boto3  # noqa: E402

import stack  # noqa: E402
import streams  # noqa: E402

CREDS = dict(region_name="us-east-1", aws_access_key_id="demo", aws_secret_access_key="demo-secret")


def http(method: str, url: str, body: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=30) as r:
            return r.status, json.loads(r.read(), parse_float=Decimal)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def show(v) -> str:
    """JSON text with Decimals written as the exact numbers they are."""
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)}: {show(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(show(x) for x in v) + "]"
    return json.dumps(v, ensure_ascii=False)


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def lost_items(items: list, document_ids, letter_ids, keys: list) -> list:
    """The table's items (boto3's typed form) that are neither a document nor a dead letter, by _id."""
    import ddb2os

    kept = set(document_ids) | set(letter_ids)
    return [i for i in items if ddb2os.document_id({k: i[k] for k in keys}, keys) not in kept]


def main() -> int:
    say("starting OpenSearch and DynamoDB Local (fetched from Maven Central on first use)")
    with stack.opensearch() as opensearch, stack.dynamodb_local() as dynamodb:
        print(f"OpenSearch {stack.opensearch_version()} at {opensearch.url}")
        print(f"DynamoDB Local {stack.dynamodb_local_version()} at {dynamodb.endpoint_url}")
        ddb = boto3.client("dynamodb", endpoint_url=dynamodb.endpoint_url, **CREDS)
        ddb_streams = boto3.client("dynamodbstreams", endpoint_url=dynamodb.endpoint_url, **CREDS)

        say("creating table books (author HASH, bookTitle RANGE, stream NEW_AND_OLD_IMAGES)")
        table = ddb.create_table(
            TableName="books",
            AttributeDefinitions=[{"AttributeName": "author", "AttributeType": "S"},
                                  {"AttributeName": "bookTitle", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "author", "KeyType": "HASH"},
                       {"AttributeName": "bookTitle", "KeyType": "RANGE"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )["TableDescription"]
        stream_arn = table["LatestStreamArn"]

        say("writing to DynamoDB: 4 inserts, 1 modify, 1 delete, 1 item OpenSearch will refuse")
        books = [
            {"author": "Dan Brown", "bookTitle": "The Da Vinci Code", "year": 2003, "price": "12345678901234567890.99",
             "tags": {"SS": ["thriller", "mystery"]}, "editions": [2003, "illustrated"]},
            {"author": "Dan Brown", "bookTitle": "Inferno", "year": 2013, "price": "17.50"},
            {"author": "Ursula K. Le Guin", "bookTitle": "The Dispossessed", "year": 1974, "price": "9.99",
             "awards": {"M": {"hugo": {"N": "1975"}, "nebula": {"N": "1974"}}}},
            {"author": "Ann Author", "bookTitle": "Old|Title", "year": 1999, "price": "5"},
        ]
        for b in books:
            item = {"author": {"S": b["author"]}, "bookTitle": {"S": b["bookTitle"]}, "year": {"N": str(b["year"])},
                    "price": {"N": b["price"]}}
            if "tags" in b:
                item["tags"] = b["tags"]
            if "editions" in b:
                item["editions"] = {"L": [{"N": "2003"}, {"S": "illustrated"}]}
            if "awards" in b:
                item["awards"] = b["awards"]
            ddb.put_item(TableName="books", Item=item)
            print(f"  put    {b['author']} / {b['bookTitle']}")
        ddb.update_item(TableName="books", Key={"author": {"S": "Dan Brown"}, "bookTitle": {"S": "Inferno"}},
                        UpdateExpression="SET subTitle = :s", ExpressionAttributeValues={":s": {"S": "Volume-1"}})
        print("  update Dan Brown / Inferno: SET subTitle = 'Volume-1'")
        ddb.delete_item(TableName="books", Key={"author": {"S": "Ann Author"}, "bookTitle": {"S": "Old|Title"}})
        print("  delete Ann Author / Old|Title")
        ddb.put_item(TableName="books", Item={"author": {"S": "Bad Data"}, "bookTitle": {"S": "X"},
                                              "year": {"S": "unknown"}})
        print("  put    Bad Data / X   (year is a string: OpenSearch's mapping says number)")

        records = streams.read_stream(ddb_streams, stream_arn)
        say(f"the stream holds {len(records)} records; handing them to ddb2os.handler as Lambda would")
        os.environ.update({
            "OPENSEARCH_ENDPOINT": opensearch.url,     # http on loopback: no auth
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": CREDS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": CREDS["aws_secret_access_key"],
            "DYNAMODB_ENDPOINT": dynamodb.endpoint_url,  # the key schema comes from DescribeTable
        })
        import ddb2os  # noqa: E402

        # Lambda's default batch size is 100; 3 here, so that several invocations happen.
        for n, event in enumerate(streams.batches(records, 3), 1):
            print(f"  invocation {n}: {len(event['Records'])} records", flush=True)
            log = io.StringIO()
            with contextlib.redirect_stdout(log):  # the handler's log line per batch (EMF), then one per failed record
                result = ddb2os.handler(event, streams.FakeContext(30_000))
            line, *failures = (json.loads(x) for x in log.getvalue().splitlines())
            counts = ", ".join(f"{k} {line[k]}" for k in ("Actions", "Superseded", "Indexed", "Deleted",
                                                          "DeadLettered", "Failed", "Milliseconds"))
            print(f"    log: {counts}")
            for f in failures:
                print(f"    log: {f['message']}: {f.get('sequence_number', '')} {f.get('reason', '')}")
            print(f"    returns {json.dumps(result)}")

        http("POST", f"{opensearch.url}/books/_refresh")
        http("POST", f"{opensearch.url}/books-dlq/_refresh")
        say("what OpenSearch holds now: GET /books/_search")
        _, found = http("POST", f"{opensearch.url}/books/_search", {"query": {"match_all": {}}, "size": 100,
                                                                       "sort": [{"year": "asc"}]})
        for hit in found["hits"]["hits"]:
            print(f"  _id {hit['_id']!r}")
            print(f"     {show(hit['_source'])}")
        print(f"  {found['hits']['total']['value']} documents")

        status, _ = http("GET", f"{opensearch.url}/books/_doc/Ann%20Author%7COld%5C%7CTitle")
        print(f"\n  GET /books/_doc/Ann Author|Old\\|Title -> HTTP {status} (deleted in DynamoDB, gone from OpenSearch)")

        say("the record OpenSearch refused: GET /books-dlq/_search")
        _, dlq = http("POST", f"{opensearch.url}/books-dlq/_search", {"query": {"match_all": {}}})
        for hit in dlq["hits"]["hits"]:
            s = hit["_source"]
            print(f"  sequence {s['sequence_number']}, _id {s['id']!r}: {s['error']['type']}")
            print(f"     {s['error']['reason'][:140]}")
        items = ddb.scan(TableName="books")["Items"]
        documents, letters = found["hits"]["total"]["value"], dlq["hits"]["total"]["value"]
        # Every item is a document or, refused by OpenSearch, a dead letter (of its last change), by _id.
        missing = lost_items(items, (h["_id"] for h in found["hits"]["hits"]),
                             (h["_source"]["id"] for h in dlq["hits"]["hits"]), ["author", "bookTitle"])
        say(f"DynamoDB has {len(items)} items; OpenSearch has {documents} documents and {letters} dead letter(s): "
            + ("nothing lost" if not missing else f"{len(missing)} item(s) in neither"))
        if missing:
            return 1

        # A table that existed before its stream: python -m ddb2os.backfill, here into a second index.
        say("backfilling a second index, books-backfill, from the table as it is now (ddb2os.backfill: Scan pages)")
        from ddb2os.backfill import backfill  # noqa: E402
        # DynamoDB Local rounds stream times to the minute: a margin of two.
        done = backfill("books", dynamodb=ddb, margin_seconds=120,
                        environment={**os.environ, "INDEX_NAME": "books-backfill"})
        print(f"  {done['items']} items: {done['indexed']} indexed, {done['dead_lettered']} dead-lettered, "
              f"{len(done['failed'])} failed, in {done['seconds']} s")
        http("POST", f"{opensearch.url}/books-backfill/_refresh")
        _, again = http("POST", f"{opensearch.url}/books-backfill/_search", {"query": {"match_all": {}}, "size": 100})
        same = ({h["_id"]: h["_source"] for h in again["hits"]["hits"]} ==
                {h["_id"]: h["_source"] for h in found["hits"]["hits"]})
        print(f"  the same _ids and documents as the index the stream built: {same}")
        if not same:
            return 1
        say("stopping OpenSearch and DynamoDB Local")
    return 0


if __name__ == "__main__":
    # SIGTERM (a CI runner's stop, `kill`) as Ctrl-C: the servers' context managers then stop them
    # and remove their temporary directories, instead of leaving them for the next `reap`.
    def _interrupt(*_):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, _interrupt)
    sys.exit(main())
