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
