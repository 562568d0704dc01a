"""The command-line tool: `ddb2os convert`, its output streams and exit statuses."""
import json
import pathlib
import subprocess

DATA = pathlib.Path(__file__).resolve().parents[1] / "data"


def run(cli, stdin: bytes, *args):
    p = subprocess.run([str(cli), *args], input=stdin, capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def lines(text):
    out = [json.loads(line) for line in text.splitlines()]
    assert text == "" or text.endswith("\n")
    return out


def record(seq, name, keys, image=None, table="Books"):
    ddb = {"Keys": keys, "SequenceNumber": str(seq), "StreamViewType": "NEW_AND_OLD_IMAGES"}
    if image is not None:
        ddb["NewImage"] = image
    return {
        "eventID": f"ev{seq}",
        "eventName": name,
        "eventSourceARN": f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/2024-01-01T00:00:00.000",
        "dynamodb": ddb,
    }


def test_sample_event(cli):
    rc, out, err = run(cli, (DATA / "aws-sample-event.json").read_bytes(), "convert")
    assert rc == 0, err
    assert lines(out) == [{"delete": {"_index": "exampletablewithstream", "_id": "101"}}]
    assert err == ""


def test_keys_index_template_and_options(cli):
    keys = {"bookTitle": {"S": "Inferno"}, "author": {"S": "Dan Brown"}}
    image = {"author": {"S": "Dan Brown"}, "bookTitle": {"S": "Inferno"}, "price": {"N": "12345678901234567890.5"},
             "tags": {"L": [{"N": "1"}, {"S": "a"}]}}
    event = json.dumps({"Records": [record(1, "INSERT", keys, image)]}).encode()
    rc, out, err = run(cli, event, "convert", "--keys", "Books=author,bookTitle", "--index-template", "prod-{table}")
    assert rc == 0, err
    assert out.splitlines()[0] == '{"index":{"_index":"prod-books","_id":"Dan Brown|Inferno"}}'
    assert out.splitlines()[1] == '{"author":"Dan Brown","bookTitle":"Inferno","price":12345678901234567890.5,"tags":["1","a"]}'
    rc, out, err = run(cli, event, "convert", "--keys", "Books=author,bookTitle", "--index", "library",
                       "--numbers", "string", "--lists", "keep")
    assert rc == 0, err
    assert out.splitlines()[1] == '{"author":"Dan Brown","bookTitle":"Inferno","price":"12345678901234567890.5","tags":["1","a"]}'


def test_bad_records_go_to_stderr_and_exit_1(cli):
    good = record(1, "INSERT", {"id": {"S": "1"}}, {"id": {"S": "1"}})
    bad = record(2, "INSERT", {"id": {"S": "2"}}, {"id": {"S": "2"}, "n": {"N": "not-a-number"}})
    rc, out, err = run(cli, json.dumps({"Records": [good, bad]}).encode(), "convert")
    assert rc == 1
    assert len(lines(out)) == 2
    assert lines(err) == [{
        "record": 1, "sequence_number": "2", "event_id": "ev2", "error": "number.invalid",
        "path": "dynamodb.NewImage.n.N", "message": '"not-a-number" is not a number'}]


def test_split_limits(cli, tmp_path):
    recs = [record(i, "INSERT", {"id": {"S": str(i)}}, {"id": {"S": str(i)}}) for i in range(5)]
    event = json.dumps({"Records": recs}).encode()
    rc, out, err = run(cli, event, "convert", "--max-actions", "2", "--max-bytes", "100000")
    assert rc == 0, err
    assert len(lines(out)) == 10
    # --out: one file per body, as cut; their names on stdout
    prefix = str(tmp_path / "bulk")
    rc, out, err = run(cli, event, "convert", "--max-actions", "2", "--out", prefix)
    assert rc == 0, err
    assert out.splitlines() == [f"{prefix}-{i}.ndjson" for i in (1, 2, 3)]
    bodies = [lines(pathlib.Path(name).read_text()) for name in out.splitlines()]
    assert [len(b) for b in bodies] == [4, 4, 2]
    assert [b[0]["index"]["_id"] for b in bodies] == ["0", "2", "4"]
    # A second run with fewer bodies removes the first run's others (older images of the same documents):
    # regular files only, up to the first number missing.
    (tmp_path / "bulk-5.ndjson").write_text("a file of the user's\n")
    rc, out, err = run(cli, event, "convert", "--max-actions", "5", "--out", prefix)
    assert rc == 0 and out.splitlines() == [f"{prefix}-1.ndjson"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bulk-1.ndjson", "bulk-5.ndjson"]
    (tmp_path / "bulk-2.ndjson").mkdir()
    (tmp_path / "bulk-3.ndjson").write_text("x\n")
    assert run(cli, event, "convert", "--max-actions", "5", "--out", prefix)[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bulk-1.ndjson", "bulk-2.ndjson", "bulk-3.ndjson",
                                                          "bulk-5.ndjson"]
    # A write that fails part-way: this run's first bodies stay, the earlier run's from there on go, so no
    # glob mixes the two runs (exit 2 says the output is short).
    redo = tmp_path / "redo"
    redo.mkdir()
    prefix = str(redo / "b")
    assert run(cli, event, "convert", "--max-actions", "1", "--out", prefix)[0] == 0  # b-1 .. b-5
    (redo / "b-2.ndjson.part").mkdir()  # b-2 cannot be written
    rc, out, err = run(cli, event, "convert", "--max-actions", "2", "--out", prefix)
    assert rc == 2 and out.splitlines() == [f"{prefix}-1.ndjson"] and "cannot write" in err
    assert sorted(p.name for p in redo.iterdir()) == ["b-1.ndjson"]
    assert len(lines((redo / "b-1.ndjson").read_text())) == 4  # this run's first body
    # The same when what stops the write is in the way itself (a directory where b-2 goes).
    assert run(cli, event, "convert", "--max-actions", "1", "--out", prefix)[0] == 0  # b-1 .. b-5
    (redo / "b-2.ndjson").unlink()
    (redo / "b-2.ndjson").mkdir()
    (redo / "b-2.ndjson" / "keep").write_text("a file of the user's\n")
    rc, out, err = run(cli, event, "convert", "--max-actions", "2", "--out", prefix)
    assert rc == 2 and out.splitlines() == [f"{prefix}-1.ndjson"]
    assert sorted(p.name for p in redo.iterdir()) == ["b-1.ndjson", "b-2.ndjson"]
    assert (redo / "b-2.ndjson" / "keep").exists()
    # An input that is not an event: no earlier run's bodies are left for a glob to send as this run's.
    again = tmp_path / "again"
    again.mkdir()
    prefix = str(again / "c")
    assert run(cli, event, "convert", "--max-actions", "2", "--out", prefix)[0] == 0  # c-1 .. c-3
    rc, out, err = run(cli, b'{"Records": [', "convert", "--out", prefix)
    assert (rc, out) == (2, "") and err.startswith("ddb2os: [ddb2os.json.syntax]")
    assert list(again.iterdir()) == []
    # An input that cannot be read: the same; a PREFIX-1 that is not a file is skipped, as a failed write skips it.
    assert run(cli, event, "convert", "--max-actions", "2", "--out", prefix)[0] == 0
    (again / "c-1.ndjson").unlink()
    (again / "c-1.ndjson").mkdir()
    rc, out, err = run(cli, b"", "convert", str(tmp_path / "missing.json"), "--out", prefix)
    assert (rc, out) == (2, "") and err.startswith("ddb2os: cannot open")
    assert [p.name for p in again.iterdir()] == ["c-1.ndjson"]
    # Without --out, nothing is removed (not a "-1.ndjson" in the working directory).
    (tmp_path / "-1.ndjson").write_text("a file of the user's\n")
    p = subprocess.run([str(cli), "convert", "missing.json"], cwd=tmp_path, capture_output=True, timeout=60)
    assert p.returncode == 2 and (tmp_path / "-1.ndjson").exists()


def test_event_file_versions_bom_and_output_errors(cli, tmp_path):
    ev = record(1, "INSERT", {"id": {"S": "1"}}, {"id": {"S": "1"}})
    ev["dynamodb"]["ApproximateCreationDateTime"] = 1700000000
    event = json.dumps({"Records": [ev]}).encode()
    path = tmp_path / "event.json"
    path.write_bytes(b"\xef\xbb\xbf" + event)  # a byte order mark, as some editors write
    rc, out, err = run(cli, b"", "convert", str(path), "--versions")
    assert rc == 0, err
    assert lines(out)[0] == {"index": {"_index": "books", "_id": "1", "version": 1700000000000000,
                                       "version_type": "external_gte"}}
    assert run(cli, event, "convert", "-")[1] == run(cli, event, "convert")[1]
    # --versions and a record without a time: reported, not written unversioned.
    timeless = json.dumps({"Records": [ev, record(2, "REMOVE", {"id": {"S": "2"}})]}).encode()
    rc, out, err = run(cli, timeless, "convert", "--versions")
    assert rc == 1 and len(lines(out)) == 2
    (bad,) = lines(err)
    assert (bad["record"], bad["error"], bad["path"]) == (1, "record.missing_field", "dynamodb.ApproximateCreationDateTime")
    rc, out, err = run(cli, b"", "convert", str(tmp_path / "missing.json"))
    assert (rc, out) == (2, "") and err.startswith(f'ddb2os: cannot open "{tmp_path / "missing.json"}": No such file')
    rc, out, err = run(cli, b"", "convert", str(tmp_path))
    assert (rc, err) == (2, f'ddb2os: cannot read "{tmp_path}": Is a directory\n')
    # A full disk: before, the output was lost and the exit status 0.
    with open("/dev/full", "wb") as full:
        p = subprocess.run([str(cli), "convert"], input=event, stdout=full, stderr=subprocess.PIPE, timeout=60)
    assert p.returncode == 2
    assert p.stderr.decode() == "ddb2os: cannot write standard output: No space left on device\n"
    # Bad records' reports that cannot be written: exit 2 (1 says each one was reported).
    with open("/dev/full", "wb") as full:
        p = subprocess.run([str(cli), "convert", "--versions"], input=timeless, stdout=subprocess.PIPE, stderr=full,
                           timeout=60)
    assert p.returncode == 2 and len(lines(p.stdout.decode())) == 2


def test_skip_ttl_deletes(cli):
    ttl = record(1, "REMOVE", {"id": {"S": "1"}})
    ttl["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    event = json.dumps({"Records": [ttl]}).encode()
    assert lines(run(cli, event, "convert")[1]) == [{"delete": {"_index": "books", "_id": "1"}}]
    rc, out, _ = run(cli, event, "convert", "--skip-ttl-deletes")
    assert rc == 0 and out == ""


def test_exclude(cli):
    image = {"id": {"S": "1"}, "ssn": {"S": "123-45-6789"}, "card": {"N": "not read"}, "m": {"M": {"ssn": {"S": "kept"}}}}
    event = json.dumps({"Records": [record(1, "INSERT", {"id": {"S": "1"}}, image)]}).encode()
    rc, out, err = run(cli, event, "convert", "--exclude", "ssn", "--exclude", "card,other")
    assert (rc, err) == (0, "")
    assert lines(out)[1] == {"id": "1", "m": {"ssn": "kept"}}
    # Names trimmed, as the handler's EXCLUDE_ATTRIBUTES: the same list excludes the same attributes.
    assert run(cli, event, "convert", "--exclude", " ssn , card ")[1] == out
    # Any ASCII whitespace, as the handler trims EXCLUDE_ATTRIBUTES; U+00A0 is part of a name there too.
    assert run(cli, event, "convert", "--exclude", "\t\vssn\r,\f\ncard ")[1] == out
    assert run(cli, event, "convert", "--exclude", "\u00a0ssn,card")[1] != out
    assert run(cli, event, "convert", "--include", "id,m,ssn", "--exclude", "ssn")[1] == out
    assert run(cli, event, "convert", "--include", "id,")[0] == 2
    assert run(cli, event, "convert")[0] == 1  # card is read without --exclude
    for bad in ("ssn,", ",ssn", "a,,b", "", "a, ,b"):
        rc, _, err = run(cli, event, "convert", "--exclude", bad)
        assert rc == 2 and err.splitlines()[0] == f'ddb2os: --exclude takes attribute names separated by commas, not "{bad}"'


def test_framing_and_usage_errors_exit_2(cli):
    rc, out, err = run(cli, b"{not json", "convert")
    assert (rc, out) == (2, "")
    assert err == "ddb2os: [ddb2os.json.syntax] byte 1: expected a string key in an object\n"
    rc, _, err = run(cli, b"{}", "convert")
    assert rc == 2 and "[ddb2os.event.shape]" in err
    # A Kinesis data stream's event: refused whole, naming the record, not a bad-record report per record.
    rc, out, err = run(cli, b'{"Records": [{"eventSource": "aws:kinesis", "kinesis": {"data": "e30="}}]}', "convert")
    assert (rc, out) == (2, "")
    assert err == ('ddb2os: [ddb2os.event.shape] Records[0].eventSource: ddb2os reads DynamoDB Streams records; this '
                   'one\'s eventSource is "aws:kinesis" (a Kinesis data stream\'s: read the table\'s DynamoDB stream '
                   'instead)\n')
    for args, message in [
        (["convert", "--numbers", "float"], 'ddb2os: --numbers is exact, string or double, not "float"'),
        (["convert", "--lists", "x"], 'ddb2os: --lists is stringify or keep, not "x"'),
        (["convert", "--keys", "Books"], 'ddb2os: --keys takes TABLE=PK or TABLE=PK,SK, not "Books"'),
        (["convert", "--max-bytes", "-5"], 'ddb2os: --max-bytes needs a whole number, not "-5"'),
        (["convert", "--max-bytes", " -5"], 'ddb2os: --max-bytes needs a whole number, not " -5"'),
        (["convert", "--max-bytes", "99999999999999999999999"],
         'ddb2os: --max-bytes is too large: "99999999999999999999999"'),
        (["convert", "--index", ""], "ddb2os: --index needs a name, not an empty value"),
        (["convert", "--index-template", "Logs-{table}"],
         'ddb2os: [ddb2os.option.invalid] index template "Logs-{table}" gives no valid name: for table "aaa", '
         'index name "Logs-aaa" is invalid: it must be lowercase'),
        (["convert", "a.json", "b.json"], 'ddb2os: one event file only, not also "b.json"'),
        (["convert", "-", "-"], 'ddb2os: one event file only, not also "-"'),
        (["convert", ""], "ddb2os: an event file name is empty"),
        (["convert", "--max-actions", "0"], "ddb2os: [ddb2os.option.invalid] max_actions must be at least 1"),
        (["convert", "--index", "Bad"], 'ddb2os: [ddb2os.option.invalid] index name "Bad" is invalid: it must be lowercase'),
        (["convert", "--index-template", "x"], "ddb2os: --index-template needs {table} in it"),
        (["convert", "--bogus"], 'ddb2os: unknown option "--bogus"'),
        (["convert", "--keys", "a=x;b=y"],
         'ddb2os: --keys takes one table (TABLE=PK or TABLE=PK,SK), not "a=x;b=y": give --keys once per table'),
        (["convert", "--keys", "Books=id", "--keys", " Books =id,t"], 'ddb2os: --keys gives table "Books" twice'),
        (["convert", "--out", "--versions"], 'ddb2os: --out needs a value, not the option "--versions"'),
        (["convert", "--out", ""], "ddb2os: --out needs a file name prefix"),
        (["convert", "--", "a.json", "b.json"], 'ddb2os: one event file only, not also "b.json"'),
        (["frobnicate"], 'ddb2os: unknown command "frobnicate"'),
        (["convert", "--numbers", "exact", "--numbers", "string"], "ddb2os: --numbers is given twice"),
        (["convert", "--lists", "keep", "--lists", "keep"], "ddb2os: --lists is given twice"),
        (["convert", "--max-bytes", "100", "--max-bytes", "200"], "ddb2os: --max-bytes is given twice"),
        (["convert", "--max-actions", "1", "--max-actions", "2"], "ddb2os: --max-actions is given twice"),
        (["convert", "--out", "a", "--out", "b"], "ddb2os: --out is given twice"),
        ([], "ddb2os: no command given"),
    ]:
        rc, out, err = run(cli, b"{}", *args)
        assert rc == 2, args
        assert err.splitlines()[0] == message
        assert "usage: ddb2os convert" in err


def test_version_and_help(cli):
    rc, out, _ = run(cli, b"", "--version")
    assert rc == 0 and out.startswith("ddb2os ")
    rc, out, _ = run(cli, b"", "convert", "--help")
    assert rc == 0 and out.startswith("usage: ddb2os convert")


def test_keys_are_trimmed_as_table_keys_is_and_a_file_may_follow_double_dash(cli, tmp_path):
    """"Books=a, b" gave the sort key " b", which no item has; a file named "-x" could not be given."""
    keys = {"a": {"S": "1"}, "b": {"S": "2"}}
    event = json.dumps({"Records": [record(1, "REMOVE", keys)]}).encode()
    rc, out, err = run(cli, event, "convert", "--keys", " Books = a, b ")
    assert (rc, err) == (0, "") and lines(out) == [{"delete": {"_index": "books", "_id": "1|2"}}]
    (tmp_path / "-x").write_bytes(event)
    p = subprocess.run([str(cli), "convert", "--keys", "Books=a,b", "--", "-x"], capture_output=True, cwd=tmp_path,
                       timeout=60)
    assert p.returncode == 0 and lines(p.stdout.decode()) == [{"delete": {"_index": "books", "_id": "1|2"}}]
    # After --, a second -- is the file's name too (not stdin, which is empty here).
    (tmp_path / "--").write_bytes(event)
    p = subprocess.run([str(cli), "convert", "--keys", "Books=a,b", "--", "--"], input=b"", capture_output=True,
                       cwd=tmp_path, timeout=60)
    assert p.returncode == 0 and lines(p.stdout.decode()) == [{"delete": {"_index": "books", "_id": "1|2"}}]


def test_many_small_bodies_of_a_large_event_take_memory_as_their_size(cli, tmp_path):
    """Every body started with a buffer the size of the whole input: --max-actions 1 on a 2 MB event of
    10,000 records needed about 20 GB, and ended in std::bad_alloc, an abort (exit 134)."""
    import resource
    event = json.dumps({"Records": [record(i, "REMOVE", {"id": {"S": f"k{i}"}}) for i in range(10_000)]}).encode()
    path = tmp_path / "big.json"
    path.write_bytes(event)

    def limited():
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))  # 1 GiB of address space
    p = subprocess.run([str(cli), "convert", "--max-actions", "1", str(path)], capture_output=True, timeout=120,
                       preexec_fn=limited)
    assert p.returncode == 0, p.stderr.decode()[-500:]
    assert len(p.stdout.splitlines()) == 10_000
