"""The real stack (scripts/stack.py): DynamoDB Local with Streams, and OpenSearch with _bulk, search
and a stop/restart that keeps the data. A server that cannot be fetched or started fails these
tests; nothing is skipped and nothing is faked."""
import contextlib
import json
import os
import pathlib
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zipfile

import boto3
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import stack  # noqa: E402

CREDS = dict(region_name="us-east-1", aws_access_key_id="ddb2osTest", aws_secret_access_key="ddb2osTest")
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def ddb_local():
    with stack.dynamodb_local() as server:
        yield server


@pytest.fixture(scope="module")
def opensearch():
    with stack.opensearch() as server:
        yield server


# ---------------------------------------------------------------------------------------------
# DynamoDB Local and its stream
# ---------------------------------------------------------------------------------------------

def read_stream(streams, stream_arn, want, timeout=30.0):
    """All records of the stream (every shard from TRIM_HORIZON), until `want` of them arrived."""
    records, iterators = [], {}
    deadline = time.monotonic() + timeout
    while True:
        desc = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]
        for shard in desc["Shards"]:
            sid = shard["ShardId"]
            if sid not in iterators:
                iterators[sid] = streams.get_shard_iterator(
                    StreamArn=stream_arn, ShardId=sid, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        for sid, it in list(iterators.items()):
            if it is None:
                continue
            resp = streams.get_records(ShardIterator=it, Limit=100)
            records.extend(resp["Records"])
            iterators[sid] = resp.get("NextShardIterator")
        if len(records) >= want or time.monotonic() > deadline:
            return records
        time.sleep(0.2)


def test_dynamodb_local_stream_has_insert_modify_remove_in_order(ddb_local):
    assert ddb_local.endpoint_url.startswith("http://127.0.0.1:")
    ddb = boto3.client("dynamodb", endpoint_url=ddb_local.endpoint_url, **CREDS)
    streams = boto3.client("dynamodbstreams", endpoint_url=ddb_local.endpoint_url, **CREDS)

    table = ddb.create_table(
        TableName="books",
        AttributeDefinitions=[{"AttributeName": "author", "AttributeType": "S"},
                              {"AttributeName": "bookTitle", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "author", "KeyType": "HASH"},
                   {"AttributeName": "bookTitle", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["TableDescription"]
    stream_arn = table["LatestStreamArn"]
    ddb.get_waiter("table_exists").wait(TableName="books", WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})

    key = {"author": {"S": "Ursula K. Le Guin"}, "bookTitle": {"S": "The Dispossessed"}}
    other = {"author": {"S": "Ursula K. Le Guin"}, "bookTitle": {"S": "The Lathe of Heaven"}}
    ddb.put_item(TableName="books", Item={**key, "year": {"N": "1974"}, "tags": {"SS": ["sf", "utopia"]}})
    ddb.put_item(TableName="books", Item={**other, "year": {"N": "1971"}})
    ddb.update_item(TableName="books", Key=key, UpdateExpression="SET #y = :y, rating = :r",
                    ExpressionAttributeNames={"#y": "year"},
                    ExpressionAttributeValues={":y": {"N": "1975"}, ":r": {"N": "4.5"}})
    ddb.delete_item(TableName="books", Key=key)

    records = read_stream(streams, stream_arn, want=4)
    assert [r["eventName"] for r in records] == ["INSERT", "INSERT", "MODIFY", "REMOVE"]
    seqs = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4

    ins, ins2, mod, rem = records
    for r in records:
        assert r["eventSource"] == "aws:dynamodb"
        assert r["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
        assert "ApproximateCreationDateTime" in r["dynamodb"]
    assert ins["dynamodb"]["Keys"] == key and ins2["dynamodb"]["Keys"] == other
    assert ins["dynamodb"]["NewImage"] == {**key, "year": {"N": "1974"}, "tags": {"SS": ["sf", "utopia"]}}
    assert "OldImage" not in ins["dynamodb"]
    assert mod["dynamodb"]["Keys"] == key
    assert mod["dynamodb"]["OldImage"]["year"] == {"N": "1974"}
    assert mod["dynamodb"]["NewImage"]["year"] == {"N": "1975"}
    assert mod["dynamodb"]["NewImage"]["rating"] == {"N": "4.5"}
    assert rem["dynamodb"]["Keys"] == key
    assert rem["dynamodb"]["OldImage"]["year"] == {"N": "1975"}
    assert "NewImage" not in rem["dynamodb"]

    # The table agrees: one item left.
    items = ddb.scan(TableName="books")["Items"]
    assert items == [{**other, "year": {"N": "1971"}}]


def test_dynamodb_local_shared_db_across_credentials(ddb_local):
    """-sharedDb: a client with other credentials and region (like the handler's DescribeTable)
    sees the same tables."""
    ddb = boto3.client("dynamodb", endpoint_url=ddb_local.endpoint_url, **CREDS)
    ddb.create_table(TableName="shared_check",
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST")
    other = boto3.client("dynamodb", endpoint_url=ddb_local.endpoint_url, region_name="eu-west-1",
                         aws_access_key_id="someoneElse", aws_secret_access_key="x")
    assert other.describe_table(TableName="shared_check")["Table"]["KeySchema"] == [
        {"AttributeName": "id", "KeyType": "HASH"}]


# ---------------------------------------------------------------------------------------------
# OpenSearch
# ---------------------------------------------------------------------------------------------

def call(base, method, path, body=None, ndjson=False):
    data = None
    headers = {}
    if body is not None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        headers["Content-Type"] = "application/x-ndjson" if ndjson else "application/json"
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    with HTTP.open(req, timeout=60) as r:
        return json.loads(r.read())


BOOKS = [
    {"author": "Ursula K. Le Guin", "bookTitle": "The Dispossessed", "year": 1974},
    {"author": "Ursula K. Le Guin", "bookTitle": "The Lathe of Heaven", "year": 1971},
    {"author": "Octavia E. Butler", "bookTitle": "Kindred", "year": 1979},
]


def bulk_body(index):
    lines = []
    for i, doc in enumerate(BOOKS):
        lines.append(json.dumps({"index": {"_index": index, "_id": f"b{i}"}}))
        lines.append(json.dumps(doc))
    return "\n".join(lines) + "\n"


def test_opensearch_bulk_and_search(opensearch):
    assert opensearch.url.startswith("http://127.0.0.1:")
    info = call(opensearch.url, "GET", "/")
    assert info["version"]["distribution"] == "opensearch"
    assert info["version"]["number"].startswith("2.")

    call(opensearch.url, "PUT", "/books", {
        "settings": {"number_of_shards": 1, "number_of_replicas": 0},
        "mappings": {"properties": {"author": {"type": "keyword"}, "bookTitle": {"type": "keyword"},
                                    "year": {"type": "integer"}}}})
    resp = call(opensearch.url, "POST", "/_bulk", bulk_body("books"), ndjson=True)
    assert resp["errors"] is False
    assert [item["index"]["status"] for item in resp["items"]] == [201, 201, 201]
    call(opensearch.url, "POST", "/books/_refresh")

    hits = call(opensearch.url, "POST", "/books/_search", {"query": {"match_all": {}}, "size": 10})["hits"]
    assert hits["total"]["value"] == 3
    assert sorted((h["_id"], h["_source"]["bookTitle"]) for h in hits["hits"]) == [
        ("b0", "The Dispossessed"), ("b1", "The Lathe of Heaven"), ("b2", "Kindred")]

    hits = call(opensearch.url, "POST", "/books/_search",
                {"query": {"term": {"author": "Ursula K. Le Guin"}}, "sort": [{"year": "asc"}]})["hits"]
    assert [h["_source"]["year"] for h in hits["hits"]] == [1971, 1974]


def test_opensearch_restart_keeps_data(opensearch):
    call(opensearch.url, "PUT", "/restart-check", {"settings": {"number_of_shards": 1, "number_of_replicas": 0}})
    # A replica a single node never places: the cluster is yellow, which is up (an index with the default
    # settings, as the handler's are, makes it so).
    call(opensearch.url, "PUT", "/restart-yellow", {"settings": {"number_of_shards": 1, "number_of_replicas": 1}})
    assert call(opensearch.url, "POST", "/_bulk", bulk_body("restart-check"), ndjson=True)["errors"] is False
    call(opensearch.url, "POST", "/restart-check/_refresh")

    url, pid = opensearch.url, opensearch.pid
    opensearch.stop()
    assert not opensearch.running()
    assert not pathlib.Path(f"/proc/{pid}").exists()
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        call(url, "GET", "/")

    opensearch.start()
    assert opensearch.url == url  # same port
    health = call(opensearch.url, "GET", "/_cluster/health/restart-check?wait_for_status=green&timeout=60s")
    assert health["status"] == "green"
    hits = call(opensearch.url, "POST", "/restart-check/_search", {"query": {"match_all": {}}})["hits"]
    assert hits["total"]["value"] == 3
    assert call(opensearch.url, "GET", "/restart-check/_doc/b2")["_source"] == BOOKS[2]


# ---------------------------------------------------------------------------------------------
# The scripts themselves: cache, clean stop, CLI
# ---------------------------------------------------------------------------------------------

def test_second_fetch_downloads_nothing(monkeypatch):
    stack.fetch()  # the first, if no test before this one has fetched (a fresh clone, a test run alone)

    def no_maven():
        raise AssertionError("Maven must not run when the cache is complete")
    monkeypatch.setattr(stack, "_mvn", no_maven)
    info = stack.fetch()
    assert info["downloaded"] is False
    assert (pathlib.Path(info["opensearch_home"]) / "bin" / "opensearch").exists()


def test_close_leaves_nothing_running():
    with stack.dynamodb_local() as server:
        pid, tmpdir = server.pid, server.tmpdir
        assert pathlib.Path(f"/proc/{pid}").exists()
    assert not pathlib.Path(f"/proc/{pid}").exists()
    if not os.environ.get("DDB2OS_STACK_KEEP"):
        assert not tmpdir.exists()


def test_cli_up_prints_urls_and_stops_on_sigterm(tmp_path):
    """Also: a signal it was started ignoring (nohup's SIGHUP) stays ignored."""
    env_file = tmp_path / "stack.env"
    proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "stack.py"), "up", "--only", "dynamodb",
                             "--env-file", str(env_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    try:
        line = proc.stdout.readline()
        assert line.startswith("DYNAMODB_ENDPOINT=http://127.0.0.1:"), (line, proc.stderr.read())
        endpoint = line.strip().split("=", 1)[1]
        assert env_file.read_text() == line
        ddb = boto3.client("dynamodb", endpoint_url=endpoint, **CREDS)
        assert "TableNames" in ddb.list_tables()
        proc.send_signal(signal.SIGHUP)
        time.sleep(1)
        assert proc.poll() is None and env_file.exists()
        assert "TableNames" in ddb.list_tables()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert not env_file.exists()
    with pytest.raises(urllib.error.URLError):
        HTTP.open(endpoint, timeout=5)


# ---------------------------------------------------------------------------------------------
# A server's start, stop and clean-up, with a shell script standing in for the server
# (from the fifth mutation run)
# ---------------------------------------------------------------------------------------------

class Sleeper(stack._Server):
    """A stand-in server: a shell script in its own process group and directory (its working directory), healthy
    when `probe` says so. One process (the script execs what it runs): this machine's init reaps no orphan, and a
    zombie would keep the group there."""

    name = "sleeper"

    def __init__(self, script, probe=None):
        super().__init__()
        self.script = script
        self.probe = probe or (lambda: (self.tmpdir / "ready").exists())

    def start(self, timeout=30.0):
        self.tmpdir = pathlib.Path(tempfile.mkdtemp(prefix="ddb2os-sleeper-"))
        self._spawn(["sh", "-c", self.script, str(self.tmpdir)], dict(os.environ), self.tmpdir, None)
        self._wait(self.probe, timeout)
        return self


def gone(pid):
    """Whether the process has ended (a zombie nobody reaped yet has)."""
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def records_of(name, owner):
    return sorted(stack.RUN_DIR.glob(f"{name}-{owner}-*.json"))


def test_a_server_that_exits_while_starting_is_reported_at_once_with_the_errors_of_its_log():
    script = ('echo "[2024-01-01] ERROR the node could not start"; echo "java.net.BindException: Address in use"; '
              'echo "    at org.opensearch.NodeException.bind(Node.java:1)"; echo "starting"; exit 3')
    server = Sleeper(script)
    t0 = time.monotonic()
    try:
        with pytest.raises(stack.StackError) as e:
            server.start(timeout=30)
    finally:
        server.close()
    assert time.monotonic() - t0 < 10, "not noticed until the start's timeout"
    message = str(e.value)
    assert message.startswith("sleeper did not start: the process exited with code 3"), message
    # The lines that say what went wrong, stack frames left out, before the logs' last lines.
    assert ("\n--- errors found in the logs ---\n[2024-01-01] ERROR the node could not start\n"
            "java.net.BindException: Address in use\n--- last lines of ") in message, message


def test_a_server_never_healthy_times_out_and_is_stopped_with_its_record():
    probes = []

    def refused():
        probes.append(1)
        if len(probes) > 200:  # a start that never times out: ends the test rather than hang
            return True
        raise ConnectionRefusedError(111, "Connection refused")

    server = Sleeper("exec sleep 300", refused)
    try:
        with pytest.raises(stack.StackError, match=r"^sleeper did not start: not healthy after 1 s \(last probe: "
                                                   r"\[Errno 111\] Connection refused\)"):
            server.start(timeout=1)
        pid = server.pid
        # Stopped, the whole group (the shell and its sleep), and out of the run registry.
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)
        assert records_of("sleeper", os.getpid()) == []
    finally:
        server.close()


def test_a_server_that_ends_on_sigterm_is_stopped_at_once():
    """Our own child, reaped while its group is polled: not a zombie that keeps the group there until SIGKILL."""
    server = Sleeper("touch ready; exec sleep 300").start()
    t0 = time.monotonic()
    server.close()
    assert time.monotonic() - t0 < 10 and gone(server.pid)


def test_a_server_that_ignores_sigterm_is_killed(monkeypatch):
    monkeypatch.setattr(stack, "STOP_TIMEOUT", 0.5)
    server = Sleeper("trap '' TERM; touch ready; exec sleep 300").start()
    pid = server.pid
    try:
        server.close()
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def test_reap_spares_a_live_owners_servers_and_kills_a_dead_ones():
    server = Sleeper("touch ready; exec sleep 300").start()
    try:
        # A straggler: a server in its own group, its directory on its command line, whose owner (a process
        # that has ended) is gone.
        straggler_dir = tempfile.mkdtemp(prefix="ddb2os-sleeper-")
        straggler = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", straggler_dir],
                                     start_new_session=True)
        threading.Thread(target=straggler.wait, daemon=True).start()  # reaped as soon as it ends
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout.strip()
        record = stack.RUN_DIR / f"sleeper-{dead}-{straggler.pid}.json"
        record.write_text(json.dumps({
            "name": "sleeper", "pgid": straggler.pid, "start": stack._proc_start_time(straggler.pid),
            "owner": int(dead), "owner_start": "0", "marker": straggler_dir, "tmpdir": straggler_dir}))
        try:
            assert stack.reap() >= 1  # ours, and any a killed test run left
            straggler.wait(timeout=30)
            assert not record.exists() and not pathlib.Path(straggler_dir).exists()
            assert server.running() and records_of("sleeper", os.getpid())  # its owner, this process, is alive
        finally:
            if straggler.poll() is None:
                os.killpg(straggler.pid, signal.SIGKILL)
    finally:
        server.close()


def test_a_server_is_stopped_when_the_process_that_started_it_is_killed():
    """PR_SET_PDEATHSIG: SIGKILL leaves no atexit to run, and the server still gets its SIGTERM."""
    code = f"""
import os, sys, time
sys.path.insert(0, {str(ROOT / "scripts")!r})
import stack
server = stack._Server()
server.tmpdir = stack.pathlib.Path(stack.tempfile.mkdtemp(prefix="ddb2os-sleeper-"))
server._spawn([sys.executable, "-c", "import time; time.sleep(300)", str(server.tmpdir)], dict(os.environ),
              server.tmpdir, None)
print(server.pid, flush=True)
time.sleep(300)
"""
    owner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    pid = int(owner.stdout.readline())
    try:
        owner.kill()
        owner.wait(timeout=30)
        deadline = time.monotonic() + 10
        while not gone(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gone(pid)
    finally:
        stack.reap()  # its record and directory (and the server, if it is still there)


@contextlib.contextmanager
def up_dynamodb():
    """`stack.py up --only dynamodb` once it has printed its endpoint: the process, the endpoint and the
    server's run record. Stopped after, if it still runs (SIGTERM, then SIGKILL)."""
    # SIGINT as a terminal gives it, whatever this process inherited: a shell's background job (a CI
    # runner's, say) starts with it ignored, and `up` rightly leaves a signal it was started ignoring.
    proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "stack.py"), "up", "--only", "dynamodb"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        line = proc.stdout.readline()
        assert line.startswith("DYNAMODB_ENDPOINT=http://127.0.0.1:"), line
        (record,) = records_of("dynamodb-local", proc.pid)
        yield proc, line.strip().split("=", 1)[1], record
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()


def test_cli_up_exits_1_when_a_server_dies():
    with up_dynamodb() as (proc, _, record):
        os.killpg(json.loads(record.read_text())["pgid"], signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "stack: error: DynamoDB Local exited unexpectedly (code -9)" in err, err


def test_cli_up_stops_cleanly_under_repeated_signals():
    """The first signal stops the servers; the ones after it (an impatient Ctrl-C) do not break that off."""
    with up_dynamodb() as (proc, endpoint, record):
        server = json.loads(record.read_text())
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            proc.send_signal(signal.SIGINT)
            time.sleep(0.02)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "Traceback" not in err and err.endswith("stack: stopped\n"), err
    assert gone(server["pgid"]) and not record.exists() and not pathlib.Path(server["tmpdir"]).exists()
    with pytest.raises(urllib.error.URLError):
        HTTP.open(endpoint, timeout=5)


def test_unzipping_keeps_files_readable_and_refuses_a_path_outside(tmp_path):
    archive = tmp_path / "dist.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for name, mode in (("d/bin/tool", 0o700), ("d/config/secret.yml", 0o600), ("d/lib/plain.jar", 0)):
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            z.writestr(info, b"x")
    dest = tmp_path / "out"
    dest.mkdir()
    stack._extract_zip(archive, dest)
    # World-readable (the service user runs it), executable where the owner could execute it.
    modes = [stat.S_IMODE((dest / "d" / n).stat().st_mode) for n in ("bin/tool", "config/secret.yml", "lib/plain.jar")]
    assert modes == [0o755, 0o644, 0o644]
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("../evil.txt", b"x")
    with pytest.raises(stack.StackError, match=r"unsafe path '\.\./evil\.txt'"):
        stack._extract_zip(archive, dest)
    assert not (tmp_path / "evil.txt").exists() and not (dest / "evil.txt").exists()


def test_the_emulators_workers_are_counted_once_connected_to_its_runtime_api():
    """Lambda Managed Instances mode: the emulator is ready once max_concurrency connections to its Runtime API
    are established (/proc/net/tcp); one that was closed, or its listener, does not count."""
    listener = socket.socket()
    listener.bind((stack.LOOPBACK, 0))
    listener.listen(8)
    rie = stack.LambdaEmulator(["true"], max_concurrency=2)
    rie.api_port = listener.getsockname()[1]
    connections = []
    try:
        assert not rie._workers_connected()
        connections.append(socket.create_connection((stack.LOOPBACK, rie.api_port)))
        assert not rie._workers_connected()
        closed = socket.create_connection((stack.LOOPBACK, rie.api_port))
        connections += [listener.accept()[0], listener.accept()[0]]
        closed.close()  # the worker's end closed first: FIN_WAIT2 (then TIME_WAIT), still to the API's port
        assert not rie._workers_connected()
        connections.append(socket.create_connection((stack.LOOPBACK, rie.api_port)))
        assert rie._workers_connected()
    finally:
        for c in connections:
            c.close()
        listener.close()
