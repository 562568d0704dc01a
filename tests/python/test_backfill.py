"""ddb2os.backfill's checks that come before any Scan or write (the real runs are in test_e2e.py)."""
from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import pytest

from ddb2os import backfill as bf

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from local_server import LocalServer, all_succeeded  # noqa: E402

ENV = {"OPENSEARCH_ENDPOINT": "http://127.0.0.1:9", "AWS_REGION": "us-east-1", "OPENSEARCH_AUTH": "none"}


class FakeDynamoDB:
    """describe_table only: a scan would mean a check came too late."""

    def __init__(self, date=None, name="books", account="1"):
        self.date, self.name, self.account = date, name, account

    def describe_table(self, TableName):
        meta = {"ResponseMetadata": {"HTTPHeaders": {"date": self.date}}} if self.date else {}
        return {**meta, "Table": {"TableName": self.name, "TableId": "id-1",
                                  "TableArn": f"arn:aws:dynamodb:us-east-1:{self.account}:table/{self.name}",
                                  "KeySchema": [{"AttributeName": "bookTitle", "KeyType": "RANGE"},
                                                {"AttributeName": "author", "KeyType": "HASH"}],
                                  "AttributeDefinitions": [{"AttributeName": "author", "AttributeType": "S"},
                                                           {"AttributeName": "bookTitle", "AttributeType": "B"}]}}

    def scan(self, **kwargs):
        raise AssertionError("scanned")


def run(env=None, dynamodb=None, table="books", **kwargs):
    return bf.backfill(table, dynamodb=dynamodb or FakeDynamoDB(), environment={**ENV, **(env or {})}, **kwargs)


class OnePage(FakeDynamoDB):
    """A table of the given items in one Scan page; records each Scan's arguments."""

    def __init__(self, items=(), **kwargs):
        super().__init__(**kwargs)
        self.items, self.scans = list(items), []

    def scan(self, **kwargs):
        self.scans.append(kwargs)
        return {"Items": self.items}


class SpyEngine:
    """The engine, replaced: records each page's time budget and reports every record as failed."""
    budgets: list = []

    def __init__(self, config, env, credentials_from=None):
        pass

    def process(self, event, seconds):
        SpyEngine.budgets.append(seconds)
        return {"indexed": 0, "version_conflicts": 0, "dead_lettered": 0,
                "failures": [{"record": i, "reason": "refused"} for i in range(len(event["Records"]))]}


@pytest.mark.parametrize("kwargs, message", [
    ({"segments": 0}, "segments must be a whole number from 1 to 1000"),
    ({"segments": 1001}, "segments must be a whole number from 1 to 1000"),
    ({"margin_seconds": 1e10}, "margin_seconds must be at most 86400"),
    ({"checkpoint": ""}, "checkpoint must be a file name"),
    ({"page_size": 0}, "page_size must be a whole number, at least 1"),
    ({"margin_seconds": 0.5}, "margin_seconds must be at least 1"),
    ({"margin_seconds": float("nan")}, "margin_seconds must be at least 1"),
    ({"page_seconds": 0}, "page_seconds must be a positive number"),
])
def test_arguments_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        run(**kwargs)


def test_the_handlers_key_schema_is_used_so_both_write_the_same_ids():
    described = ["author", "bookTitle"]
    config = {"table_keys": {}, "default_keys": []}
    assert bf._handler_keys(config, "books", described) == ["author", "bookTitle"]
    # TABLE_KEYS (or DB_HASH_KEY/DB_SORT_KEY) in another order: the handler's order, as its _ids are made.
    assert bf._handler_keys({"table_keys": {"books": ["bookTitle", "author"]}, "default_keys": []}, "books",
                            described) == ["bookTitle", "author"]
    assert bf._handler_keys({"table_keys": {}, "default_keys": ["bookTitle", "author"]}, "books",
                            described) == ["bookTitle", "author"]
    with pytest.raises(ValueError, match=r"the key schema configured for table 'books' \(isbn\) is not the table's "
                                         r"key \(author,bookTitle\)"):
        run({"TABLE_KEYS": "books=isbn"})
    # Kept, but said (the backfill is the one place that can notice a swapped TABLE_KEYS).
    lines = []
    run({"TABLE_KEYS": "books=bookTitle,author"}, dynamodb=OnePage(), log=lines.append)
    assert json.loads(lines[0]) == {"message": "ddb2os backfill: the configured key order is not the table's",
                                    "table": "books", "configured": ["bookTitle", "author"],
                                    "table_key": ["author", "bookTitle"]}
    lines.clear()
    run({"TABLE_KEYS": "books=author,bookTitle"}, dynamodb=OnePage(), log=lines.append)
    assert not any("key order" in line for line in lines)


def test_the_command_line_reports_bad_input_in_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        bf.main(["books", "--segments", "0"])
    assert e.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith("segments must be a whole number from 1 to 1000 (a thread and an OpenSearch connection each)")


