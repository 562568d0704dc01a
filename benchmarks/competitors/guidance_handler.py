"""A guidance-style stream handler (issue 6, comparison 3; seed 003, AWS's DynamoDB-to-OpenSearch guidance):
opensearch-py ``helpers.bulk`` with boto3's ``TypeDeserializer``.

A module-level client (created once per container), then per batch: each record's image unmarshalled with
TypeDeserializer, mixed-type lists stringified (as the founding Lambdas did), ``_id`` from the keys, one
``index`` or ``delete`` action per record, all sent with ``helpers.bulk`` (its defaults: chunks of 500 actions).
Decimals are written by a DecimalEncoder-style serializer (integral -> int, else float: lossy), sets as lists
(order lost), binary as base64: ``boto3_ref.dumps`` does exactly that, and the documents are passed to
opensearch-py as that JSON text. The index is ``<prefix><table lowercased>``. No auth locally.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List

from opensearchpy import OpenSearch, helpers

import boto3_ref

prefix = os.environ.get("INDEX_PREFIX", "")
client = OpenSearch(hosts=[os.environ.get("OPENSEARCH_ENDPOINT", "http://127.0.0.1:9200")], timeout=120)


def handler(event: Dict[str, Any], context: Any) -> Dict[str, List[Any]]:
    actions = []
    for record in event["Records"]:
        table = boto3_ref.table_of(record["eventSourceARN"])
        ddb = record["dynamodb"]
        action = {"_index": prefix + table.lower(), "_id": boto3_ref.document_id(ddb["Keys"], table, boto3_ref.KEY_SCHEMA)}
        if record["eventName"] == "REMOVE":
            action["_op_type"] = "delete"
        else:
            action["_op_type"] = "index"
            action["_source"] = boto3_ref.dumps(boto3_ref.normalize(boto3_ref.unmarshall_image(ddb["NewImage"])))
        actions.append(action)
    success, errors = helpers.bulk(client, actions, raise_on_error=False)
    return {"success": success, "errors": errors}
