"""The real stack (scripts/stack.py): DynamoDB Local with Streams, and OpenSearch with _bulk, search
and a stop/restart that keeps the data. A server that cannot be fetched or started fails these
tests; nothing is skipped and nothing is faked."""
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import boto3
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import stack  # noqa: E402

CREDS = dict(region_name="us-east-1", aws_access_key_id="ddb2osTest", aws_secret_access_key="ddb2osTest")
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def ddb_local():
    with stack.dynamodb_local() as server:
        yield server


@pytest.fixture(scope="module")
def opensearch():
    with stack.opensearch() as server:
        yield server


# ---------------------------------------------------------------------------------------------
# DynamoDB Local and its stream
# ---------------------------------------------------------------------------------------------

def read_stream(streams, stream_arn, want, timeout=30.0):
    """All records of the stream (every shard from TRIM_HORIZON), until `want` of them arrived."""
    records, iterators = [], {}
    deadline = time.monotonic() + timeout
    while True:
        desc = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]
        for shard in desc["Shards"]:
            sid = shard["ShardId"]
            if sid not in iterators:
                iterators[sid] = streams.get_shard_iterator(
                    StreamArn=stream_arn, ShardId=sid, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        for sid, it in list(iterators.items()):
            if it is None:
                continue
            resp = streams.get_records(ShardIterator=it, Limit=100)
            records.extend(resp["Records"])
            iterators[sid] = resp.get("NextShardIterator")
        if len(records) >= want or time.monotonic() > deadline:
            return records
        time.sleep(0.2)


def test_dynamodb_local_stream_has_insert_modify_remove_in_order(ddb_local):
    assert ddb_local.endpoint_url.startswith("http://127.0.0.1:")
    ddb = boto3.client("dynamodb", endpoint_url=ddb_local.endpoint_url, **CREDS)
    streams = boto3.client("dynamodbstreams", endpoint_url=ddb_local.endpoint_url, **CREDS)

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
    ddb.get_waiter("table_exists").wait(TableName="books", WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})

    key = {"author": {"S": "Ursula K. Le Guin"}, "bookTitle": {"S": "The Dispossessed"}}
    other = {"author": {"S": "Ursula K. Le Guin"}, "bookTitle": {"S": "The Lathe of Heaven"}}
    ddb.put_item(TableName="books", Item={**key, "year": {"N": "1974"}, "tags": {"SS": ["sf", "utopia"]}})
    ddb.put_item(TableName="books", Item={**other, "year": {"N": "1971"}})
    ddb.update_item(TableName="books", Key=key, UpdateExpression="SET #y = :y, rating = :r",
                    ExpressionAttributeNames={"#y": "year"},
                    ExpressionAttributeValues={":y": {"N": "1975"}, ":r": {"N": "4.5"}})
    ddb.delete_item(TableName="books", Key=key)

    records = read_stream(streams, stream_arn, want=4)
    assert [r["eventName"] for r in records] == ["INSERT", "INSERT", "MODIFY", "REMOVE"]
    seqs = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4

    ins, ins2, mod, rem = records
    for r in records:
        assert r["eventSource"] == "aws:dynamodb"
        assert r["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
        assert "ApproximateCreationDateTime" in r["dynamodb"]
    assert ins["dynamodb"]["Keys"] == key and ins2["dynamodb"]["Keys"] == other
    assert ins["dynamodb"]["NewImage"] == {**key, "year": {"N": "1974"}, "tags": {"SS": ["sf", "utopia"]}}
    assert "OldImage" not in ins["dynamodb"]
    assert mod["dynamodb"]["Keys"] == key
    assert mod["dynamodb"]["OldImage"]["year"] == {"N": "1974"}
    assert mod["dynamodb"]["NewImage"]["year"] == {"N": "1975"}
    assert mod["dynamodb"]["NewImage"]["rating"] == {"N": "4.5"}
    assert rem["dynamodb"]["Keys"] == key
    assert rem["dynamodb"]["OldImage"]["year"] == {"N": "1975"}
    assert "NewImage" not in rem["dynamodb"]

    # The table agrees: one item left.
    items = ddb.scan(TableName="books")["Items"]
    assert items == [{**other, "year": {"N": "1971"}}]


def test_dynamodb_local_shared_db_across_credentials(ddb_local):
    """-sharedDb: a client with other credentials and region (like the handler's DescribeTable)
    sees the same tables."""
    ddb = boto3.client("dynamodb", endpoint_url=ddb_local.endpoint_url, **CREDS)
    ddb.create_table(TableName="shared_check",
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST")
    other = boto3.client("dynamodb", endpoint_url=ddb_local.endpoint_url, region_name="eu-west-1",
                         aws_access_key_id="someoneElse", aws_secret_access_key="x")
    assert other.describe_table(TableName="shared_check")["Table"]["KeySchema"] == [
        {"AttributeName": "id", "KeyType": "HASH"}]


# ---------------------------------------------------------------------------------------------
# OpenSearch
# ---------------------------------------------------------------------------------------------

def call(base, method, path, body=None, ndjson=False):
    data = None
    headers = {}
    if body is not None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        headers["Content-Type"] = "application/x-ndjson" if ndjson else "application/json"
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    with HTTP.open(req, timeout=60) as r:
        return json.loads(r.read())


BOOKS = [
    {"author": "Ursula K. Le Guin", "bookTitle": "The Dispossessed", "year": 1974},
    {"author": "Ursula K. Le Guin", "bookTitle": "The Lathe of Heaven", "year": 1971},
    {"author": "Octavia E. Butler", "bookTitle": "Kindred", "year": 1979},
]


def bulk_body(index):
    lines = []
    for i, doc in enumerate(BOOKS):
        lines.append(json.dumps({"index": {"_index": index, "_id": f"b{i}"}}))
        lines.append(json.dumps(doc))
    return "\n".join(lines) + "\n"


def test_opensearch_bulk_and_search(opensearch):
    assert opensearch.url.startswith("http://127.0.0.1:")
    info = call(opensearch.url, "GET", "/")
    assert info["version"]["distribution"] == "opensearch"
    assert info["version"]["number"].startswith("2.")

    call(opensearch.url, "PUT", "/books", {
        "settings": {"number_of_shards": 1, "number_of_replicas": 0},
        "mappings": {"properties": {"author": {"type": "keyword"}, "bookTitle": {"type": "keyword"},
                                    "year": {"type": "integer"}}}})
    resp = call(opensearch.url, "POST", "/_bulk", bulk_body("books"), ndjson=True)
    assert resp["errors"] is False
    assert [item["index"]["status"] for item in resp["items"]] == [201, 201, 201]
    call(opensearch.url, "POST", "/books/_refresh")

    hits = call(opensearch.url, "POST", "/books/_search", {"query": {"match_all": {}}, "size": 10})["hits"]
    assert hits["total"]["value"] == 3
    assert sorted((h["_id"], h["_source"]["bookTitle"]) for h in hits["hits"]) == [
        ("b0", "The Dispossessed"), ("b1", "The Lathe of Heaven"), ("b2", "Kindred")]

    hits = call(opensearch.url, "POST", "/books/_search",
                {"query": {"term": {"author": "Ursula K. Le Guin"}}, "sort": [{"year": "asc"}]})["hits"]
    assert [h["_source"]["year"] for h in hits["hits"]] == [1971, 1974]


def test_opensearch_restart_keeps_data(opensearch):
    call(opensearch.url, "PUT", "/restart-check", {"settings": {"number_of_shards": 1, "number_of_replicas": 0}})
    assert call(opensearch.url, "POST", "/_bulk", bulk_body("restart-check"), ndjson=True)["errors"] is False
    call(opensearch.url, "POST", "/restart-check/_refresh")

    url, pid = opensearch.url, opensearch.pid
    opensearch.stop()
    assert not opensearch.running()
    assert not pathlib.Path(f"/proc/{pid}").exists()
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        call(url, "GET", "/")

    opensearch.start()
    assert opensearch.url == url  # same port
    health = call(opensearch.url, "GET", "/_cluster/health/restart-check?wait_for_status=green&timeout=60s")
    assert health["status"] == "green"
    hits = call(opensearch.url, "POST", "/restart-check/_search", {"query": {"match_all": {}}})["hits"]
    assert hits["total"]["value"] == 3
    assert call(opensearch.url, "GET", "/restart-check/_doc/b2")["_source"] == BOOKS[2]


# ---------------------------------------------------------------------------------------------
# The scripts themselves: cache, clean stop, CLI
# ---------------------------------------------------------------------------------------------

def test_second_fetch_downloads_nothing(monkeypatch):
    stack.fetch()  # the first, if no test before this one has fetched (a fresh clone, a test run alone)

    def no_maven():
        raise AssertionError("Maven must not run when the cache is complete")
    monkeypatch.setattr(stack, "_mvn", no_maven)
    info = stack.fetch()
    assert info["downloaded"] is False
    assert (pathlib.Path(info["opensearch_home"]) / "bin" / "opensearch").exists()


def test_close_leaves_nothing_running():
    with stack.dynamodb_local() as server:
        pid, tmpdir = server.pid, server.tmpdir
        assert pathlib.Path(f"/proc/{pid}").exists()
    assert not pathlib.Path(f"/proc/{pid}").exists()
    if not os.environ.get("DDB2OS_STACK_KEEP"):
        assert not tmpdir.exists()


def test_cli_up_prints_urls_and_stops_on_sigterm(tmp_path):
    """Also: a signal it was started ignoring (nohup's SIGHUP) stays ignored."""
    env_file = tmp_path / "stack.env"
    proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "stack.py"), "up", "--only", "dynamodb",
                             "--env-file", str(env_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    try:
        line = proc.stdout.readline()
        assert line.startswith("DYNAMODB_ENDPOINT=http://127.0.0.1:"), (line, proc.stderr.read())
        endpoint = line.strip().split("=", 1)[1]
        assert env_file.read_text() == line
        ddb = boto3.client("dynamodb", endpoint_url=endpoint, **CREDS)
        assert "TableNames" in ddb.list_tables()
        proc.send_signal(signal.SIGHUP)
        time.sleep(1)
        assert proc.poll() is None and env_file.exists()
        assert "TableNames" in ddb.list_tables()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert not env_file.exists()
    with pytest.raises(urllib.error.URLError):
        HTTP.open(endpoint, timeout=5)