def test_the_command_line_runs_without_docstrings():
    """python -OO (PYTHONOPTIMIZE=2) drops docstrings: the help is still given, without the description."""
    run = subprocess.run([sys.executable, "-OO", "-m", "ddb2os.backfill", "--help"], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0 and run.stdout.startswith("usage: python -m ddb2os.backfill"), run.stderr


def test_a_host_clock_ahead_of_dynamodbs_by_more_than_the_margin_is_refused():
    import email.utils
    import time
    behind = email.utils.formatdate(time.time() - 120, usegmt=True)  # DynamoDB's clock 2 minutes behind ours
    with pytest.raises(ValueError, match=r"this host's clock is 12\d s ahead of DynamoDB's .* more than margin_seconds \(60\)"):
        run(dynamodb=FakeDynamoDB(date=behind))
    # Within the margin: on to the Scan (which this fake refuses).
    with pytest.raises(bf.BackfillError, match="segment 0: AssertionError: scanned"):
        run(dynamodb=FakeDynamoDB(date=behind), margin_seconds=180)


def test_answers_and_files_of_odd_shapes_are_errors_that_say_so():
    """Found by a review: each was a bare IndexError, KeyError, AttributeError, OverflowError or RecursionError."""
    class Arn(FakeDynamoDB):
        def __init__(self, arn, **kwargs):
            super().__init__(**kwargs)
            self.arn = arn

        def describe_table(self, TableName):
            answer = super().describe_table(TableName)
            if self.arn is None:
                del answer["Table"]["TableArn"]
            else:
                answer["Table"]["TableArn"] = self.arn
            return answer

    with pytest.raises(ValueError) as e:
        run(dynamodb=Arn("books"))
    assert str(e.value) == "table 'books' cannot be written: DescribeTable's TableArn 'books' names no table (record.bad_field)"
    with pytest.raises(ValueError, match="^table 'books': DescribeTable's answer has no TableArn$"):
        run(dynamodb=Arn(None))

    # A Date no datetime holds, or no ResponseMetadata: no clock to compare, on to the Scan.
    class Odd(FakeDynamoDB):
        def __init__(self, meta):
            super().__init__()
            self.meta = meta

        def describe_table(self, TableName):
            return {**super().describe_table(TableName), "ResponseMetadata": self.meta}

    for meta in ({"HTTPHeaders": {"date": "Mon, 01 Jan 10000000000 00:00:00 GMT"}}, None, {"HTTPHeaders": None}):
        with pytest.raises(bf.BackfillError, match="segment 0: AssertionError: scanned"):
            run(dynamodb=Odd(meta))


def test_a_checkpoint_nested_past_pythons_limit_cannot_be_read(tmp_path):
    path = tmp_path / "cp.json"
    path.write_text("[" * 100_000)
    # Python's own words follow (3.9-3.13 "maximum recursion depth exceeded", 3.14 "Stack overflow").
    with pytest.raises(ValueError, match=r"^checkpoint '.*cp\.json' cannot be read: .*while decoding a JSON array"):
        run(checkpoint=str(path))


def test_credentials_with_a_control_character_are_refused_before_botocore_quotes_them(monkeypatch):
    """botocore sent a session token with a CR (a .env file's line end), and its HTTP client's refusal quoted
    the token, which the command printed (found by a review). Refused by name before any client is made."""
    import boto3
    monkeypatch.setattr(boto3.session.Session, "client", lambda *a, **k: pytest.fail("a client was made"))
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        env = {**ENV, "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "SK", var: "TOKSECRET\r"}
        with pytest.raises(ValueError) as e:
            bf.backfill("books", environment=env)
        assert str(e.value) == f"{var} holds a control character (a line break?): it cannot be sent in a header"
        assert "TOKSECRET" not in repr(e.value) and e.value.__context__ is None


def test_without_boto3_the_backfill_says_how_to_get_it(monkeypatch):
    """A plain pip install of ddb2os has no boto3 (Lambda's runtime has): the error says what to install."""
    monkeypatch.setitem(sys.modules, "boto3", None)  # import boto3 raises ImportError
    with pytest.raises(ImportError) as e:
        bf.backfill("books", environment=ENV)
    assert str(e.value).startswith("the backfill reads DynamoDB with boto3, which cannot be imported (")
    assert str(e.value).endswith("): pip install 'ddb2os[backfill]', or pass dynamodb= a client of your own")
    run(dynamodb=OnePage())  # a client of one's own needs no boto3


def test_a_table_given_by_arn_is_scanned_by_its_arn():
    """A bare name would scan the caller's own account's table of that name, not the one the ARN names."""
    arn = "arn:aws:dynamodb:us-east-1:222222222222:table/books"
    ddb = OnePage(account="222222222222")
    result = run(dynamodb=ddb, table=arn)
    assert [s["TableName"] for s in ddb.scans] == [arn]
    assert result["items"] == 0 and result["failed"] == []
    named = OnePage()
    run(dynamodb=named)
    assert [s["TableName"] for s in named.scans] == ["books"]


@pytest.mark.parametrize("table, env, message", [
    ("_sessions", {}, "table '_sessions' cannot be written: index name \"_sessions\" is invalid: it must not start with"),
    ("books", {"INDEX_TEMPLATE": "x" * 250 + "-{table}"}, "table 'books' cannot be written: index name \"x{250}-books\" is"),
    # The index fits (254 bytes), its default dead-letter index (+ "-dlq") does not.
    ("books", {"INDEX_TEMPLATE": "x" * 248 + "-{table}"},
     "table 'books' cannot be written: its dead-letter index: index name \"x{248}-books-dlq\" is invalid: it is longer"),
])
def test_a_table_whose_index_name_is_invalid_is_refused_before_any_scan(table, env, message):
    # Not refused, every item would have gone to the dead-letter index and the run would have succeeded.
    with pytest.raises(ValueError, match=message):
        run(env, dynamodb=FakeDynamoDB(name=table), table=table)
    # A fixed index makes the same table writable: on to the Scan (which this fake refuses).
    with pytest.raises(bf.BackfillError, match="segment 0: AssertionError: scanned"):
        run({"INDEX_NAME": "sessions", "DLQ_INDEX": "dead"}, dynamodb=FakeDynamoDB(name=table), table=table)


def test_a_page_is_timed_on_the_monotonic_clock_and_failures_keep_exact_keys(monkeypatch):
    """The wall clock stepped back an hour after a Scan must not give the page an hour to retry in (past
    index.gc_deletes); and a failed item is listed with its key's exact number, not a float's."""
    import time
    real_time = time.time
    calls = []

    def stepping_time():
        calls.append(1)
        return real_time() - (3600 if len(calls) > 2 else 0)  # after the start and a Scan

    SpyEngine.budgets = []
    monkeypatch.setattr(bf._core, "SyncEngine", SpyEngine)
    monkeypatch.setattr(time, "time", stepping_time)
    item = {"author": {"N": "12345678901234567890.99"}, "bookTitle": {"S": "T"}}
    result = run(dynamodb=OnePage([item]), page_seconds=30)
    binary = run(dynamodb=OnePage([{"author": {"B": b"\x00\xff"}, "bookTitle": {"S": "T"}}]))
    monkeypatch.undo()
    assert len(SpyEngine.budgets) == 2 and all(0 < b <= 30 for b in SpyEngine.budgets)
    # As DynamoDB types it: exact, JSON-safe, and a number not confused with a string of the same text.
    assert result["failed"] == [{"key": {"author": {"N": "12345678901234567890.99"}, "bookTitle": {"S": "T"}},
                                 "reason": "refused"}]
    json.dumps(result["failed"])
    assert binary["failed"][0]["key"] == {"author": {"B": "AP8="}, "bookTitle": {"S": "T"}}


class Pages(FakeDynamoDB):
    """A table of numbered items, `per_page` to a Scan page, with B sort keys (to round-trip a binary
    ExclusiveStartKey through the checkpoint file); records each Scan's arguments."""

    def __init__(self, n, per_page=3):
        super().__init__()
        self.rows = [{"author": {"S": f"a{i:02}"}, "bookTitle": {"B": bytes([i, 255])}, "n": {"N": str(i)}} for i in range(n)]
        self.per_page, self.scans = per_page, []

    def scan(self, **kwargs):
        self.scans.append(kwargs)
        start = 0
        if "ExclusiveStartKey" in kwargs:
            k = kwargs["ExclusiveStartKey"]
            assert isinstance(k["bookTitle"]["B"], bytes)  # as boto3's client takes it
            start = next(i for i, r in enumerate(self.rows) if r["author"] == k["author"]) + 1
        page = self.rows[start:start + self.per_page]
        answer = {"Items": page}
        if start + self.per_page < len(self.rows):
            answer["LastEvaluatedKey"] = {"author": page[-1]["author"], "bookTitle": page[-1]["bookTitle"]}
        return answer


class CountingEngine:
    """The engine, replaced: records every item's n, and fails every record of a page holding `fail_at`."""
    seen: list = []
    fail_at = None

    def __init__(self, config, env, credentials_from=None):
        pass

    def process(self, event, seconds):
        ns = [int(r["dynamodb"]["NewImage"]["n"]["N"]) for r in event["Records"]]
        CountingEngine.seen.extend(ns)
        failing = CountingEngine.fail_at in ns
        return {"indexed": 0 if failing else len(ns), "version_conflicts": 0, "dead_lettered": 0,
                "failures": [{"record": i, "reason": "refused"} for i in range(len(ns))] if failing else []}


def test_a_checkpoint_lets_a_second_run_go_on_after_the_last_written_page(monkeypatch, tmp_path):
    monkeypatch.setattr(bf._core, "SyncEngine", CountingEngine)
    path = str(tmp_path / "books.checkpoint")
    table = Pages(10)  # pages 0-2, 3-5, 6-8, 9

    # The third page is refused: the run stops, and the file says to go on after the second.
    CountingEngine.seen, CountingEngine.fail_at = [], 7
    first = run(dynamodb=table, checkpoint=path)
    assert first["stopped"] and first["resumed"] is False and len(first["failed"]) == 3
    assert CountingEngine.seen == list(range(9))
    saved = json.load(open(path))
    assert saved["next"] == {"0": {"author": {"S": "a05"}, "bookTitle": {"B": "Bf8="}}} and saved["done"] == []

    # The second run starts there (items 6-9 only), and removes the file once the table is written.
    CountingEngine.seen, CountingEngine.fail_at = [], None
    table.scans = []
    second = run(dynamodb=table, checkpoint=path)
    assert second["resumed"] is True and second["failed"] == [] and not second["stopped"]
    assert CountingEngine.seen == [6, 7, 8, 9] and second["items"] == second["indexed"] == 4
    assert table.scans[0]["ExclusiveStartKey"] == {"author": {"S": "a05"}, "bookTitle": {"B": bytes([5, 255])}}
    assert not (tmp_path / "books.checkpoint").exists()

    # Without a file, a run with a checkpoint writes everything.
    CountingEngine.seen = []
    assert run(dynamodb=table, checkpoint=path)["items"] == 10 and CountingEngine.seen == list(range(10))


TARGET = {"endpoint": "http://127.0.0.1:9", "index": "", "dlq_index": "{index}-dlq", "numbers": "exact",
          "lists": "stringify", "exclude": [], "include": [], "keys": ["author", "bookTitle"]}


def test_a_segment_a_checkpoint_says_is_done_is_not_scanned_again(monkeypatch, tmp_path):
    monkeypatch.setattr(bf._core, "SyncEngine", CountingEngine)
    path = tmp_path / "cp.json"
    arn = "arn:aws:dynamodb:us-east-1:1:table/books"
    path.write_text(json.dumps({"table": arn, "table_id": "id-1", "segments": 2, "target": TARGET, "next": {},
                                "done": [0]}))
    CountingEngine.seen, CountingEngine.fail_at = [], None
    table = Pages(4, per_page=10)
    result = run(dynamodb=table, checkpoint=str(path), segments=2)
    assert [s["Segment"] for s in table.scans] == [1]
    assert result["resumed"] is True and not path.exists()


def checkpoint_text(**change):
    return json.dumps({"table": "arn:aws:dynamodb:us-east-1:1:table/books", "table_id": "id-1", "segments": 1,
                       "target": TARGET, "next": {}, "done": [], **change})


@pytest.mark.parametrize("text, message", [
    (checkpoint_text(target={**TARGET, "index": "books-v1"}),
     "was written with other settings (index differ): its pages are not in what this run writes"),
    (checkpoint_text(target={**TARGET, "endpoint": "https://other:9200", "exclude": ["ssn"]}),
     "(endpoint, exclude differ)"),
    # Each setting README names: a resumed run would mix number forms, list forms, letters' indices or _ids.
    (checkpoint_text(target={**TARGET, "numbers": "string"}), "(numbers differ)"),
    (checkpoint_text(target={**TARGET, "lists": "keep"}), "(lists differ)"),
    (checkpoint_text(target={**TARGET, "dlq_index": "x-dlq"}), "(dlq_index differ)"),
    (checkpoint_text(target={**TARGET, "keys": ["bookTitle", "author"]}), "(keys differ)"),
    (checkpoint_text(next={"0": {"author": {"B": "not base64!"}}}), "holds no valid start key for segment '0'"),
    (checkpoint_text(next={"0": {"author": {"SS": ["a"]}}}), "holds no valid start key for segment '0'"),
    (checkpoint_text(next={"3": {"author": {"S": "a"}}}), "holds no valid start key for segment '3'"),
    # The table's key, typed as DescribeTable defines it (a Scan would refuse it only after the pages before).
    (checkpoint_text(next={"0": {"isbn": {"N": "5"}}}), "holds no valid start key for segment '0'"),
    (checkpoint_text(next={"0": {"author": {"S": "a"}}}), "holds no valid start key for segment '0'"),
    (checkpoint_text(next={"0": {"author": {"N": "1"}, "bookTitle": {"B": "AA=="}}}), "no valid start key"),
    (checkpoint_text(next={"0": {"author": {"S": "a"}, "bookTitle": {"S": "t"}}}), "no valid start key"),
    (checkpoint_text(table_id="id-0"), "is for another table of that name (TableId 'id-0', not 'id-1'"),
    (checkpoint_text(target="x"), "is not a ddb2os backfill checkpoint"),
    (checkpoint_text(done=[1]), "lists segments that are not 0 to 0 as done"),
    ('{"table": "arn:aws:dynamodb:us-east-1:1:table/films", "segments": 1, "target": {}, "next": {}, "done": []}',
     "is for table 'arn:aws:dynamodb:us-east-1:1:table/films' in 1 segments, not "
     "'arn:aws:dynamodb:us-east-1:1:table/books' in 1: give the same table and --segments, or remove the file"),
    ('{"table": "arn:aws:dynamodb:us-east-1:1:table/books", "segments": 4, "target": {}, "next": {}, "done": []}',
     "in 4 segments, not 'arn:aws:dynamodb:us-east-1:1:table/books' in 1"),
    ("[1, 2]", "is not a ddb2os backfill checkpoint"),
    ("{not json", "cannot be read"),
])
def test_a_checkpoint_of_another_run_is_refused_before_any_scan(tmp_path, text, message):
    path = tmp_path / "cp.json"
    path.write_text(text)
    with pytest.raises(ValueError) as e:
        run(checkpoint=str(path))
    assert message in str(e.value) and str(path) in str(e.value)
    assert path.read_text() == text  # left as it was


def test_dead_letter_ids_are_unique_per_run_even_when_a_resumed_run_numbers_its_pages_from_0(monkeypatch, tmp_path):
    """A dead letter's _id is its record's eventID: two runs in the same second (the same version) gave their
    pages the same eventIDs, and a resumed run's first page overwrote the first run's dead letters."""
    ids = []

    class Recording(CountingEngine):
        def process(self, event, seconds):
            ids.extend(r["eventID"] for r in event["Records"])
            return super().process(event, seconds)
    monkeypatch.setattr(bf._core, "SyncEngine", Recording)
    monkeypatch.setattr(bf.time, "time", lambda: 1_800_000_000.0)  # both runs in the same second
    CountingEngine.seen, CountingEngine.fail_at = [], 4
    path = str(tmp_path / "cp.json")
    first = run(dynamodb=Pages(9), checkpoint=path)
    CountingEngine.fail_at = None
    second = run(dynamodb=Pages(9), checkpoint=path)
    assert first["version"] == second["version"] and second["resumed"]
    assert len(ids) == 6 + 6 and len(set(ids)) == 12


def test_a_start_key_of_the_tables_key_and_types_is_taken(monkeypatch, tmp_path):
    monkeypatch.setattr(bf._core, "SyncEngine", CountingEngine)
    path = tmp_path / "cp.json"
    path.write_text(checkpoint_text(next={"0": {"author": {"S": "a01"}, "bookTitle": {"B": "Af8="}}}))
    CountingEngine.seen, CountingEngine.fail_at = [], None
    table = Pages(4)
    assert run(dynamodb=table, checkpoint=str(path))["resumed"] is True
    assert table.scans[0]["ExclusiveStartKey"] == {"author": {"S": "a01"}, "bookTitle": {"B": bytes([1, 255])}}
    assert CountingEngine.seen == [2, 3] and not path.exists()


def test_a_checkpoint_that_cannot_be_written_is_refused_before_any_scan(tmp_path):
    path = tmp_path / "no-such-directory" / "cp.json"
    with pytest.raises(ValueError, match="checkpoint '.*cp.json' cannot be written: No such file or directory"):
        run(checkpoint=str(path))  # FakeDynamoDB raises if scanned
    assert list(tmp_path.iterdir()) == []


class SegmentFails(Pages):
    """Segment 1's Scan raises while segment 0's second page is being read."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.second_page, self.raised = threading.Event(), threading.Event()

    def scan(self, **kwargs):
        if kwargs.get("Segment") == 1:
            assert self.second_page.wait(10)
            self.raised.set()
            raise RuntimeError("AccessDenied on Scan")
        if "ExclusiveStartKey" in kwargs:
            self.second_page.set()
            assert self.raised.wait(10)
        return super().scan(**kwargs)


def test_a_segment_that_raises_keeps_the_other_segments_failed_items(monkeypatch, tmp_path, capsys):
    """The error and the failed items of the segments that did not raise, together (the error alone was raised,
    and the failed items were not listed anywhere)."""
    monkeypatch.setattr(bf._core, "SyncEngine", CountingEngine)
    CountingEngine.seen, CountingEngine.fail_at = [], 4  # segment 0's first page written, its second refused
    path = str(tmp_path / "cp.json")
    with pytest.raises(bf.BackfillError) as e:
        run(dynamodb=SegmentFails(6, per_page=3), segments=2, checkpoint=path)
    assert str(e.value) == (f"segment 1: RuntimeError: AccessDenied on Scan; checkpoint {path!r} kept: a rerun goes "
                            f"on from it")
    assert [f["key"]["author"] for f in e.value.result["failed"]] == [{"S": "a03"}, {"S": "a04"}, {"S": "a05"}]
    assert e.value.result["stopped"] is True and e.value.result["items"] == 6
    # The segment's own exception kept (callers that caught botocore's ClientError can still look at it),
    # and the error pickles and copies with its parts.
    assert isinstance(e.value.__cause__, RuntimeError) and list(e.value.errors) == [1]
    import copy
    import pickle
    for again in (pickle.loads(pickle.dumps(e.value)), copy.copy(e.value)):
        assert type(again) is bf.BackfillError and str(again) == str(e.value)
        assert again.result == e.value.result and list(again.errors) == [1]
    assert json.load(open(path))["next"] == {"0": {"author": {"S": "a02"}, "bookTitle": {"B": "Av8="}}}

    # The command line lists them, then says what stopped the run.
    monkeypatch.setattr(bf, "backfill", lambda *a, **k: (_ for _ in ()).throw(bf.BackfillError("segment 1: X", {
        "items": 3, "failed": [{"key": {"author": {"S": "a00"}}, "reason": "refused"}], "stopped": True})))
    assert bf.main(["books"]) == 1
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0]["message"] == "ddb2os backfill stopped" and lines[0]["failed"] == 1
    assert lines[1] == {"message": "ddb2os backfill item failed", "key": {"author": {"S": "a00"}}, "reason": "refused"}
    assert err == "python -m ddb2os.backfill: error: segment 1: X\n"


def test_ctrl_c_says_whether_the_checkpoint_was_kept(monkeypatch, capsys, tmp_path):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(bf, "backfill", interrupted)
    monkeypatch.chdir(tmp_path)
    assert bf.main(["books", "--checkpoint", "cp.json"]) == 130  # no page written: no file
    assert capsys.readouterr().err == "python -m ddb2os.backfill: interrupted; a rerun writes everything again\n"
    (tmp_path / "cp.json").write_text("{}")
    assert bf.main(["books", "--checkpoint", "cp.json"]) == 130
    assert capsys.readouterr().err == ("python -m ddb2os.backfill: interrupted; checkpoint 'cp.json' kept: a rerun "
                                       "goes on from it\n")


def test_items_not_written_make_the_run_stopped_not_done(monkeypatch, capsys, tmp_path):
    """A run whose items failed said "ddb2os backfill done" (with "stopped": true), and nothing on stderr."""
    monkeypatch.setattr(bf._core, "SyncEngine", CountingEngine)
    backfill = bf.backfill
    monkeypatch.setattr(bf, "backfill", lambda table, **k: backfill(table, dynamodb=Pages(10), environment=ENV,
                                                                     checkpoint=k["checkpoint"]))
    monkeypatch.chdir(tmp_path)
    # The second page refused (the scan stops there); the last page, of one item (the scan had ended).
    for fail_at, stopped, failed, items in ((4, True, 3, "3 items"), (9, False, 1, "1 item")):
        CountingEngine.seen, CountingEngine.fail_at = [], fail_at
        assert bf.main(["books", "--checkpoint", "cp.json"]) == 1
        out, err = capsys.readouterr()
        summary = json.loads(out.splitlines()[0])
        assert summary["message"] == "ddb2os backfill stopped" and summary["stopped"] is stopped
        assert summary["failed"] == failed and len(out.splitlines()) == 1 + failed
        assert err == (f"python -m ddb2os.backfill: {items} not written (listed above); checkpoint 'cp.json' kept: "
                       f"a rerun goes on from it\n")
        (tmp_path / "cp.json").unlink()
    CountingEngine.seen, CountingEngine.fail_at = [], None
    assert bf.main(["books", "--checkpoint", "cp.json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out.splitlines()[0])["message"] == "ddb2os backfill done" and err == ""


class Interrupted(Pages):
    """Ctrl-C during the third Scan."""

    def scan(self, **kwargs):
        if len(self.scans) == 2:
            raise KeyboardInterrupt
        return super().scan(**kwargs)


class InterruptedMain(Pages):
    """Ctrl-C as it comes: SIGINT, which Python raises in the main thread (waiting for the segments, or still
    starting their threads), during the second Scan, whose page is then written all the same. The Scan
    returns once the run has logged that it was interrupted (pass `log=table.log`), so no third one starts."""

    def __init__(self, n):
        super().__init__(n)
        self.taken = threading.Event()

    def log(self, line):
        if "interrupted" in line:
            self.taken.set()

    def scan(self, **kwargs):
        if len(self.scans) == 1:
            os.kill(os.getpid(), signal.SIGINT)
            assert self.taken.wait(10), "the main thread never took the interrupt"
        return super().scan(**kwargs)


def test_ctrl_c_keeps_the_runs_counts_and_failed_items(monkeypatch, capsys):
    monkeypatch.setattr(bf._core, "SyncEngine", CountingEngine)
    CountingEngine.seen, CountingEngine.fail_at = [], None
    with pytest.raises(KeyboardInterrupt) as e:
        run(dynamodb=Interrupted(10))
    got = e.value.backfill_result  # the two pages written before it
    assert (got["items"], got["indexed"], got["pages"], got["failed"], got["stopped"]) == (6, 6, 2, [], True)
    # In the main thread: the page being written when it came is waited for, and counted; no Scan after it.
    # With Python's own SIGINT handler, whatever this process inherited: a shell's background job (a CI
    # runner's, say) starts with SIGINT ignored, Python leaves it so, and the signal would never come.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        CountingEngine.seen = []
        table = InterruptedMain(10)
        with pytest.raises(KeyboardInterrupt) as e:
            run(dynamodb=table, log=table.log)
    finally:
        signal.signal(signal.SIGINT, previous)
    got = e.value.backfill_result
    assert (got["items"], got["indexed"], got["pages"], got["stopped"]) == (6, 6, 2, True)
    assert len(table.scans) == 2 and CountingEngine.seen == list(range(6))
    # The command line prints the counts and failed items before saying it was interrupted.
    interrupt = KeyboardInterrupt()
    interrupt.backfill_result = {"items": 3, "indexed": 2, "stopped": True, "pages": 1,
                                 "failed": [{"key": {"author": {"S": "a00"}}, "reason": "refused"}]}
    monkeypatch.setattr(bf, "backfill", lambda *a, **k: (_ for _ in ()).throw(interrupt))
    assert bf.main(["books"]) == 130
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0] == {"message": "ddb2os backfill interrupted", "table": "books", "items": 3, "indexed": 2,
                        "stopped": True, "pages": 1, "failed": 1}
    assert lines[1] == {"message": "ddb2os backfill item failed", "key": {"author": {"S": "a00"}}, "reason": "refused"}
    assert err == "python -m ddb2os.backfill: interrupted; a rerun writes everything again\n"


def test_the_dynamodb_client_reads_the_engines_environment(monkeypatch):
    """The endpoint as the handler parses it (a bare host is https://), and `environment`'s credentials: boto3
    read os.environ's, and refused a bare host."""
    import boto3.session
    made = {}

    class Session:
        def __init__(self, **kwargs):
            made["session"] = kwargs

        def client(self, service, **kwargs):
            made["client"] = kwargs
            return FakeDynamoDB()
    monkeypatch.setattr(boto3.session, "Session", Session)
    env = {"DYNAMODB_ENDPOINT": "ddb.example:8000", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s3cret",
           "AWS_SESSION_TOKEN": "tok"}
    monkeypatch.setattr(bf._core, "SyncEngine", CountingEngine)
    # FakeDynamoDB answers DescribeTable, then refuses the Scan: the client was made and used.
    with pytest.raises(bf.BackfillError, match="segment 0: AssertionError: scanned"):
        bf.backfill("books", environment={**ENV, **env})
    assert made["session"] == {"aws_access_key_id": "AKID", "aws_secret_access_key": "s3cret",
                               "aws_session_token": "tok"}
    assert made["client"]["endpoint_url"] == "https://ddb.example:8000"
    # README: a throttled Scan is retried in botocore's adaptive mode, 10 attempts (the default few would end a
    # long backfill at the first throttled stretch).
    assert made["client"]["config"].retries == {"mode": "adaptive", "max_attempts": 10}
    with pytest.raises(bf.BackfillError, match="segment 0: AssertionError: scanned"):
        bf.backfill("books", environment={**ENV, "AWS_PROFILE": "dev"})
    assert made["session"] == {"profile_name": "dev"} and made["client"]["endpoint_url"] is None


def test_the_backfill_ignores_refresh(monkeypatch):
    """README: REFRESH is for the stream's batches; a refresh per Scan page would only slow the backfill."""
    _recording(monkeypatch)
    for refresh in ("true", "wait_for"):
        run(env={"REFRESH": refresh}, dynamodb=OnePage())
    assert [c["refresh"] for c in _RecordingEngine.configs] == ["", ""]


def test_the_command_line_passes_its_options_and_defaults(monkeypatch, capsys):
    """README: --margin-seconds 60 and --page-seconds 30 by default (a page written after index.gc_deletes
    can bring a deleted document back); each option reaches backfill() as given."""
    calls = []

    def backfill(table, **kwargs):
        calls.append((table, kwargs))
        return {"items": 0, "indexed": 0, "version_conflicts": 0, "dead_lettered": 0, "failed": [], "pages": 0,
                "stopped": False, "resumed": False}
    monkeypatch.setattr(bf, "backfill", backfill)
    assert bf.main(["books"]) == 0
    assert bf.main(["films", "--segments", "4", "--page-size", "7", "--margin-seconds", "120", "--page-seconds", "5",
                    "--checkpoint", "cp.json"]) == 0
    (t1, first), (t2, second) = calls
    assert (t1, first["segments"], first["page_size"], first["checkpoint"]) == ("books", 1, None, None)
    assert (first["margin_seconds"], first["page_seconds"]) == (60.0, 30.0)
    assert (t2, second["segments"], second["page_size"], second["checkpoint"]) == ("films", 4, 7, "cp.json")
    assert (second["margin_seconds"], second["page_seconds"]) == (120.0, 5.0)
    capsys.readouterr()


def test_the_command_line_writes_each_line_in_one_write(monkeypatch):
    """print() writes a line's text and its end apart: a segment's page line written between them (segments
    log from their threads) ran two JSON lines together, and a reader of one object a line lost both."""
    writes = []

    class Stdout:
        def write(self, text):
            writes.append(text)

        def flush(self):
            pass
    monkeypatch.setattr(bf._core, "SyncEngine", CountingEngine)
    CountingEngine.seen, CountingEngine.fail_at = [], None
    monkeypatch.setattr(sys, "stdout", Stdout())
    real = bf.backfill
    monkeypatch.setattr(bf, "backfill",
                        lambda table, **kw: real(table, dynamodb=Pages(7, per_page=3), environment=ENV, **kw))
    assert bf.main(["books"]) == 0
    assert len(writes) == 4 and all(w.endswith("\n") and w.count("\n") == 1 for w in writes)  # 3 pages, the result
    assert [json.loads(w)["message"] for w in writes] == ["ddb2os backfill page"] * 3 + ["ddb2os backfill done"]


def test_the_segments_fetch_their_credentials_once():
    """Each segment's engine fetched its own credentials, all at once: hundreds of segments on EC2 asked the
    instance metadata service (rate-limited per instance) together, and a refused fetch failed the page. One
    fetch now, from a container credentials endpoint here, for four segments each signing its own _bulk."""
    fetched, signed = [], []

    def credentials(path):  # the container credentials endpoint
        fetched.append(path)
        return 200, json.dumps({"AccessKeyId": "AKIDEXAMPLE", "SecretAccessKey": "s3cret-never-shown", "Token": "tok",
                                "Expiration": "2099-01-01T00:00:00Z"}).encode()

    def bulk(path, headers, body):
        signed.append(headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"))
        return 200, all_succeeded(body)

    with LocalServer(bulk, get=credentials) as server:
        env = {"OPENSEARCH_ENDPOINT": server.url, "OPENSEARCH_AUTH": "sigv4", "OPENSEARCH_SERVICE": "es",
               "AWS_REGION": "us-east-1", "AWS_CONTAINER_CREDENTIALS_FULL_URI": server.url + "/creds"}
        result = bf.backfill("books", dynamodb=Pages(3, per_page=3), environment=env, segments=4)
    assert result["failed"] == [] and result["pages"] == 4 and result["indexed"] == 12
    assert signed == [True] * 4 and fetched == ["/creds"]


def test_segments_that_fail_alike_are_named_together(monkeypatch):
    """Every segment's Scan refused: one line naming them, not the same text once per segment."""
    class Refused(FakeDynamoDB):
        all_in = threading.Barrier(8, timeout=10)  # every segment's Scan is asked before any fails

        def scan(self, **kwargs):
            self.all_in.wait()
            if kwargs["Segment"] != 5:
                raise RuntimeError("AccessDenied")
            raise ValueError("other")
    monkeypatch.setattr(bf._core, "SyncEngine", CountingEngine)
    with pytest.raises(bf.BackfillError) as e:
        run(dynamodb=Refused(), segments=8)
    assert str(e.value) == "segments 0-4, 6-7: RuntimeError: AccessDenied; segment 5: ValueError: other"
    assert sorted(e.value.errors) == list(range(8))


def test_a_checkpoint_may_be_a_path_and_one_written_before_table_ids_were_recorded_is_taken(monkeypatch, tmp_path):
    import pathlib
    monkeypatch.setattr(bf._core, "SyncEngine", CountingEngine)
    path = tmp_path / "cp.json"
    older = json.loads(checkpoint_text(next={"0": {"author": {"S": "a01"}, "bookTitle": {"B": "Af8="}}}))
    del older["table_id"]
    path.write_text(json.dumps(older))
    CountingEngine.seen, CountingEngine.fail_at = [], None
    result = run(dynamodb=Pages(4), checkpoint=pathlib.Path(path))
    assert result["resumed"] is True and CountingEngine.seen == [2, 3] and not path.exists()


# ------------------------------------------------------------ from a mutation run of the pure-Python files
# Each test below fails for a change to backfill.py that the other tests let through.

def test_a_configured_key_schema_that_is_part_of_the_tables_key_is_refused():
    """TABLE_KEYS naming the partition key alone on a composite-key table: every author's books would share one _id."""
    for env in ({"TABLE_KEYS": "books=author"}, {"DB_HASH_KEY": "author"}):
        with pytest.raises(ValueError, match=r"the key schema configured for table 'books' \(author\) is not the table's "
                                             r"key \(author,bookTitle\)"):
            run(env)


def test_a_clock_ahead_by_more_than_the_margin_but_less_than_twice_it_is_refused():
    import email.utils
    behind = email.utils.formatdate(time.time() - 90, usegmt=True)
    with pytest.raises(ValueError, match=r"this host's clock is (89|9\d) s ahead of DynamoDB's"):
        run(dynamodb=FakeDynamoDB(date=behind), margin_seconds=60)


def test_a_checkpoint_with_other_included_attributes_is_refused(tmp_path):
    path = tmp_path / "cp.json"
    path.write_text(checkpoint_text(target={**TARGET, "include": ["title"]}))
    with pytest.raises(ValueError, match=r"\(include differ\)"):
        run(checkpoint=str(path))


def test_the_command_exits_with_1_on_an_error_of_dynamodbs(monkeypatch, capsys):
    def refused(*args, **kwargs):
        raise RuntimeError("ResourceNotFoundException: no table books")
    monkeypatch.setattr(bf, "backfill", refused)
    assert bf.main(["books"]) == 1
    assert capsys.readouterr().err == (
        "python -m ddb2os.backfill: error: RuntimeError: ResourceNotFoundException: no table books\n")


class _RecordingEngine:
    """The engine, replaced: keeps each page's event and budget and the config it was made with; answers
    every record indexed, and `conflicts` of them version conflicts."""
    events: list = []
    budgets: list = []
    configs: list = []
    conflicts = 0

    def __init__(self, config, env, credentials_from=None):
        _RecordingEngine.configs.append(config)

    def process(self, event, seconds):
        _RecordingEngine.events.append(event)
        _RecordingEngine.budgets.append(seconds)
        n = len(event["Records"])
        return {"indexed": n - self.conflicts, "version_conflicts": self.conflicts, "dead_lettered": 0, "failures": []}


def _recording(monkeypatch, conflicts=0):
    _RecordingEngine.events, _RecordingEngine.budgets, _RecordingEngine.configs = [], [], []
    _RecordingEngine.conflicts = conflicts
    monkeypatch.setattr(bf._core, "SyncEngine", _RecordingEngine)


def test_each_item_is_a_consistent_scans_insert_of_its_key_at_the_runs_version(monkeypatch):
    _recording(monkeypatch, conflicts=1)
    monkeypatch.setattr(bf.time, "time", lambda: 1_800_000_000.75)
    table = Pages(5, per_page=2)
    result = run(dynamodb=table, page_size=2)
    # Strongly consistent (a stale item would be written at this run's newer version), the page size asked.
    assert all(s["ConsistentRead"] is True and s["Limit"] == 2 for s in table.scans) and len(table.scans) == 3
    assert result["version"] == 1_800_000_000 - 60  # the start, less the margin, in whole seconds
    records = [r for e in _RecordingEngine.events for r in e["Records"]]
    assert len(records) == 5
    for r, row in zip(records, table.rows):
        assert r["eventName"] == "INSERT" and r["dynamodb"]["ApproximateCreationDateTime"] == 1_800_000_000 - 60
        assert r["dynamodb"]["Keys"] == {"author": row["author"], "bookTitle": row["bookTitle"]}  # the key only
        assert r["dynamodb"]["NewImage"] == row
    # The counts are the pages' sums.
    assert (result["items"], result["indexed"], result["version_conflicts"], result["pages"]) == (5, 2, 3, 3)
    # The engine is given the table's key schema: it never asks DescribeTable itself.
    assert all(c["table_keys"]["books"] == ["author", "bookTitle"] for c in _RecordingEngine.configs)


def test_a_pages_time_is_counted_from_its_scan(monkeypatch):
    """25 s between a Scan's answer and its page's write leave the page 5 of its 30 s: written later than
    that, a deleted item could come back (index.gc_deletes)."""
    _recording(monkeypatch)
    readings = iter([1000.0, 1025.0])  # the Scan's answer, then the write
    import types
    monkeypatch.setattr(bf, "time", types.SimpleNamespace(time=time.time, sleep=time.sleep,
                                                          monotonic=lambda: next(readings)))
    run(dynamodb=OnePage([{"author": {"S": "a"}, "bookTitle": {"B": b"t"}}]), page_seconds=30)
    assert _RecordingEngine.budgets == [pytest.approx(5.0)]


def test_a_finished_segment_is_recorded_as_done_when_another_stops(monkeypatch, tmp_path):
    """A rerun would otherwise scan the finished segment again."""
    class TwoSegments(Pages):
        def scan(self, **kwargs):
            self.scans.append(kwargs)
            if kwargs["Segment"] == 1:
                return {"Items": [self.rows[0]]}  # one page, the last
            deadline = time.monotonic() + 60  # segment 0's page, refused, once segment 1 is recorded
            while not path.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            return {"Items": [self.rows[1]], "LastEvaluatedKey": {"author": {"S": "a01"}, "bookTitle": {"B": b"\x01\xff"}}}

    monkeypatch.setattr(bf._core, "SyncEngine", CountingEngine)
    CountingEngine.seen, CountingEngine.fail_at = [], 1  # segment 0's page fails
    path = tmp_path / "cp.json"
    result = run(dynamodb=TwoSegments(2), checkpoint=str(path), segments=2)
    assert len(result["failed"]) == 1 and result["items"] == 2
    saved = json.loads(path.read_text())
    assert saved["done"] == [1] and saved["next"] == {}


def test_a_resumed_run_into_a_place_it_cannot_write_is_refused_before_any_scan(tmp_path):
    path = tmp_path / "cp.json"
    path.write_text(checkpoint_text())
    os.mkdir(f"{path}.{os.getpid()}.tmp")  # where the checkpoint's next version would be written
    with pytest.raises(ValueError, match="checkpoint '.*cp.json' cannot be written: Is a directory"):
        run(checkpoint=str(path))  # FakeDynamoDB raises if scanned
