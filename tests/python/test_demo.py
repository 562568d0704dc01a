"""The README's main job, `make demo` (scripts/demo.py), run whole: it starts its own servers."""
from __future__ import annotations

import base64
import datetime
import json
import os
import pathlib
import signal
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import stack  # noqa: E402
import streams  # noqa: E402


def test_the_demo_syncs_the_table_loses_nothing_and_its_backfill_agrees():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OPENSEARCH_", "DYNAMODB_"))}
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo.py")], capture_output=True, text=True,
                         timeout=600, env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = run.stdout
    assert "== the stream holds 7 records" in out
    assert out.count('returns {"batchItemFailures": []}') == 3
    assert "12345678901234567890.99" in out  # the price, every digit
    assert "HTTP 404 (deleted in DynamoDB, gone from OpenSearch)" in out
    assert "_id 'Bad Data|X': mapper_parsing_exception" in out
    assert "== DynamoDB has 4 items; OpenSearch has 3 documents and 1 dead letter(s): nothing lost" in out
    assert "4 items: 3 indexed, 1 dead-lettered, 0 failed" in out
    assert "the same _ids and documents as the index the stream built: True" in out


def test_the_demos_check_finds_an_item_in_neither_the_index_nor_the_dead_letters():
    """What makes `make demo` exit 1 (a run that loses nothing never reaches it): the table's items whose _id is
    neither a document's nor a dead letter's, by the same _id mapping as the handler's (| escaped)."""
    import demo

    keys = ["author", "bookTitle"]
    items = [{"author": {"S": "Ann"}, "bookTitle": {"S": "x"}, "year": {"N": "1"}},
             {"author": {"S": "Bob"}, "bookTitle": {"S": "y|z"}}]
    assert demo.lost_items(items, ["Ann|x"], [], keys) == [items[1]]
    assert demo.lost_items(items, iter(["Ann|x"]), iter(["Bob|y\\|z"]), keys) == []
    assert demo.lost_items(items, ["Bob|y|z"], ["Ann|x"], keys) == [items[1]]  # unescaped: another _id
    assert demo.lost_items(items, [], [], keys) == items


def test_the_cli_demo_shows_a_bad_record_reported_and_fails_when_the_cli_does(cli, tmp_path):
    """`make demo-cli` (scripts/demo.sh): exit 0 when the CLI converts the good records and reports the bad one
    (its exit status 1); a CLI that is missing (or answers otherwise) fails the demo, where it printed on."""
    run = subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh"), str(cli.parent)], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert '"_id":"Dan Brown|Inferno"' in run.stdout and '"error":"number.invalid"' in run.stdout
    assert "-- exit status 1: some records failed, and were reported" in run.stdout
    run = subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh"), str(tmp_path)], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 1
    assert "-- exit status 127, where 1 was expected (record 5 is bad)" in run.stderr


def test_sigterm_stops_the_demos_servers_and_removes_their_directories():
    """A CI runner's stop (SIGTERM) is taken as Ctrl-C: the servers' context managers stop them and remove their
    directories and records, rather than leave them for the next `reap`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OPENSEARCH_", "DYNAMODB_"))}
    proc = subprocess.Popen([sys.executable, "-u", str(ROOT / "scripts" / "demo.py")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        for line in proc.stdout:
            if line.startswith("DynamoDB Local "):  # both servers up
                break
        servers = [json.loads(r.read_text()) for r in sorted(stack.RUN_DIR.glob(f"*-{proc.pid}-*.json"))]
        assert sorted(s["name"] for s in servers) == ["dynamodb-local", "opensearch"], line
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)
        assert sorted(stack.RUN_DIR.glob(f"*-{proc.pid}-*.json")) == []
        for server in servers:
            assert not pathlib.Path(server["tmpdir"]).exists(), server
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        stack.reap()  # whatever it left (its owner is gone)


class FakeStreams:
    """DynamoDB Streams as boto3 answers: each shard's pages of records, then empty pages (an open shard's
    iterator never ends)."""

    def __init__(self, shards):
        self.shards = shards
        self.past_the_tip = 0

    def describe_stream(self, StreamArn):
        return {"StreamDescription": {"Shards": [{"ShardId": shard} for shard in self.shards]}}

    def get_shard_iterator(self, StreamArn, ShardId, ShardIteratorType):
        assert ShardIteratorType == "TRIM_HORIZON"
        return {"ShardIterator": f"{ShardId}/0"}

    def get_records(self, ShardIterator, Limit):
        shard, page = ShardIterator.rsplit("/", 1)
        pages = self.shards[shard]
        if int(page) >= len(pages):
            self.past_the_tip += 1
            assert self.past_the_tip < 10, "read on past the stream's tip"
        records = pages[int(page)] if int(page) < len(pages) else []
        return {"Records": records, "NextShardIterator": f"{shard}/{int(page) + 1}"}


def boto3_record(sequence, event="MODIFY"):
    """A GetRecords record as boto3 gives it: a datetime, and bytes for B and BS."""
    return {"eventID": f"e{sequence}", "eventName": event, "eventSource": "aws:dynamodb", "dynamodb": {
        "ApproximateCreationDateTime": datetime.datetime(2024, 1, 2, 3, 4, 5, 500000, tzinfo=datetime.timezone.utc),
        "Keys": {"id": {"B": b"\x00\xff"}}, "NewImage": {"id": {"B": b"\x00\xff"}, "tags": {"BS": [b"a", b"bc"]}},
        "OldImage": {"id": {"B": b"\x00\xff"}, "blob": {"B": b"old"}, "nested": {"L": [{"B": b"x"}]}},
        "SequenceNumber": str(sequence), "StreamViewType": "NEW_AND_OLD_IMAGES"}}


def test_the_stream_is_read_to_its_tip_in_order_and_shaped_as_lambda_delivers_it():
    """scripts/streams.py, which the demo and the end-to-end tests read streams with."""
    client = FakeStreams({"shard-1": [[boto3_record(100), boto3_record(300)], [boto3_record(500)]],
                          "shard-2": [[boto3_record(200)], [boto3_record(400)]]})
    records = streams.read_stream(client, "arn:stream")
    assert [r["dynamodb"]["SequenceNumber"] for r in records] == ["100", "200", "300", "400", "500"]
    first = records[0]
    json.dumps(first)  # as Lambda's event is: JSON, no bytes or datetimes
    assert first["eventSourceARN"] == "arn:stream" and first["eventName"] == "MODIFY"
    ddb = first["dynamodb"]
    assert ddb["ApproximateCreationDateTime"] == 1704164645.5
    b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
    assert ddb["Keys"] == {"id": {"B": b64(b"\x00\xff")}}
    assert ddb["NewImage"]["tags"] == {"BS": [b64(b"a"), b64(b"bc")]}
    assert ddb["OldImage"]["blob"] == {"B": b64(b"old")} and ddb["OldImage"]["nested"] == {"L": [{"B": b64(b"x")}]}
    batches = list(streams.batches(records, 2))
    assert [[r["dynamodb"]["SequenceNumber"] for r in b["Records"]] for b in batches] == [
        ["100", "200"], ["300", "400"], ["500"]]
