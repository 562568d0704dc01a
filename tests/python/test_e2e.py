"""End to end on the real stack: DynamoDB Local's stream -> ddb2os.handler -> OpenSearch.

Every test ends by comparing the whole index with the whole table: each document must equal the
unmarshalled item, under its _id, with no extra documents. The expected documents and _ids are worked out
here, in Python, from README's rules (expected_doc, expected_id), not by ddb2os's own code.
"""
from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import pathlib
import random
import sys
import threading
import time
import urllib.error
import urllib.request
from decimal import Decimal

import boto3
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import stack  # noqa: E402
import streams  # noqa: E402
from proxies import FaultProxy, SigV4VerifyingProxy, TLSProxy, make_test_ca  # noqa: E402

import ddb2os  # noqa: E402
from ddb2os import _handler  # noqa: E402

CREDS = dict(region_name="us-east-1", aws_access_key_id="AKIDE2ETEST", aws_secret_access_key="e2e-secret-key")
HANDLER_VARS = ["OPENSEARCH_ENDPOINT", "ES_ENDPOINT", "HOST", "INDEX_NAME", "INDEX_TEMPLATE", "ES_INDEX", "TABLE_KEYS",
                "DB_HASH_KEY", "DB_SORT_KEY", "OPENSEARCH_SERVICE", "OPENSEARCH_AUTH", "OPENSEARCH_USERNAME",
                "OPENSEARCH_PASSWORD", "REFRESH", "DLQ_INDEX", "SKIP_TTL_DELETES", "NUMBERS", "LISTS", "MAX_BULK_BYTES",
                "MAX_BULK_ACTIONS", "OPENSEARCH_GZIP", "OPENSEARCH_CA_FILE", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "EXCLUDE_ATTRIBUTES", "INCLUDE_ATTRIBUTES", "AWS_SECURITY_TOKEN", "AWS_DEFAULT_PROFILE",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"]


# ------------------------------------------------------------------ servers and plumbing

@pytest.fixture(scope="module")
def servers():
    with stack.opensearch() as opensearch, stack.dynamodb_local() as dynamodb:
        yield opensearch, dynamodb


@pytest.fixture
def configure(monkeypatch, servers):
    opensearch, dynamodb = servers
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    def apply(**env):
        for k in HANDLER_VARS:
            monkeypatch.delenv(k, raising=False)
        base = {"OPENSEARCH_ENDPOINT": opensearch.url, "AWS_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": CREDS["aws_access_key_id"], "AWS_SECRET_ACCESS_KEY": CREDS["aws_secret_access_key"],
                "DYNAMODB_ENDPOINT": dynamodb.endpoint_url}
        for k, v in {**base, **env}.items():
            if v is None:
                monkeypatch.delenv(k, raising=False)
            else:
                monkeypatch.setenv(k, v)
        _handler._reset_for_tests()

    yield apply
    _handler._reset_for_tests()


def http(method: str, url: str, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=60) as r:
            return r.status, json.loads(r.read(), parse_float=Decimal, parse_int=Decimal)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def run_handler(event, milliseconds=60_000):
    """ddb2os.handler as Lambda calls it; returns (its answer, its log line). The lines it writes for failed
    records, after the batch's, are in the log line's "failure_lines" (added here)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = ddb2os.handler(event, streams.FakeContext(milliseconds))
    log, *failure_lines = (json.loads(line) for line in out.getvalue().splitlines())
    assert "failure_lines" not in log
    log["failure_lines"] = failure_lines
    return result, log


class Table:
    """A DynamoDB Local table with a NEW_AND_OLD_IMAGES stream; keys pk (S) and sk (N)."""

    def __init__(self, dynamodb, name: str) -> None:
        self.ddb = boto3.client("dynamodb", endpoint_url=dynamodb.endpoint_url, **CREDS)
        self.streams = boto3.client("dynamodbstreams", endpoint_url=dynamodb.endpoint_url, **CREDS)
        self.name = name
        desc = self.ddb.create_table(
            TableName=name,
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "N"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )["TableDescription"]
        self.stream_arn = desc["LatestStreamArn"]
        self.consumed = 0

    def new_records(self):
        records = streams.read_stream(self.streams, self.stream_arn)
        fresh = records[self.consumed:]
        self.consumed = len(records)
        return fresh

    def items(self):
        out, kwargs = [], {"TableName": self.name}
        while True:
            page = self.ddb.scan(**kwargs)
            out.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def sync(self, batch_size=100, milliseconds=60_000):
        """Hands the new stream records to the handler, Lambda-style. Returns the answers and logs."""
        results = []
        for event in streams.batches(self.new_records(), batch_size):
            results.append(run_handler(event, milliseconds))
        return results


def index_docs(opensearch_url: str, index: str):
    http("POST", f"{opensearch_url}/{index}/_refresh")
    status, found = http("POST", f"{opensearch_url}/{index}/_search", {"query": {"match_all": {}}, "size": 10000})
    assert status == 200, found
    return {h["_id"]: h["_source"] for h in found["hits"]["hits"]}


# README "Field names OpenSearch refuses": top-level names of this family get one more leading underscore.
METADATA_NAMES = ("id", "index", "source", "routing", "version", "type", "seq_no", "primary_term", "field_names",
                  "ignored", "nested_path", "data_stream_timestamp", "meta", "size", "tier", "doc_count")


def _kinds(values, acc):
    """README "Mixed-type lists": the kinds of an array's non-null values, nested arrays flattened."""
    for v in values:
        if isinstance(v, list):
            _kinds(v, acc)
        elif v is not None:
            acc.add("boolean" if isinstance(v, bool) else "number" if isinstance(v, Decimal)
                    else "string" if isinstance(v, str) else "object")
    return acc


def _stringify(v, text):
    if isinstance(v, list):
        return [_stringify(x, t) for x, t in zip(v, text or [None] * len(v))]
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, Decimal):
        return text  # the number's text as DynamoDB sent it (exact mode, digits only in these tests)
    raise NotImplementedError("an object in a mixed list: this oracle does not write JSON text as ddb2os does")


