"""Reads a DynamoDB stream with boto3 and shapes its records exactly as Lambda delivers them.

boto3's GetRecords gives `ApproximateCreationDateTime` as a datetime and B/BS values as bytes,
and no `eventSourceARN`; Lambda's event has epoch seconds, base64 text, and the stream ARN. The
demo and the end-to-end tests hand ddb2os.handler what Lambda would.
"""
from __future__ import annotations

import base64
import datetime
from typing import Any, Dict, Iterator, List


def _lambda_value(v: Any) -> Any:
    if isinstance(v, (bytes, bytearray)):
        return base64.b64encode(bytes(v)).decode("ascii")
    if isinstance(v, dict):
        return {k: _lambda_value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_lambda_value(x) for x in v]
    return v


def lambda_record(record: Dict[str, Any], stream_arn: str) -> Dict[str, Any]:
    """One GetRecords record as it appears in a Lambda event's Records list."""
    out = {k: v for k, v in record.items() if k != "dynamodb"}
    ddb = dict(record["dynamodb"])
    t = ddb.get("ApproximateCreationDateTime")
    if isinstance(t, datetime.datetime):
        ddb["ApproximateCreationDateTime"] = t.timestamp()
    for image in ("Keys", "NewImage", "OldImage"):
        if image in ddb:
            ddb[image] = _lambda_value(ddb[image])
    out["dynamodb"] = ddb
    out["eventSourceARN"] = stream_arn
    return out


def read_stream(streams_client, stream_arn: str) -> List[Dict[str, Any]]:
    """Every record currently in the stream, in order, shaped as Lambda delivers them."""
    out: List[Dict[str, Any]] = []
    desc = streams_client.describe_stream(StreamArn=stream_arn)["StreamDescription"]
    for shard in desc["Shards"]:
        it = streams_client.get_shard_iterator(StreamArn=stream_arn, ShardId=shard["ShardId"],
                                               ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while it:
            page = streams_client.get_records(ShardIterator=it, Limit=1000)
            out.extend(lambda_record(r, stream_arn) for r in page["Records"])
            if not page["Records"]:
                break  # an open shard's iterator never ends: stop at the current tip
            it = page.get("NextShardIterator")
    out.sort(key=lambda r: int(r["dynamodb"]["SequenceNumber"]))
    return out


def batches(records: List[Dict[str, Any]], size: int) -> Iterator[Dict[str, Any]]:
    """Lambda events of at most `size` records each."""
    for i in range(0, len(records), size):
        yield {"Records": records[i:i + size]}


class FakeContext:
    """The part of Lambda's context object a handler uses: the time left."""

    def __init__(self, milliseconds: int = 60_000) -> None:
        self._deadline = datetime.datetime.now() + datetime.timedelta(milliseconds=milliseconds)
        self.function_name = "ddb2os-local"
        self.aws_request_id = "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - datetime.datetime.now()).total_seconds() * 1000))
