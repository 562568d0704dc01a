"""ddb2os.backfill's checks that come before any Scan or write (the real runs are in test_e2e.py)."""
from __future__ import annotations

import json

import pytest

from ddb2os import backfill as bf

ENV = {"OPENSEARCH_ENDPOINT": "http://127.0.0.1:9", "AWS_REGION": "us-east-1", "OPENSEARCH_AUTH": "none"}


class FakeDynamoDB:
    """describe_table only: a scan would mean a check came too late."""

    def __init__(self, date=None, name="books", account="1"):
        self.date, self.name, self.account = date, name, account

    def describe_table(self, TableName):
        meta = {"ResponseMetadata": {"HTTPHeaders": {"date": self.date}}} if self.date else {}
        return {**meta, "Table": {"TableName": self.name,
                                  "TableArn": f"arn:aws:dynamodb:us-east-1:{self.account}:table/{self.name}",
                          "KeySchema": [{"AttributeName": "bookTitle", "KeyType": "RANGE"},
                                        {"AttributeName": "author", "KeyType": "HASH"}]}}

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

    def __init__(self, config, env):
        pass

    def process(self, event, seconds):
        SpyEngine.budgets.append(seconds)
        return {"indexed": 0, "version_conflicts": 0, "dead_lettered": 0,
                "failures": [{"record": i, "reason": "refused"} for i in range(len(event["Records"]))]}


@pytest.mark.parametrize("kwargs, message", [
    ({"segments": 0}, "segments must be a whole number, at least 1"),
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


def test_the_command_line_reports_bad_input_in_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        bf.main(["books", "--segments", "0"])
    assert e.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith("segments must be a whole number, at least 1")


def test_a_host_clock_ahead_of_dynamodbs_by_more_than_the_margin_is_refused():
    import email.utils
    import time
    behind = email.utils.formatdate(time.time() - 120, usegmt=True)  # DynamoDB's clock 2 minutes behind ours
    with pytest.raises(ValueError, match=r"this host's clock is 12\d s ahead of DynamoDB's .* more than margin_seconds \(60\)"):
        run(dynamodb=FakeDynamoDB(date=behind))
    # Within the margin: on to the Scan (which this fake refuses).
    with pytest.raises(AssertionError, match="scanned"):
        run(dynamodb=FakeDynamoDB(date=behind), margin_seconds=180)


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
    with pytest.raises(AssertionError, match="scanned"):
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