def _unmarshal(av):
    """A boto3 low-level attribute value as README's "Unmarshalling" maps it (numbers as Decimal), and beside it
    each number's text (for mixed lists, where numbers become their text)."""
    (t, v), = av.items()
    if t == "S":
        return v, None
    if t == "N":
        return Decimal(v), v
    if t == "B":
        return base64.b64encode(v).decode("ascii"), None
    if t == "BOOL":
        return v, None
    if t == "NULL":
        return None, None
    if t == "SS":
        return list(v), None
    if t == "NS":
        return [Decimal(x) for x in v], list(v)
    if t == "BS":
        return [base64.b64encode(x).decode("ascii") for x in v], None
    if t == "M":
        return {k: _unmarshal(x)[0] for k, x in v.items()}, None
    if t == "L":
        pairs = [_unmarshal(x) for x in v]
        values, texts = [p[0] for p in pairs], [p[1] for p in pairs]
        if len(_kinds(values, set())) > 1:
            return [_stringify(x, t) for x, t in zip(values, texts)], None
        return values, texts
    raise AssertionError(f"unknown attribute type {t}")


def expected_doc(item) -> dict:
    doc = {}
    for name, av in item.items():
        if name.lstrip("_") in METADATA_NAMES and name.startswith("_"):
            name = "_" + name
        doc[name] = _unmarshal(av)[0]
    return doc


def expected_id(item) -> str:
    """README "Document _id": partition|sort, with \\ and | escaped inside each value."""
    def part(av):
        (t, v), = av.items()
        text = base64.b64encode(v).decode("ascii") if t == "B" else v
        return text.replace("\\", "\\\\").replace("|", "\\|")
    return part(item["pk"]) + "|" + part(item["sk"])


def expected_docs(table: Table):
    return {expected_id(item): expected_doc(item) for item in table.items()}


def assert_index_equals_table(opensearch_url: str, table: Table, index=None):
    expected = expected_docs(table)
    actual = index_docs(opensearch_url, index or table.name.lower())
    assert sorted(actual) == sorted(expected), "the index holds other _ids than the table's keys"
    for doc_id, doc in expected.items():
        assert actual[doc_id] == doc, doc_id
    return len(expected)


# ------------------------------------------------------------------ a random workload

TEXT = ["plain", "with \"quotes\" and \\backslash", "line\nbreak", "caf\u00e9", "emoji \U0001F680", "sep\u2028arator",
        "tab\there", "\u65e5\u672c\u8a9e", "nul\u0000char", ""]


def random_item(rng: random.Random, pk: str, sk: int) -> dict:
    item = {"pk": {"S": pk}, "sk": {"N": str(sk)}}
    maybe = lambda: rng.random() < 0.7  # noqa: E731
    if maybe():
        item["title"] = {"S": rng.choice(TEXT) + " " + str(rng.randint(0, 99))}
    if maybe():
        item["count"] = {"N": str(rng.randint(-10**12, 10**12))}
    if maybe():
        item["price"] = {"N": f"{rng.randint(0, 10**6)}.{rng.randint(1, 99):02d}"}
    if maybe():
        item["precise"] = {"N": rng.choice(["3.141592653589793238462643383279502884", "0.1", "-2.5E-7",
                                            "12345678901234567.890123456789012345"])}
    if maybe():
        item["blob"] = {"B": rng.randbytes(rng.randint(0, 24))}
    if maybe():
        item["flag"] = {"BOOL": rng.random() < 0.5}
    if maybe():
        item["nothing"] = {"NULL": True}
    if maybe():
        item["tags"] = {"SS": sorted({rng.choice(TEXT) + str(i) for i in range(rng.randint(1, 4))})}
    if maybe():
        item["scores"] = {"NS": sorted({str(rng.randint(0, 1000)) for _ in range(rng.randint(1, 4))})}
    if maybe():
        item["blobs"] = {"BS": sorted({rng.randbytes(rng.randint(1, 8)) for _ in range(rng.randint(1, 3))})}
    if maybe():
        item["meta"] = {"M": {"a": {"N": str(rng.randint(0, 9))}, "b": {"S": rng.choice(TEXT)},
                              "inner": {"M": {"deep": {"L": [{"S": rng.choice(TEXT)}, {"S": "x"}]}}}}}
    if maybe():  # always mixed: numbers and booleans become strings, as OpenSearch needs
        item["mixed"] = {"L": [{"N": str(rng.randint(0, 9))}, {"S": rng.choice(TEXT)}, {"BOOL": True}, {"NULL": True}]}
    if maybe():
        item["people"] = {"L": [{"M": {"name": {"S": rng.choice(TEXT)}, "age": {"N": str(rng.randint(1, 99))}}}
                                for _ in range(rng.randint(0, 3))]}
    if maybe():
        item["_id"] = {"S": "an attribute named like a metadata field"}
    return item


