"""ddb2os.backfill's checks that come before any Scan or write (the real runs are in test_e2e.py)."""
from __future__ import annotations

import pytest

from ddb2os import backfill as bf

ENV = {"OPENSEARCH_ENDPOINT": "http://127.0.0.1:9", "AWS_REGION": "us-east-1", "OPENSEARCH_AUTH": "none"}


class FakeDynamoDB:
    """describe_table only: a scan would mean a check came too late."""

    def __init__(self, date=None):
        self.date = date

    def describe_table(self, TableName):
        meta = {"ResponseMetadata": {"HTTPHeaders": {"date": self.date}}} if self.date else {}
        return {**meta, "Table": {"TableName": "books", "TableArn": "arn:aws:dynamodb:us-east-1:1:table/books",
                          "KeySchema": [{"AttributeName": "bookTitle", "KeyType": "RANGE"},
                                        {"AttributeName": "author", "KeyType": "HASH"}]}}

    def scan(self, **kwargs):
        raise AssertionError("scanned")


def run(env=None, dynamodb=None, **kwargs):
    return bf.backfill("books", dynamodb=dynamodb or FakeDynamoDB(), environment={**ENV, **(env or {})}, **kwargs)


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
