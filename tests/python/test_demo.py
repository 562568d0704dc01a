"""The README's main job, `make demo` (scripts/demo.py), run whole: it starts its own servers."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


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