def random_workload(table: Table, rng: random.Random, keys: int, ops: int) -> None:
    pool = [(f"user#{k % 7}", k) for k in range(keys)]
    for _ in range(ops):
        pk, sk = rng.choice(pool)
        key = {"pk": {"S": pk}, "sk": {"N": str(sk)}}
        r = rng.random()
        if r < 0.5:
            table.ddb.put_item(TableName=table.name, Item=random_item(rng, pk, sk))
        elif r < 0.8:
            fresh = random_item(rng, pk, sk)
            sets = [k for k in fresh if k not in ("pk", "sk")][:3]
            removes = [k for k in ("title", "blob", "meta", "tags") if k not in sets and rng.random() < 0.3]
            if not sets and not removes:
                continue
            names = {f"#a{i}": n for i, n in enumerate(sets + removes)}
            expr = []
            if sets:
                expr.append("SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(sets))))
            if removes:
                expr.append("REMOVE " + ", ".join(f"#a{len(sets) + i}" for i in range(len(removes))))
            kwargs = dict(TableName=table.name, Key=key, UpdateExpression=" ".join(expr), ExpressionAttributeNames=names)
            if sets:
                kwargs["ExpressionAttributeValues"] = {f":v{i}": fresh[n] for i, n in enumerate(sets)}
            table.ddb.update_item(**kwargs)
        else:
            table.ddb.delete_item(TableName=table.name, Key=key)


# ------------------------------------------------------------------ the tests

@pytest.fixture(scope="module", autouse=True)
def redrive_table(servers):
    """The re-drive test's first write, made when the module starts: its version (DynamoDB Local
    rounds ApproximateCreationDateTime to the minute) must be older than a later change's, and the
    other tests' time counts towards that minute."""
    _, dynamodb = servers
    table = Table(dynamodb, "redrive")
    table.ddb.put_item(TableName="redrive", Item={"pk": {"S": "k"}, "sk": {"N": "1"}, "v": {"S": "old"}})
    (old_record,) = table.new_records()
    return table, old_record


def test_random_workload_index_equals_table_and_redelivery_converges(servers, configure):
    opensearch, dynamodb = servers
    configure()  # no TABLE_KEYS: the key schema comes from DescribeTable
    table = Table(dynamodb, "workload")
    random_workload(table, random.Random(1), keys=60, ops=400)
    results = table.sync(batch_size=100)
    assert len(results) >= 4
    for answer, log in results:
        assert answer == {"batchItemFailures": []}
        assert log["Failed"] == 0 and log["DeadLettered"] == 0
    assert sum(log["Superseded"] for _, log in results) > 0
    documents = assert_index_equals_table(opensearch.url, table)
    assert documents > 20

    # At-least-once delivery: every batch again, in order. The index still equals the table.
    records = streams.read_stream(table.streams, table.stream_arn)
    for event in streams.batches(records, 100):
        answer, log = run_handler(event)
        assert answer == {"batchItemFailures": []}
    assert_index_equals_table(opensearch.url, table)


def test_random_faults_and_lambdas_redelivery_lose_and_reorder_nothing(servers, configure):
    """The founding Lambdas' worst failure, checked under every fault the proxy has: 429 and 5xx answers,
    resets before a bulk reaches OpenSearch and after OpenSearch applied it, an answer held past the
    invocation's deadline (applied, but the handler cannot know), items throttled or refused inside a
    bulk; each for a moment (retried within the invocation) or for the whole invocation (its records
    fail, unwritten). Lambda redelivers from the lowest failed record (ReportBatchItemFailures),
    replaying writes OpenSearch already holds, until the stream is consumed; the index then equals the
    table."""
    opensearch, dynamodb = servers
    rng = random.Random(11)
    with FaultProxy(opensearch.url) as faults:
        configure(OPENSEARCH_ENDPOINT=faults.url)
        table = Table(dynamodb, "chaos")
        random_workload(table, rng, keys=40, ops=300)
        records = table.new_records()
        bulk = r"(^|/)_bulk(\?|$)"
        kinds = ["status", "reset_request", "reset_response", "held", "items", "outage", "items_outage", "none"]
        pos, invocations, redelivered, replayed, logs = 0, 0, 0, 0, []
        while pos < len(records):
            invocations += 1
            assert invocations <= 100, "the stream is not consumed"
            batch = records[pos:pos + rng.randint(10, 60)]
            kind, milliseconds = kinds[invocations % len(kinds)], 60_000
            every, error = rng.randint(2, 5), rng.choice(["429", "503", "es_rejected_execution_exception"])
            if kind in ("held", "outage", "items_outage"):  # a budget of 2 s: 2.5 s less Lambda's margin
                milliseconds = 2_500
            if kind == "status":
                faults.fail_next(rng.randint(1, 3), rng.choice([429, 500, 502, 503, 504]), path=bulk)
            elif kind == "reset_request":
                faults.reset_next(rng.randint(1, 2), "request", path=bulk)
            elif kind == "reset_response":
                faults.reset_next(rng.randint(1, 2), "response", path=bulk)
            elif kind == "held":  # applied, and answered after the deadline
                faults.delay_next(1, seconds=4.0, path=bulk)
            elif kind == "outage":
                faults.fail_next(10_000, rng.choice([429, 503]), path=bulk)
            elif kind in ("items", "items_outage"):
                faults.fail_bulk_items(lambda position, action, every=every: position % every == 0, error=error,
                                       n=rng.randint(1, 3) if kind == "items" else 10_000)
            answer, log = run_handler({"Records": batch}, milliseconds=milliseconds)
            faults.clear()
            logs.append(log)
            assert log["DeadLettered"] == 0, log  # every fault here is one to retry, never a document's own
            failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
            numbers = [r["dynamodb"]["SequenceNumber"] for r in batch]
            assert failed <= set(numbers) and log["Failed"] == len(failed)
            if failed:
                lowest = min(numbers.index(s) for s in failed)
                redelivered += 1
                replayed += len(batch) - lowest - len(failed)  # written already, and coming again
                pos += lowest  # from the lowest failed record, as Lambda does
            else:
                pos += len(batch)
        for kind in ("status", "reset_request", "reset_response", "delay", "bulk_items"):
            assert faults.injected[kind] > 0, kind
        assert redelivered > 0 and replayed > 0 and sum(log["Retries"] for log in logs) > 0
        assert assert_index_equals_table(opensearch.url, table) > 10


def test_the_lambda_runtime_syncs_a_stream_under_the_runtime_interface_emulator(servers, configure):
    """ddb2os.lambda_runtime (the event's raw bytes to the engine) under AWS's Lambda Runtime Interface
    Emulator: each batch POSTed as Lambda delivers it, answered with no failures; the index equals the table."""
    opensearch, dynamodb = servers
    configure()  # no TABLE_KEYS: the key schema comes from DescribeTable, from inside the runtime too
    table = Table(dynamodb, "lambdaruntime")
    random_workload(table, random.Random(6), keys=40, ops=250)
    events = list(streams.batches(table.new_records(), 100))
    assert len(events) >= 2
    env = {k: v for k, v in os.environ.items() if k != "AWS_LAMBDA_RUNTIME_API"}
    with stack.lambda_emulator([sys.executable, "-m", "ddb2os.lambda_runtime"], env=env) as rie:
        for event in events:
            status, body = rie.invoke(json.dumps(event).encode())
            assert (status, json.loads(body)) == (200, {"batchItemFailures": []}), body
        out = rie.output()
    logs = [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]
    assert [log["Records"] for log in logs] == [len(e["Records"]) for e in events], out
    assert sum(log["Failed"] + log["DeadLettered"] for log in logs) == 0, out
    assert out.count("Init Duration") == 1, out  # one process served every batch
    assert assert_index_equals_table(opensearch.url, table) > 20


def test_on_lambda_managed_instances_the_runtime_serves_invocations_at_once(servers, configure):
    """Lambda Managed Instances (the emulator with AWS_LAMBDA_MAX_CONCURRENCY=4): one environment is handed
    four invocations at once, and ddb2os.lambda_runtime forks a worker for each. A proxy in front of OpenSearch
    holds each _bulk 1.5 s, so all four are under way together; each is answered with no failure (a single
    loop got 400 Runtime.Unavailable for the three it was not polling for), and every index equals its table."""
    opensearch, dynamodb = servers
    tables = [Table(dynamodb, f"managed{i}") for i in range(4)]
    for i, table in enumerate(tables):
        random_workload(table, random.Random(30 + i), keys=10, ops=40)
    events = [{"Records": table.new_records()} for table in tables]
    with FaultProxy(opensearch.url) as faults:
        configure(OPENSEARCH_ENDPOINT=faults.url)
        faults.delay_next(len(events), seconds=1.5, path="/_bulk*")
        env = {k: v for k, v in os.environ.items() if k != "AWS_LAMBDA_RUNTIME_API"}
        with stack.lambda_emulator([sys.executable, "-m", "ddb2os.lambda_runtime"], env=env, max_concurrency=4) as rie:
            answers = [None] * len(events)

            def invoke(i):
                answers[i] = rie.invoke(json.dumps(events[i]).encode())

            threads = [threading.Thread(target=invoke, args=(i,)) for i in range(len(events))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            out = rie.output()
        delayed = [seen for seen in faults.log if seen.fault and seen.fault.startswith("delay")]
    assert [(status, json.loads(body)) for status, body in answers] == [(200, {"batchItemFailures": []})] * 4, out
    assert len(delayed) == 4, faults.log
    for table in tables:
        assert_index_equals_table(opensearch.url, table)
    # A bad setting of the mode itself is the start's failure, reported to the API, naming it. The emulator
    # starts the runtime at once in this mode and stops when the start fails: start() may see that or not.
    rie = stack.LambdaEmulator([sys.executable, "-m", "ddb2os.lambda_runtime"], env=env, max_concurrency=0)
    try:
        with contextlib.suppress(stack.StackError):
            rie.start()
        rie.proc.wait(timeout=60)
        out = rie.output()
    finally:
        rie.close()
    assert "AWS_LAMBDA_MAX_CONCURRENCY must be a number from 1 to 10000, not '0'" in out, out
    assert "Received Runtime Init Error" in out, out


def test_a_record_opensearch_rejects_goes_to_the_dead_letter_index(servers, configure):
    opensearch, dynamodb = servers
    configure(TABLE_KEYS="conflicts=pk,sk")
    table = Table(dynamodb, "conflicts")
    table.ddb.put_item(TableName="conflicts", Item={"pk": {"S": "a"}, "sk": {"N": "1"}, "x": {"N": "1"}})
    table.ddb.put_item(TableName="conflicts", Item={"pk": {"S": "a"}, "sk": {"N": "2"}, "x": {"S": "not a number"}})
    table.ddb.put_item(TableName="conflicts", Item={"pk": {"S": "a"}, "sk": {"N": "3"}, "y": {"S": "fine"}})
    (answer, log), = table.sync()
    assert answer == {"batchItemFailures": []}
    assert (log["Indexed"], log["DeadLettered"], log["Failed"]) == (2, 1, 0)
    assert sorted(index_docs(opensearch.url, "conflicts")) == ["a|1", "a|3"]
    dead = index_docs(opensearch.url, "conflicts-dlq")
    (letter,) = dead.values()
    assert letter["id"] == "a|2" and letter["index"] == "conflicts"
    assert letter["error"]["type"] == "mapper_parsing_exception"
    raw = json.loads(letter["record"])
    assert raw["dynamodb"]["NewImage"]["x"] == {"S": "not a number"}
    assert raw["dynamodb"]["SequenceNumber"] == letter["sequence_number"]


def test_a_date_keyed_tables_letters_all_land_in_the_dead_letter_index(servers, configure):
    """Made by the first letter's dynamic mapping, the dead-letter index would map "id" as a date when that
    letter's id looks like one, and refuse every later letter whose id does not: ddb2os creates it first."""
    opensearch, _ = servers
    configure(TABLE_KEYS="datekeyed=pk")
    arn = "arn:aws:dynamodb:us-east-1:000000000000:table/datekeyed/stream/2024-01-01T00:00:00.000"

    def rec(i, pk):
        return {"eventID": f"d{i}", "eventName": "INSERT", "eventSourceARN": arn,
                "dynamodb": {"ApproximateCreationDateTime": 1704067200, "Keys": {"pk": {"S": pk}},
                             "NewImage": {"pk": {"S": pk}, "n": {"N": "not a number"}},
                             "SequenceNumber": str(i), "StreamViewType": "NEW_IMAGE"}}

    for i, pk in enumerate(["2024-05-01", "user-7", "2024-05-02"]):
        answer, log = run_handler({"Records": [rec(i, pk)]})
        assert answer == {"batchItemFailures": []}, log
        assert (log["DeadLettered"], log["Failed"]) == (1, 0)
    letters = index_docs(opensearch.url, "datekeyed-dlq")
    assert sorted(letter["id"] for letter in letters.values()) == ["2024-05-01", "2024-05-02", "user-7"]
    status, mapping = http("GET", f"{opensearch.url}/datekeyed-dlq/_mapping")
    assert status == 200
    m = mapping["datekeyed-dlq"]["mappings"]
    assert m["date_detection"] is False and m["properties"]["time"]["type"] == "date"
    assert m["properties"]["id"]["type"] == "text"


def test_double_numbers_past_a_long_are_indexed_as_doubles(servers, configure):
    """NUMBERS=double: 12345678901234567890.99's nearest double written as the digits 12345678901234567168 is an
    integer past a long to OpenSearch, which refuses it; written with an exponent, it is a double."""
    opensearch, dynamodb = servers
    status, answer = http("POST", f"{opensearch.url}/bignums-probe/_doc", {"v": 12345678901234567168})
    assert status == 400 and answer["error"]["type"] == "mapper_parsing_exception", (status, answer)  # why
    configure(TABLE_KEYS="bignums=pk,sk", NUMBERS="double")
    table = Table(dynamodb, "bignums")
    for sk, v in ((1, "12345678901234567890.99"), (2, "-12345678901234567890")):
        table.ddb.put_item(TableName="bignums", Item={"pk": {"S": "a"}, "sk": {"N": str(sk)}, "v": {"N": v}})
    (answer, log), = table.sync()
    assert answer == {"batchItemFailures": []}
    dead = index_docs(opensearch.url, "bignums-dlq") if log["DeadLettered"] else {}
    assert (log["Indexed"], log["DeadLettered"], log["Failed"]) == (2, 0, 0), json.dumps(dead, default=str)
    docs = index_docs(opensearch.url, "bignums")
    assert docs["a|1"]["v"] == Decimal("1.2345678901234567E+19")
    assert docs["a|2"]["v"] == Decimal("-1.2345678901234567E+19")


def test_excluded_attributes_never_reach_the_index(servers, configure):
    """EXCLUDE_ATTRIBUTES: a field kept out of search (ssn), and one whose mixed types OpenSearch cannot map (x: the
    record above's mapping conflict, gone)."""
    opensearch, dynamodb = servers
    configure(TABLE_KEYS="excluded=pk,sk", EXCLUDE_ATTRIBUTES="ssn, x")
    table = Table(dynamodb, "excluded")
    table.ddb.put_item(TableName="excluded", Item={"pk": {"S": "a"}, "sk": {"N": "1"}, "x": {"N": "1"}, "ssn": {"S": "123-45-6789"}})
    table.ddb.put_item(TableName="excluded", Item={"pk": {"S": "a"}, "sk": {"N": "2"}, "x": {"S": "not a number"},
                                                   "m": {"M": {"ssn": {"S": "nested, kept"}}}})
    (answer, log), = table.sync()
    assert answer == {"batchItemFailures": []}
    assert (log["Indexed"], log["DeadLettered"], log["Failed"]) == (2, 0, 0)
    assert index_docs(opensearch.url, "excluded") == {"a|1": {"pk": "a", "sk": 1},
                                                      "a|2": {"pk": "a", "sk": 2, "m": {"ssn": "nested, kept"}}}
    # INCLUDE_ATTRIBUTES: the only ones kept.
    configure(TABLE_KEYS="excluded=pk,sk", INCLUDE_ATTRIBUTES="pk,m", INDEX_NAME="included")
    table.ddb.put_item(TableName="excluded", Item={"pk": {"S": "b"}, "sk": {"N": "3"}, "x": {"N": "1"},
                                                   "m": {"M": {"y": {"S": "kept"}}}})
    (answer, log), = table.sync()
    assert answer == {"batchItemFailures": []} and log["Indexed"] == 1
    assert index_docs(opensearch.url, "included") == {"b|3": {"pk": "b", "m": {"y": "kept"}}}


def test_records_whose_key_schema_describetable_refuses_are_reported_not_dead_lettered(servers, configure):
    """DescribeTable refused (here: a table DynamoDB Local does not have, as a missing IAM permission or a throttle
    would refuse it): the composite-key records are reported to Lambda with DynamoDB's answer in the log, and go
    nowhere else; once DescribeTable answers, the same records sync."""
    opensearch, dynamodb = servers
    configure(DYNAMODB_ENDPOINT=dynamodb.endpoint_url)
    table = Table(dynamodb, "described")
    for sk in (1, 2):
        table.ddb.put_item(TableName="described", Item={"pk": {"S": "a"}, "sk": {"N": str(sk)}})
    records = table.new_records()
    ghost = [json.loads(json.dumps(r).replace("table/described/", "table/nosuchtable/")) for r in records]
    answer, log = run_handler({"Records": ghost})
    assert answer == {"batchItemFailures": [{"itemIdentifier": r["dynamodb"]["SequenceNumber"]} for r in records]}
    assert (log["Failed"], log["DeadLettered"], log["Requests"]) == (2, 0, 0)
    (first, second) = log["failure_lines"]
    assert first["sequence_number"] == records[0]["dynamodb"]["SequenceNumber"]
    assert ("no key schema is known for it; DescribeTable arn:aws:dynamodb:ddblocal:000000000000:table/nosuchtable: "
            "HTTP 400") in first["reason"]
    assert "ResourceNotFoundException" in first["reason"]
    assert http("GET", f"{opensearch.url}/nosuchtable-dlq/_count")[0] == 404
    answer, log = run_handler({"Records": records})
    assert answer == {"batchItemFailures": []} and log["Indexed"] == 2 and log["failure_lines"] == []
    assert_index_equals_table(opensearch.url, table)


def test_requests_larger_than_the_cluster_takes_are_split_and_a_record_too_large_alone_is_a_dead_letter(servers, configure):
    """A cluster whose http.max_content_length (100kb here; 10 MiB on the smallest AWS instances) is below
    MAX_BULK_BYTES answers 413 and closes the connection: the engine splits the request until each part is
    taken. A record whose action alone is too large is a dead letter, written without the raw record (larger
    still, and refused with it), so it neither blocks the shard nor vanishes."""
    _, dynamodb = servers
    with stack.opensearch(settings={"http.max_content_length": "100kb"}) as small:
        configure(OPENSEARCH_ENDPOINT=small.url, TABLE_KEYS="split=pk,sk")
        table = Table(dynamodb, "split")
        for sk in range(60):
            table.ddb.put_item(TableName="split", Item={"pk": {"S": "p"}, "sk": {"N": str(sk)}, "text": {"S": f"{sk} " * 1500}})
        table.ddb.put_item(TableName="split", Item={"pk": {"S": "p"}, "sk": {"N": "1000"}, "text": {"S": "x" * 150_000}})
        (answer, log), = table.sync(batch_size=100, milliseconds=30_000)
        records = streams.read_stream(table.streams, table.stream_arn)
        assert answer == {"batchItemFailures": []}
        assert (log["Indexed"], log["DeadLettered"], log["Failed"], log["Retries"]) == (60, 1, 0, 0)
        assert log["Requests"] >= 4  # ~300 KB of actions in parts of at most 100 KB, and the halving on the way
        expected = expected_docs(table)
        del expected["p|1000"]
        actual = index_docs(small.url, "split")
        assert sorted(actual) == sorted(expected)
        assert all(actual[k] == v for k, v in expected.items())
        (letter,) = index_docs(small.url, "split-dlq").values()
        assert letter["id"] == "p|1000" and letter["sequence_number"] == records[-1]["dynamodb"]["SequenceNumber"]
        assert letter["error"]["type"] == "request_entity_too_large" and letter["error"]["status"] == 413
        assert "record" not in letter and "larger than the cluster accepts" in letter["record_omitted"]
        # Its keys, as DynamoDB types them: GetItem reads the item back for a re-drive.
        keys = json.loads(letter["keys"])
        assert keys == records[-1]["dynamodb"]["Keys"]
        assert table.ddb.get_item(TableName="split", Key=keys)["Item"]["pk"] == {"S": "p"}


def test_opensearch_down_reports_failures_within_the_deadline_then_converges(servers, configure):
    opensearch, dynamodb = servers
    configure()
    table = Table(dynamodb, "outage")
    random_workload(table, random.Random(2), keys=20, ops=60)
    records = table.new_records()
    event = {"Records": records}
    opensearch.stop()
    try:
        started = time.monotonic()
        answer, log = run_handler(event, milliseconds=5_000)
        elapsed = time.monotonic() - started
    finally:
        opensearch.start()
    assert elapsed < 5.0
    failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
    assert failed and log["Failed"] == len(failed) and log["Retries"] > 0
    # Why, in the log: a line per failed record, the first 20, then how many more.
    lines = log["failure_lines"]
    shown = [x for x in lines if x["message"] == "ddb2os record failed"]
    assert len(shown) == min(len(failed), 20) and {x["sequence_number"] for x in shown} <= failed
    assert all(x["reason"].startswith("still failing at the deadline after ") for x in shown)
    assert all("request failed" in x["reason"] for x in shown)
    if len(failed) > 20:
        assert lines[-1] == {"Service": "ddb2os", "message": "ddb2os records failed", "not_shown": len(failed) - 20}
    # Lambda retries from the lowest failed record: here, the whole batch.
    lowest = min(failed, key=int)
    retry = {"Records": [r for r in records if int(r["dynamodb"]["SequenceNumber"]) >= int(lowest)]}
    answer, log = run_handler(retry)
    assert answer == {"batchItemFailures": []}
    assert_index_equals_table(opensearch.url, table)


def test_an_old_image_redriven_after_newer_changes_does_not_win(servers, configure, redrive_table):
    opensearch, _ = servers
    configure()
    table, old_record = redrive_table
    key = {"pk": {"S": "k"}, "sk": {"N": "1"}}
    run_handler({"Records": [old_record]})
    # Versions come from ApproximateCreationDateTime, which DynamoDB Local rounds to the minute
    # (DynamoDB: to the second); changes within one unit apply in stream order, so the newer
    # change is made in the next minute.
    minute = int(old_record["dynamodb"]["ApproximateCreationDateTime"]) // 60
    while int(time.time()) // 60 == minute:
        time.sleep(0.5)
    table.ddb.put_item(TableName="redrive", Item={**key, "v": {"S": "new"}})
    (answer, log), = table.sync()
    assert answer == {"batchItemFailures": []}
    answer, log = run_handler({"Records": [old_record]})  # a re-drive of the old image
    assert answer == {"batchItemFailures": []}
    assert log["VersionConflicts"] == 1
    assert index_docs(opensearch.url, "redrive")["k|1"]["v"] == "new"
    assert_index_equals_table(opensearch.url, table)


class NoisyNumber:
    """A time whose str() is the event's own Python code: the handler must not call it."""
    calls = 0

    def __str__(self):
        NoisyNumber.calls += 1
        return "1704067299"


def test_versions_from_int_float_and_decimal_times_and_never_an_objects_str(servers, configure):
    opensearch, _ = servers
    configure(TABLE_KEYS="times=pk")
    arn = "arn:aws:dynamodb:us-east-1:000000000000:table/times/stream/2024-01-01T00:00:00.000"

    def rec(i, when):
        return {"eventID": f"t{i}", "eventName": "INSERT", "eventSourceARN": arn,
                "dynamodb": {"ApproximateCreationDateTime": when, "Keys": {"pk": {"S": f"k{i}"}},
                             "NewImage": {"pk": {"S": f"k{i}"}}, "SequenceNumber": str(i), "StreamViewType": "NEW_IMAGE"}}

    NoisyNumber.calls = 0
    event = {"Records": [rec(1, 1704067200), rec(2, 1704067200.5), rec(3, Decimal("1704067200.000001")),
                         rec(4, NoisyNumber()), rec(5, float("inf"))]}
    answer, log = run_handler(event)
    assert answer == {"batchItemFailures": []}
    assert (log["Indexed"], log["DeadLettered"], log["Failed"]) == (3, 2, 0)
    assert NoisyNumber.calls == 0
    versions = {}
    for i in range(1, 4):
        status, doc = http("GET", f"{opensearch.url}/times/_doc/k{i}")
        assert status == 200, doc
        versions[i] = int(doc["_version"])
    # Microseconds of the record's time.
    assert versions == {1: 1704067200000000, 2: 1704067200500000, 3: 1704067200000001}
    # Times that give no version are not written unversioned (a replayed old change would then overwrite a
    # newer document): they are dead letters, which name the field; their raw records stay JSON (the object
    # has no text to keep: null; inf, which JSON has no number for, as text).
    letters = index_docs(opensearch.url, "times-dlq")
    assert sorted(letter["id"] for letter in letters.values()) == ["k4", "k5"]
    for letter in letters.values():
        assert http("GET", f"{opensearch.url}/times/_doc/{letter['id']}")[0] == 404
        assert letter["error"]["type"] == "ddb2os.record.bad_field"
        assert letter["error"]["reason"].startswith("dynamodb.ApproximateCreationDateTime: "
                                                    "dynamodb.ApproximateCreationDateTime must be a time since 1970")
        raw = json.loads(letter["record"])
        assert raw["dynamodb"]["ApproximateCreationDateTime"] == {"k4": None, "k5": "inf"}[letter["id"]]


def test_backfill_writes_what_the_table_holds_and_later_changes_still_win(servers, configure, tmp_path):
    """python -m ddb2os.backfill: a table's items (written before anything read its stream) into the index, by
    parallel Scan pages; then the stream's later changes win over the backfill, and an older change does not."""
    from ddb2os.backfill import backfill, main

    opensearch, dynamodb = servers
    configure()  # no TABLE_KEYS: the backfill gives the engine the table's key schema
    table = Table(dynamodb, "backfilled")
    rng = random.Random(11)
    random_workload(table, rng, keys=50, ops=200)
    table.new_records()  # never handed to the handler: the backfill alone must bring the index up to date
    before = time.time()
    lines = []
    result = backfill("backfilled", dynamodb=table.ddb, segments=2, page_size=7, margin_seconds=120, log=lines.append)
    after = time.time()
    items = len(table.items())
    assert result["failed"] == [] and result["dead_lettered"] == 0 and result["version_conflicts"] == 0
    assert result["items"] == result["indexed"] == items > 20
    assert result["pages"] == len(lines) >= items // 7
    assert before - 121 <= result["version"] <= after - 119
    assert_index_equals_table(opensearch.url, table)

    # Later changes through the stream (their times are after the scan started) win over the backfill.
    random_workload(table, rng, keys=50, ops=120)
    for answer, log in table.sync(batch_size=50):
        assert answer == {"batchItemFailures": []} and log["Failed"] == 0
    assert_index_equals_table(opensearch.url, table)

    # A change older than the backfill's version, delivered late, does not overwrite it.
    remaining = table.items()
    key = {"pk": remaining[0]["pk"], "sk": remaining[0]["sk"]}
    stale = {"Records": [{"eventID": "stale", "eventName": "MODIFY", "eventSourceARN": "arn:aws:dynamodb:ddblocal:000000000000:"
                          "table/backfilled/stream/2024-01-01T00:00:00.000",
                          "dynamodb": {"ApproximateCreationDateTime": result["version"] - 3600, "Keys": key,
                                       "NewImage": {**key, "title": {"S": "an image from an hour before the backfill"}},
                                       "SequenceNumber": "1", "StreamViewType": "NEW_AND_OLD_IMAGES"}}]}
    answer, log = run_handler(stale)
    assert answer == {"batchItemFailures": []} and log["VersionConflicts"] == 1 and log["Indexed"] == 0
    assert_index_equals_table(opensearch.url, table)

    # Stopped after two written pages (here by the log raising; in life a crash or Ctrl-C), a second run with the
    # same checkpoint goes on after them, reading DynamoDB's own LastEvaluatedKey back from the file.
    checkpoint = tmp_path / "backfilled.checkpoint"
    pages = []

    def stop_at_third(line):
        pages.append(line)
        if len(pages) == 3:
            raise RuntimeError("stopped")
    with pytest.raises(RuntimeError, match="stopped"):
        backfill("backfilled", dynamodb=table.ddb, page_size=7, margin_seconds=120, log=stop_at_third,
                 checkpoint=str(checkpoint))
    assert set(json.loads(checkpoint.read_text())["next"]) == {"0"}
    resumed = backfill("backfilled", dynamodb=table.ddb, page_size=7, margin_seconds=120, checkpoint=str(checkpoint))
    assert resumed["resumed"] and resumed["failed"] == [] and resumed["items"] == len(remaining) - 14
    assert not checkpoint.exists()
    assert_index_equals_table(opensearch.url, table)

    # OpenSearch unreachable: the items of the pages being written are listed with the reason, the scan stops.
    unreachable = {**os.environ, "OPENSEARCH_ENDPOINT": f"http://127.0.0.1:{stack.free_port()}"}
    down = backfill("backfilled", dynamodb=table.ddb, page_size=5, environment=unreachable, page_seconds=1)
    assert down["stopped"] and down["indexed"] == 0 and down["items"] == len(down["failed"]) == 5
    # Keys as DynamoDB types them, as the table gives them.
    assert {json.dumps(f["key"], sort_keys=True) for f in down["failed"]} <= {
        json.dumps({"pk": i["pk"], "sk": i["sk"]}, sort_keys=True) for i in remaining}
    assert "HTTP" in down["failed"][0]["reason"] or "connect" in down["failed"][0]["reason"].lower(), down["failed"][0]

    # The command line: same environment, exit status 0, a summary line.
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["backfilled", "--margin-seconds", "120"]) == 0
    summary = json.loads(out.getvalue().splitlines()[-1])
    assert summary["message"] == "ddb2os backfill done" and summary["items"] == len(remaining) and summary["failed"] == 0
    assert summary["indexed"] + summary["version_conflicts"] == len(remaining)
    assert_index_equals_table(opensearch.url, table)


def test_records_stay_alive_while_another_thread_empties_the_event(servers, configure):
    """The handler lets other threads run while it waits for OpenSearch (the GIL released), then
    copies a rejected record into its dead letter. A thread that empties the event meanwhile, freeing
    the records and reusing their memory, changes nothing: the engine holds the records itself."""
    opensearch, _ = servers
    with FaultProxy(opensearch.url) as faults:
        configure(OPENSEARCH_ENDPOINT=faults.url, TABLE_KEYS="pinned=pk")
        arn = "arn:aws:dynamodb:us-east-1:000000000000:table/pinned/stream/2024-01-01T00:00:00.000"

        def rec(i, n):
            return {"eventID": f"p{i}", "eventName": "INSERT", "eventSourceARN": arn,
                    "dynamodb": {"ApproximateCreationDateTime": 1704067200, "Keys": {"pk": {"S": f"k{i}"}},
                                 "NewImage": {"pk": {"S": f"k{i}"}, "n": {"N": n}},
                                 "SequenceNumber": str(i), "StreamViewType": "NEW_IMAGE"}}

        event = {"Records": [rec(1, "1"), rec(2, "not a number"), rec(3, "3")]}
        rejected = json.loads(json.dumps(event["Records"][1]))
        faults.delay_next(1, seconds=1.0, path="_bulk")
        junk, returned, meddled_while_waiting = [], threading.Event(), []

        def meddle():
            deadline = time.monotonic() + 30
            while faults.requests == 0 and time.monotonic() < deadline:
                time.sleep(0.002)
            event["Records"].clear()  # the records' last references, but for the engine's own
            junk.extend({"eventID": "junk", "dynamodb": {"n": i}} for i in range(20000))  # their memory reused
            meddled_while_waiting.append(not returned.is_set())

        thread = threading.Thread(target=meddle)
        thread.start()
        try:
            answer, log = run_handler(event)
        finally:
            returned.set()
            thread.join()
        assert meddled_while_waiting == [True] and event["Records"] == []
        assert answer == {"batchItemFailures": []}
        assert (log["Indexed"], log["DeadLettered"], log["Failed"]) == (2, 1, 0)
        assert sorted(index_docs(opensearch.url, "pinned")) == ["k1", "k3"]
        (letter,) = index_docs(opensearch.url, "pinned-dlq").values()
        assert letter["error"]["type"] == "ddb2os.number.invalid"
        assert json.loads(letter["record"]) == rejected


@pytest.mark.parametrize("service", ["es", "aoss"])
def test_sigv4_end_to_end_through_a_verifying_proxy(servers, configure, service):
    opensearch, dynamodb = servers
    token = "FwoGZXIvYXdzE-session-token-" + service
    creds = {"access_key": CREDS["aws_access_key_id"], "secret_key": CREDS["aws_secret_access_key"], "session_token": token}
    with SigV4VerifyingProxy(opensearch.url, "us-east-1", service, creds) as proxy:
        # gzip bodies, _bulk with a query parameter, a session token; DescribeTable is signed too.
        configure(OPENSEARCH_ENDPOINT=proxy.url, OPENSEARCH_AUTH="sigv4", OPENSEARCH_SERVICE=service,
                  AWS_SESSION_TOKEN=token, OPENSEARCH_GZIP="true", REFRESH="wait_for", MAX_BULK_ACTIONS="25")
        table = Table(dynamodb, f"signed-{service}")
        random_workload(table, random.Random(3), keys=30, ops=120)
        for answer, log in table.sync():
            assert answer == {"batchItemFailures": []}
        assert proxy.rejected == 0, proxy.rejections
        assert proxy.accepted >= 2
        # The engine's whole query (filter_path's "," and "*" are encoded in the canonical request) verified.
        assert any(seen.target.endswith("?filter_path=errors,items.*.status,items.*.error&refresh=wait_for")
                   for seen in proxy.log), "the _bulk query was not signed and sent"
        assert_index_equals_table(opensearch.url, table)

        # A wrong secret is refused by the proxy, and the handler reports the records as failed.
        configure(OPENSEARCH_ENDPOINT=proxy.url, OPENSEARCH_AUTH="sigv4", OPENSEARCH_SERVICE=service,
                  AWS_SESSION_TOKEN=token, AWS_SECRET_ACCESS_KEY="not-the-secret", TABLE_KEYS=f"signed-{service}=pk,sk")
        table.ddb.put_item(TableName=table.name, Item={"pk": {"S": "z"}, "sk": {"N": "1"}})
        (answer, log), = table.sync()
        assert len(answer["batchItemFailures"]) == 1 and log["Failed"] == 1
        assert proxy.rejected >= 1
        assert "not-the-secret" not in json.dumps(log)


def test_tls_with_a_test_ca_and_refused_without_it(servers, configure, tmp_path):
    opensearch, dynamodb = servers
    ca_file, cert_file, key_file = make_test_ca(tmp_path)
    with TLSProxy(opensearch.url, (ca_file, cert_file, key_file)) as tls:
        table = Table(dynamodb, "tls")
        table.ddb.put_item(TableName="tls", Item={"pk": {"S": "a"}, "sk": {"N": "1"}, "v": {"S": "over TLS"}})
        records = table.new_records()
        configure(OPENSEARCH_ENDPOINT=tls.url_localhost, TABLE_KEYS="tls=pk,sk")  # the system CAs do not know it
        # A certificate no retry fixes: reported after three tries, not when the invocation's time is up.
        start = time.monotonic()
        answer, log = run_handler({"Records": records}, milliseconds=60_000)
        assert time.monotonic() - start < 30
        assert len(answer["batchItemFailures"]) == 1
        # The proxy counts a failed handshake in its own thread, once the client has given up on it: the
        # third may be counted a moment after the handler returns (a CI run saw 2).
        counted_by = time.monotonic() + 10
        while tls.handshake_failures < 3 and time.monotonic() < counted_by:
            time.sleep(0.01)
        assert tls.handshake_failures == 3
        assert log["failure_lines"][0]["reason"].startswith("failed 3 times: request failed: ")
        assert "certificate" in log["failure_lines"][0]["reason"]
        configure(OPENSEARCH_ENDPOINT=tls.url_localhost, TABLE_KEYS="tls=pk,sk", OPENSEARCH_CA_FILE=str(ca_file))
        answer, log = run_handler({"Records": records})
        assert answer == {"batchItemFailures": []}
        assert_index_equals_table(opensearch.url, table)


def test_throttled_items_are_retried_alone_until_they_succeed(servers, configure):
    opensearch, dynamodb = servers
    with FaultProxy(opensearch.url) as faults:
        configure(OPENSEARCH_ENDPOINT=faults.url, TABLE_KEYS="throttled=pk,sk")
        table = Table(dynamodb, "throttled")
        for i in range(10):
            table.ddb.put_item(TableName="throttled", Item={"pk": {"S": "p"}, "sk": {"N": str(i)}, "n": {"N": str(i)}})
        faults.fail_bulk_items(["p|3", "p|7"], error="429", n=2)  # two rounds of throttling for two items
        faults.fail_next(1, 503, path="_bulk")                     # and one whole request refused
        (answer, log), = table.sync()
        assert answer == {"batchItemFailures": []}
        assert log["Retries"] >= 3 and log["Failed"] == 0
        assert faults.bulk_items_failed == 4
        assert_index_equals_table(opensearch.url, table)
