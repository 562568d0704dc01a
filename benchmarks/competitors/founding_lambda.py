"""The founding Lambda of seed 000 (issue 6, comparison 3): opensearch-py, one request per record, refresh=True.

Kept as the seed wrote it: a new ``OpenSearch`` client (``RequestsHttpConnection``) per invocation, then for each
record ``client.delete(index, id)`` for a REMOVE and ``client.index(index, body, id, refresh=True)`` otherwise,
logging each step. Two changes so that its index can be checked against ddb2os's, both named here:
  * the seed indexes the typed DynamoDB JSON (``{"price": {"N": "12.5"}}``) as the document, which no reader
    wants and which could never equal ddb2os's documents; here the image is unmarshalled the way the guidance
    and the blog posts do it (``boto3_ref``: TypeDeserializer, mixed lists stringified, Decimal-aware dumps);
  * the seed's ``_id`` is ``Keys['book_id']['S']`` (one key attribute); the benchmark's tables have a composite
    key, so the ``_id`` is ``boto3_ref.document_id`` (partition|sort, escaped), the same rule as ddb2os.
The index is ``<prefix><table lowercased>``. No auth (the local OpenSearch has none).
"""
from __future__ import annotations

import logging
import os
from typing import Any, Dict
from urllib.parse import urlsplit

from opensearchpy import OpenSearch, RequestsHttpConnection

import boto3_ref

logger = logging.getLogger("founding")
logger.setLevel(logging.INFO)

_endpoint = urlsplit(os.environ.get("OPENSEARCH_ENDPOINT", "http://127.0.0.1:9200"))
host, port = _endpoint.hostname, _endpoint.port or 80
prefix = os.environ.get("INDEX_PREFIX", "")
awsauth = None


def handler(event: Dict[str, Any], context: Any) -> str:
    logger.info(event)

    client = OpenSearch(
        hosts=[{"host": host, "port": port}],
        http_auth=awsauth,
        use_ssl=False,
        verify_certs=False,
        connection_class=RequestsHttpConnection,
    )

    count = 0
    if event.get("Records", None) is not None:
        for record in event["Records"]:
            logger.info(f"DynamoDB Change Record: {record}")
            table = boto3_ref.table_of(record["eventSourceARN"])
            index = prefix + table.lower()
            id = boto3_ref.document_id(record["dynamodb"]["Keys"], table, boto3_ref.KEY_SCHEMA)

            if record["eventName"] == "REMOVE":
                logger.info(f"Removing document with id: {id}")
                response = client.delete(index=index, id=id)
                count += 1
                logger.info(response)
            else:
                document = boto3_ref.dumps(boto3_ref.normalize(boto3_ref.unmarshall_image(record["dynamodb"]["NewImage"])))
                logger.info(f"Indexing document: {document}")
                response = client.index(index=index, body=document, id=id, refresh=True)
                count += 1
                logger.info(response)

    return f"{count} records processed."
