"""ddb2os.lambda_runtime: the Lambda Runtime API loop that hands ddb2os.handler each event's raw bytes.

Run under AWS's Lambda Runtime Interface Emulator (scripts/stack.py builds it from its Go module), the
real Runtime API a container-image function talks to. The whole sync through it, into OpenSearch, is in
test_e2e.py (test_the_lambda_runtime_syncs_a_stream_under_the_runtime_interface_emulator).
"""
from __future__ import annotations

import http.client
import http.server
import json
import os
import pathlib
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import stack  # noqa: E402

from ddb2os.lambda_runtime import LambdaContext  # noqa: E402

RUNTIME = [sys.executable, "-m", "ddb2os.lambda_runtime"]


def runtime_env(**env):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENSEARCH_", "ES_", "AWS_", "_LAMBDA_"))}
    base.pop("HOST", None)
    base.pop("_HANDLER", None)
    # A port nothing listens on: these tests never reach OpenSearch.
    base.update({"OPENSEARCH_ENDPOINT": f"http://127.0.0.1:{stack.free_port()}", "OPENSEARCH_AUTH": "none"})
    base.update(env)
    return {k: v for k, v in base.items() if v is not None}


@pytest.fixture(autouse=True)
def plain_log_settings(monkeypatch):
    """The in-process tests' records in text on stderr, whatever the machine's own Lambda settings."""
    from ddb2os import _runtime_api
    for name in ("AWS_LAMBDA_LOG_FORMAT", "AWS_LAMBDA_LOG_LEVEL", "_LAMBDA_TELEMETRY_LOG_FD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(_runtime_api, "_log_sink", None)


def test_a_bad_setting_is_an_init_error_naming_it():
    with stack.lambda_emulator(RUNTIME, env=runtime_env(OPENSEARCH_ENDPOINT=None)) as rie:
        status, body = rie.invoke(b'{"Records": []}')
        out = rie.output()
    error = json.loads(body)
    assert status >= 500 and error["errorType"] == "OptionError", body
    assert error["errorMessage"].startswith("[ddb2os.option.invalid] OPENSEARCH_ENDPOINT is not set"), body
    # Lambda's log: the exception, in one line.
    assert "[ERROR] OptionError: Traceback" in out, out


def test_a_function_naming_another_handler_does_not_start():
    # A container image's CMD is appended to its ENTRYPOINT; the emulator also takes it for _HANDLER.
    with stack.lambda_emulator(RUNTIME + ["app.handler"], env=runtime_env()) as rie:
        status, body = rie.invoke(b'{"Records": []}')
        out = rie.output()
    error = json.loads(body)
    assert status >= 500 and error["errorType"] == "OptionError", body
    assert error["errorMessage"] == (
        "[ddb2os.option.invalid] the runtime's argument (a container image's CMD) names the handler 'app.handler', "
        "and ddb2os.lambda_runtime runs ddb2os.handler only: set it to ddb2os.handler, or run another handler on "
        "Lambda's own Python runtime"), body
    assert "[ERROR] OptionError" in out, out


def core_less_package(directory):
    """ddb2os's Python files in directory/ddb2os, without its compiled core, as a wheel built for another
    Python or machine leaves it; returns the package's directory."""
    import ddb2os
    package = directory / "ddb2os"
    package.mkdir()
    for source in pathlib.Path(ddb2os.__file__).parent.glob("*.py"):
        (package / source.name).write_bytes(source.read_bytes())
    return package


def test_a_module_that_cannot_be_imported_is_an_init_error(tmp_path):
    package = core_less_package(tmp_path)
    with stack.lambda_emulator(RUNTIME, env=runtime_env(PYTHONPATH=str(tmp_path))) as rie:
        status, body = rie.invoke(b'{"Records": []}')
        out = rie.output()
    error = json.loads(body)
    assert status >= 500 and error["errorType"] == "Runtime.ImportModuleError", body
    v = sys.version_info
    assert error["errorMessage"] == (
        f"Unable to import module 'ddb2os': ddb2os's compiled core (ddb2os._core) is not in {package} for cpython "
        f"{v[0]}.{v[1]} on {platform.machine()} (found: none): install ddb2os built for the Python and the "
        "architecture that run it"), body
    assert "[ERROR] Runtime.ImportModuleError: Unable to import module 'ddb2os'" in out, out


def test_a_missing_core_is_named_and_a_broken_one_quoted_outside_the_runtime(tmp_path):
    import importlib.machinery
    package = core_less_package(tmp_path)
    (package / "_core.cpython-399-x86_64-linux-gnu.so").write_bytes(b"")  # a wheel for another Python
    # A Runtime API nothing answers: only the runtime itself would post there.
    env = runtime_env(PYTHONPATH=str(tmp_path), AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{stack.free_port()}")
    p = subprocess.run([sys.executable, "-c", "import ddb2os"], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "Runtime API" not in p.stderr, p.stderr
    assert p.stderr.strip().splitlines()[-1] == (
        f"ImportError: ddb2os's compiled core (ddb2os._core) is not in {package} for cpython {sys.version_info[0]}."
        f"{sys.version_info[1]} on {platform.machine()} (found: _core.cpython-399-x86_64-linux-gnu.so): install "
        "ddb2os built for the Python and the architecture that run it"), p.stderr
    # One that is there but cannot be loaded: the loader's own words, which name the problem.
    (package / ("_core" + importlib.machinery.EXTENSION_SUFFIXES[0])).write_bytes(b"not a shared object")
    p = subprocess.run([sys.executable, "-c", "import ddb2os"], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "Runtime API" not in p.stderr, p.stderr
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: ") and str(package) in last and "compiled core" not in last, p.stderr


def test_only_the_runtime_itself_reports_an_import_failure(monkeypatch):
    from ddb2os._runtime_api import started_as_runtime
    monkeypatch.setenv("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")
    assert started_as_runtime(["python3", "-m", "ddb2os.lambda_runtime"])
    assert started_as_runtime(["/var/lang/bin/python3", "-u", "-X", "importtime", "-mddb2os.lambda_runtime", "x"])
    assert started_as_runtime(["python3", "-Im", "ddb2os.lambda_runtime"])  # short options combine
    assert started_as_runtime(["python3", "-IBmddb2os.lambda_runtime"])
    assert started_as_runtime(["python3", "-Wignore", "--check-hash-based-pycs", "never", "-m", "ddb2os.lambda_runtime"])
    assert not started_as_runtime(["python3", "-Ic", "-m", "ddb2os.lambda_runtime"])
    # Lambda's own runtime importing ddb2os.handler reports it itself; other commands are not the runtime.
    assert not started_as_runtime(["python3", "-m", "awslambdaric", "ddb2os.handler"])
    assert not started_as_runtime(["python3", "-m", "ddb2os.backfill", "-m", "ddb2os.lambda_runtime"])
    assert not started_as_runtime(["python3", "app.py", "-m", "ddb2os.lambda_runtime"])
    assert not started_as_runtime(["python3", "-c", "import ddb2os", "-m", "ddb2os.lambda_runtime"])
    assert not started_as_runtime(["python3", "-W", "-m", "ddb2os.lambda_runtime"])
    assert not started_as_runtime(["python3", "-", "-m", "ddb2os.lambda_runtime"])  # a script on stdin, its arguments
    monkeypatch.delenv("AWS_LAMBDA_RUNTIME_API")
    assert not started_as_runtime(["python3", "-m", "ddb2os.lambda_runtime"])


def test_the_command_line_is_read_from_proc_where_python_does_not_keep_it(monkeypatch):
    """Python 3.9 has no sys.orig_argv: /proc/self/cmdline gives the same."""
    from ddb2os._runtime_api import _command_line
    if not hasattr(sys, "orig_argv"):
        pytest.skip("Python 3.9: read from /proc/self/cmdline already")
    kept = list(sys.orig_argv)
    monkeypatch.delattr(sys, "orig_argv")
    assert _command_line() == kept


def test_a_core_that_cannot_be_listed_is_still_an_import_error(monkeypatch):
    """A package in a zip archive: listing its directory raised NotADirectoryError from the except block."""
    from ddb2os import _runtime_api

    def not_a_directory(path):
        raise NotADirectoryError(20, "Not a directory", path)
    monkeypatch.setattr(_runtime_api.os, "listdir", not_a_directory)
    e = _runtime_api.core_import_error(ModuleNotFoundError("No module named 'ddb2os._core'", name="ddb2os._core"))
    assert type(e) is ImportError and "(found: not listed)" in str(e)
    other = ModuleNotFoundError("No module named 'x'", name="x")
    assert _runtime_api.core_import_error(other) is other


def test_an_event_the_handler_refuses_is_that_invocations_error_and_the_next_one_is_served():
    kinesis = {"Records": [{"eventSource": "aws:kinesis", "eventID": "shardId-000:1",
                            "kinesis": {"sequenceNumber": "1", "data": "e30="}}]}
    with stack.lambda_emulator(RUNTIME, env=runtime_env()) as rie:
        status, body = rie.invoke(json.dumps(kinesis).encode())
        error = json.loads(body)
        assert error["errorType"] == "EventError", body
        assert error["errorMessage"].startswith("[ddb2os.event.shape] Records[0].eventSource: ddb2os reads "
                                                'DynamoDB Streams records; this one\'s eventSource is "aws:kinesis"'), body
        # Not JSON at all: the engine's error, with the byte it stopped at.
        status, body = rie.invoke(b'{"Records": [')
        error = json.loads(body)
        assert error["errorType"] == "EventError" and "[ddb2os.json.syntax]" in error["errorMessage"], body
        # The same process goes on (its engine made once): an empty batch is answered.
        status, body = rie.invoke(b'{"Records": []}')
        assert (status, json.loads(body)) == (200, {"batchItemFailures": []}), body
        out = rie.output()
    assert out.count("Init Duration") == 1 and out.count("REPORT RequestId") == 3, out
    # The batch's log line (CloudWatch Embedded Metric Format) went to the function's output.
    assert '"message":"ddb2os batch"' in out, out


def test_the_context_counts_down_to_the_invocations_deadline():
    now = int(time.time() * 1000)
    ctx = LambdaContext("req-1", now + 5000, "arn:aws:lambda:us-east-1:1:function:f",
                        {"AWS_LAMBDA_FUNCTION_NAME": "f", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512"})
    assert 3000 < ctx.get_remaining_time_in_millis() <= 5000
    assert (ctx.aws_request_id, ctx.function_name, ctx.memory_limit_in_mb) == ("req-1", "f", "512")
    assert LambdaContext("req-2", now - 10, "", {}).get_remaining_time_in_millis() == 0


def test_run_by_hand_it_says_what_it_is_for():
    env = {k: v for k, v in os.environ.items() if k != "AWS_LAMBDA_RUNTIME_API"}
    p = subprocess.run(RUNTIME, env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert "AWS_LAMBDA_RUNTIME_API is not set" in p.stderr, p.stderr


# ------------------------------------------------------------------ the loop itself, with a stand-in client

class FakeClient:
    """The Runtime API as serve() uses it: invocations to hand out, and what was posted back."""

    def __init__(self, invocations, refusals=None):
        self.invocations = list(invocations)
        self.responses, self.errors, self.init_errors, self.invocation_ids = [], [], [], []
        self.xray_causes = []
        self.refusals = dict(refusals or {})

    def next_invocation(self):
        return self.invocations.pop(0)

    def respond(self, request_id, payload, invocation_id=""):
        self.responses.append((request_id, json.loads(payload)))
        self.invocation_ids.append(invocation_id)
        self.refuse("respond")

    def fail(self, request_id, error, invocation_id="", xray_cause=""):
        self.errors.append((request_id, error))
        self.xray_causes.append(json.loads(xray_cause))
        self.invocation_ids.append(invocation_id)
        self.refuse("fail")

    def init_failed(self, error):
        self.init_errors.append(error)
        self.refuse("init_failed")

    def refuse(self, method):
        """Raises as the client does when the API answers ``method`` with the status ``refusals`` gives it."""
        from ddb2os.lambda_runtime import RuntimeAPIError
        status = self.refusals.get(method)
        if status:
            raise RuntimeAPIError(f"{method} answered {status}", status)


def test_serve_hands_the_handler_the_bytes_the_context_and_the_trace_id(monkeypatch):
    from ddb2os import lambda_runtime
    seen = []

    def spy(event, context):
        seen.append((event, context.aws_request_id, context.invoked_function_arn,
                     context.get_remaining_time_in_millis(), os.environ.get("_X_AMZN_TRACE_ID")))
        if event == b"boom":
            raise ValueError("no good")
        return {"batchItemFailures": [{"itemIdentifier": "7"}]}

    monkeypatch.setattr(lambda_runtime, "handler", spy)
    monkeypatch.setattr(lambda_runtime, "_get_engine", lambda: None)
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "left over")
    now = int(time.time() * 1000)
    client = FakeClient([
        (b'{"Records": []}', {"lambda-runtime-aws-request-id": "r1", "lambda-runtime-deadline-ms": str(now + 9000),
                              "lambda-runtime-invoked-function-arn": "arn:f", "lambda-runtime-trace-id": "Root=1-a"}),
        (b"boom", {"lambda-runtime-aws-request-id": "r2"}),  # no deadline, no trace id
    ])
    assert lambda_runtime.serve(client, max_invocations=2) == 0
    (e1, id1, arn1, left1, trace1), (e2, id2, arn2, left2, trace2) = seen
    assert (e1, id1, arn1, trace1) == (b'{"Records": []}', "r1", "arn:f", "Root=1-a")
    assert 7000 < left1 <= 9000
    assert (e2, id2, arn2, trace2) == (b"boom", "r2", "", None)  # a trace id is never carried over
    assert 57000 < left2 <= 60000  # as ddb2os.handler assumes without a deadline
    assert client.responses == [("r1", {"batchItemFailures": [{"itemIdentifier": "7"}]})]
    (rid, error), = client.errors
    assert (rid, error["requestId"], error["errorType"], error["errorMessage"]) == ("r2", "r2", "ValueError", "no good")
    # The stack from the handler on, as Lambda's own runtime leaves out its loop: here the spy's frame.
    trace, = error["stackTrace"]
    assert 'test_lambda_runtime.py", line' in trace and "in spy" in trace and 'raise ValueError("no good")' in trace
    # X-Ray's record of the fault, in awslambdaric's shape.
    raise_line = next(n for n, line in enumerate(pathlib.Path(__file__).read_text().splitlines(), 1)
                      if line.strip() == 'raise ValueError("no good")')
    cause, = client.xray_causes
    assert cause == {"working_directory": os.getcwd(),
                     "exceptions": [{"message": "no good", "type": "ValueError",
                                     "stack": [{"label": "spy", "path": __file__, "line": raise_line}]}],
                     "paths": [__file__]}


def test_serve_reports_a_failed_start_and_a_nameless_invocation(monkeypatch):
    from ddb2os import OptionError, lambda_runtime

    def bad_config():
        raise OptionError("option.invalid", "", "OPENSEARCH_ENDPOINT is not set")

    monkeypatch.setattr(lambda_runtime, "_get_engine", bad_config)
    client = FakeClient([])
    assert lambda_runtime.serve(client) == 1
    (error,), = [client.init_errors]
    assert error["errorType"] == "OptionError" and "OPENSEARCH_ENDPOINT is not set" in error["errorMessage"]

    monkeypatch.setattr(lambda_runtime, "_get_engine", lambda: None)
    with pytest.raises(lambda_runtime.RuntimeAPIError, match="without Lambda-Runtime-Aws-Request-Id"):
        lambda_runtime.serve(FakeClient([(b"{}", {})]))


class _ClosingAPI(http.server.BaseHTTPRequestHandler):
    """Answers as if keeping the connection alive, then closes it (an idle keep-alive the server dropped)."""
    protocol_version = "HTTP/1.1"
    requests = []

    def do_GET(self):
        self.requests.append(self.path)
        body = b'{"n": %d}' % len(self.requests)
        self.send_response(200)
        self.send_header("Lambda-Runtime-Aws-Request-Id", f"id{len(self.requests)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, *args):
        pass


def test_a_kept_alive_connection_the_api_closed_is_reopened_once():
    from ddb2os.lambda_runtime import _Client
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ClosingAPI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = _Client(f"127.0.0.1:{server.server_address[1]}")
        assert client.next_invocation()[0] == b'{"n": 1}'
        assert client.next_invocation()[0] == b'{"n": 2}'  # on a new connection, after the old one failed
        assert _ClosingAPI.requests == ["/2018-06-01/runtime/invocation/next"] * 2
    finally:
        server.shutdown()
        server.server_close()
    # Nothing listening: a fresh connection's failure is not retried, it is raised.
    with pytest.raises(OSError):
        _Client(f"127.0.0.1:{stack.free_port()}").next_invocation()


def test_a_fresh_connection_closed_without_an_answer_is_not_retried():
    """Also after a "Connection: close" answer, when http.client opens the next connection itself: a request
    the API may have taken (a POST of a response) is never sent twice."""
    from ddb2os.lambda_runtime import _Client
    # First connection: one answer that closes it. Second: the request read, the connection closed unanswered.
    # A third (the request sent again) is waited for 2 s, and recorded.
    closing = (b"HTTP/1.1 200 OK\r\nConnection: close\r\nLambda-Runtime-Aws-Request-Id: a\r\n"
               b"Content-Length: 2\r\n\r\n{}")
    address, received, served = scripted_api([closing], [b""], [b""], wait=2)
    client = _Client(address)
    assert client.next_invocation()[0] == b"{}"
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        client.respond("a", b"{}")
    served.join(15)
    assert received == [b"GET /2018-06-01/runtime/invocation/next HTTP/1.1",
                        b"POST /2018-06-01/runtime/invocation/a/response HTTP/1.1"]


def test_the_handler_setting_must_name_ddb2os_handler(monkeypatch):
    from ddb2os import OptionError, lambda_runtime
    check = lambda_runtime.check_handler_setting
    for argv, env in [((), {}), (("rt",), {"_HANDLER": "ddb2os.handler"}), (("rt", "ddb2os.handler"), {}),
                      (("rt",), {"_HANDLER": "ddb2os.lambda_runtime"}),  # the emulator's, with no CMD
                      (("rt", "ddb2os._handler.handler"), {"_HANDLER": "app.handler"})]:  # the argument wins
        check(argv, env)
    with pytest.raises(OptionError, match=r"^\[ddb2os\.option\.invalid\] _HANDLER \(the function's handler "
                                          r"setting\) names the handler 'app\.handler', and ddb2os\.lambda_runtime"):
        check(("rt",), {"_HANDLER": "app.handler"})
    with pytest.raises(OptionError, match="the runtime's argument .* names the handler 'ddb2os.handler2'"):
        check(("rt", "ddb2os.handler2"), {"_HANDLER": "ddb2os.handler"})
    # A CMD is no emulator's last word: no hint about _HANDLER, whatever it holds.
    with pytest.raises(OptionError, match=r"names the handler '/app/handler\.py', .* on Lambda's own Python runtime$"):
        check(("rt", "/app/handler.py"), {})
    # The emulator's _HANDLER for a command run through a shell or a wrapper: the message says what it is.
    for command_word in ("exec python3 -m ddb2os.lambda_runtime", "/usr/bin/python3"):
        with pytest.raises(OptionError, match=r"the Runtime Interface Emulator takes the last word of its command "
                                              r"for the handler: set _HANDLER=ddb2os\.handler\)$"):
            check(("rt",), {"_HANDLER": command_word})

    # serve() reports it as the start's failure, before the configuration is read, and serves nothing.
    read = []
    monkeypatch.setattr(lambda_runtime, "_get_engine", lambda: read.append(1))
    client = FakeClient([(b"{}", {"lambda-runtime-aws-request-id": "r1"})])
    assert lambda_runtime.serve(client, argv=("rt",), env={"_HANDLER": "mine.handler"}) == 1
    (error,), = [client.init_errors]
    assert error["errorType"] == "OptionError" and "'mine.handler'" in error["errorMessage"], error
    # Raised in the loop's own code, with no handler's frame: its stack is the loop's, not none.
    assert error["stackTrace"] and ", in check_handler_setting\n" in error["stackTrace"][-1], error
    assert read == [] and client.responses == [] and len(client.invocations) == 1


def test_snapstart_is_refused_at_the_start(monkeypatch):
    from ddb2os import lambda_runtime
    lambda_runtime.check_initialization_type({"AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand"})
    lambda_runtime.check_initialization_type({})
    read = []
    monkeypatch.setattr(lambda_runtime, "_get_engine", lambda: read.append(1))
    client = FakeClient([(b"{}", {"lambda-runtime-aws-request-id": "r1"})])
    assert lambda_runtime.serve(client, argv=("rt",), env={"AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start"}) == 1
    (error,), = [client.init_errors]
    assert (error["errorType"], error["errorMessage"]) == ("OptionError", (
        "[ddb2os.option.invalid] ddb2os.lambda_runtime does not support SnapStart (AWS_LAMBDA_INITIALIZATION_TYPE "
        "is snap-start): turn SnapStart off, or set the function's handler to ddb2os.handler on Lambda's own "
        "Python runtime")), error
    assert read == [] and client.responses == [] and len(client.invocations) == 1


def test_an_answer_the_api_no_longer_takes_is_logged_and_the_loop_goes_on(monkeypatch, capsys):
    """410 Gone: the invocation timed out (Lambda Managed Instances let its handler run on). Any other refusal
    ends a single loop; a worker of several logs it too, as awslambdaric's workers do."""
    from ddb2os import lambda_runtime
    monkeypatch.setattr(lambda_runtime, "_get_engine", lambda: None)
    monkeypatch.setattr(lambda_runtime, "handler", lambda event, context: {"batchItemFailures": []})
    invocations = [(b"{}", {"lambda-runtime-aws-request-id": "r1", "lambda-runtime-invocation-id": "inv-1"}),
                   (b"{}", {"lambda-runtime-aws-request-id": "r2"})]
    client = FakeClient(invocations, refusals={"respond": 410})
    assert lambda_runtime.serve(client, max_invocations=2) == 0
    assert [rid for rid, _ in client.responses] == ["r1", "r2"]
    # The invocation id goes back with the answer it belongs to.
    assert client.invocation_ids == ["inv-1", ""]
    assert "[WARN] ddb2os.lambda_runtime: the answer to request r1 was not taken: respond answered 410" in capsys.readouterr().err

    with pytest.raises(lambda_runtime.RuntimeAPIError, match="answered 413"):
        lambda_runtime.serve(FakeClient(invocations, refusals={"respond": 413}), max_invocations=2)
    client = FakeClient(invocations, refusals={"respond": 413})
    assert lambda_runtime.serve(client, max_invocations=2, concurrent=True) == 0
    assert len(client.responses) == 2


def test_a_worker_of_several_leaves_a_start_failure_another_reported_to_it(monkeypatch):
    from ddb2os import OptionError, lambda_runtime

    def bad_config():
        raise OptionError("option.invalid", "", "OPENSEARCH_ENDPOINT is not set")

    monkeypatch.setattr(lambda_runtime, "_get_engine", bad_config)
    # The API refuses (403) every start failure after the first: a worker takes it as said.
    assert lambda_runtime.serve(FakeClient([], refusals={"init_failed": 403}), concurrent=True) == 1
    with pytest.raises(lambda_runtime.RuntimeAPIError, match="answered 403"):
        lambda_runtime.serve(FakeClient([], refusals={"init_failed": 403}))


def test_a_worker_asks_again_for_the_next_invocation(monkeypatch, capsys):
    from ddb2os import lambda_runtime
    monkeypatch.setattr(lambda_runtime, "_get_engine", lambda: None)
    monkeypatch.setattr(lambda_runtime, "handler", lambda event, context: {"batchItemFailures": []})
    monkeypatch.setattr(lambda_runtime.time, "sleep", lambda s: None)
    client = FakeClient([(b"{}", {"lambda-runtime-aws-request-id": "r1"})])
    answers = [ConnectionResetError("reset"), lambda_runtime.RuntimeAPIError("answered 500", 500)]
    real = client.next_invocation

    def flaky():
        if answers:
            raise answers.pop(0)
        return real()

    client.next_invocation = flaky
    assert lambda_runtime.serve(client, max_invocations=1, concurrent=True) == 0
    assert [rid for rid, _ in client.responses] == ["r1"]
    assert capsys.readouterr().err == (
        "[WARN] ddb2os.lambda_runtime: asking for the next invocation failed (reset); asking again in 0.1 s\n"
        "[WARN] ddb2os.lambda_runtime: asking for the next invocation failed (answered 500); asking again in 0.2 s\n")
    client = FakeClient([])
    client.next_invocation = lambda: (_ for _ in ()).throw(ConnectionResetError("reset"))
    slept = []
    monkeypatch.setattr(lambda_runtime.time, "sleep", slept.append)
    with pytest.raises(ConnectionResetError):  # a single loop exits at once, as the Runtime API asks
        lambda_runtime.serve(client, max_invocations=1)
    assert slept == []


def test_max_concurrency_is_read_from_the_environment():
    from ddb2os import OptionError
    from ddb2os.lambda_runtime import max_concurrency
    assert max_concurrency({}) is None
    assert max_concurrency({"AWS_LAMBDA_MAX_CONCURRENCY": "16"}) == 16
    assert max_concurrency({"AWS_LAMBDA_MAX_CONCURRENCY": "1"}) == 1
    assert max_concurrency({"AWS_LAMBDA_MAX_CONCURRENCY": "10000"}) == 10000
    assert max_concurrency({"AWS_LAMBDA_MAX_CONCURRENCY": "0016"}) == 16
    # More than 4300 digits: int() would refuse it in words of its own (Python 3.11 on), not naming the setting.
    for bad in ("0", "-1", "x", "", "1e3", "١", "10001", "9" * 5000, "0" * 5000):
        with pytest.raises(OptionError, match=r"AWS_LAMBDA_MAX_CONCURRENCY must be a number from 1 to 10000"):
            max_concurrency({"AWS_LAMBDA_MAX_CONCURRENCY": bad})


def test_the_invocation_id_and_the_x_ray_cause_go_back_as_headers():
    from ddb2os.lambda_runtime import _Client, xray_cause_of
    try:
        raise ValueError("m")
    except ValueError as e:
        cause = xray_cause_of(e)
    api = _AnsweringAPI()
    try:
        client = _Client(api.address)
        client.respond("r1", b"{}", "inv-1")
        client.fail("r2", {"errorType": "EventError", "errorMessage": "m", "stackTrace": []}, "inv-2", cause)
        client.respond("r3", b"{}")
        # A cause of 1 MiB or more would not fit a header: left out, the error still posted.
        client.fail("r4", {"errorType": "EventError", "errorMessage": "m", "stackTrace": []}, "", "x" * (1 << 20))
    finally:
        api.close()
    assert [(path, h["Lambda-Runtime-Invocation-Id"], h["Lambda-Runtime-Function-Error-Type"]) for path, h, _ in api.seen] == [
        ("/2018-06-01/runtime/invocation/r1/response", "inv-1", None),
        ("/2018-06-01/runtime/invocation/r2/error", "inv-2", "EventError"),
        ("/2018-06-01/runtime/invocation/r3/response", None, None),
        ("/2018-06-01/runtime/invocation/r4/error", None, "EventError")]
    assert [h["Lambda-Runtime-Function-XRay-Error-Cause"] for _, h, _ in api.seen] == [None, cause, None, None]


def log_socket(path):
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(2)
    listener.settimeout(30)
    return listener


def received_on(listener):
    """What the two connections to a log socket carried: one for stdout, then one for stderr."""
    received = []
    for _ in range(2):
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(30)
            chunks = []
            while True:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                chunks.append(chunk)
            received.append(b"".join(chunks))
    return received


def test_a_workers_output_goes_to_the_log_socket_it_is_given(tmp_path):
    path = str(tmp_path / "logs.sock")
    listener = log_socket(path)
    code = ("import sys; from ddb2os.lambda_runtime import _redirect_output; _redirect_output(sys.argv[1]); "
            "print('to stdout', flush=True); print('to stderr', file=sys.stderr, flush=True)")
    p = subprocess.Popen([sys.executable, "-c", code, path], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    received = received_on(listener)
    out, err = p.communicate(timeout=30)
    listener.close()
    assert p.returncode == 0 and (out, err) == (b"", b""), (out, err)
    assert received == [b"to stdout\n", b"to stderr\n"]
    # Set but empty, as unset: the output stays where it is (awslambdaric's test is the same).
    code = "from ddb2os.lambda_runtime import _redirect_output; _redirect_output(''); print('kept')"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (p.returncode, p.stdout) == (0, "kept\n"), p.stderr


def test_each_worker_writes_to_the_log_socket_lambda_names(tmp_path):
    """_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET, read by each forked worker; the runtime's own warning stays
    on its output."""
    path = str(tmp_path / "logs.sock")
    listener = log_socket(path)
    code = """
import sys
from ddb2os import lambda_runtime
def fake_run(address, concurrent):
    print("from the worker", flush=True)
    print("its error", file=sys.stderr, flush=True)
    return 0
lambda_runtime._run = fake_run
sys.exit(lambda_runtime._run_workers("127.0.0.1:1", 1))
"""
    p = subprocess.Popen([sys.executable, "-c", code], env=runtime_env(_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET=path),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        received = received_on(listener)
    finally:
        out, err = p.communicate(timeout=60)
        listener.close()
    assert p.returncode == 0 and out == "" and "exited with status 0; stopping the other 0" in err, (out, err)
    assert received == [b"from the worker\n", b"its error\n"]


# Under pytest-xdist (make test) this process has execnet's thread too, and Python 3.12+ warns that forking
# it may deadlock the child: these children touch nothing of execnet's, only files and a sleep.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded, use of fork:DeprecationWarning")
def test_a_worker_that_exits_stops_the_others_and_the_runtime(monkeypatch, tmp_path):
    """Lambda Managed Instances: a worker gone (a crash, the OOM killer) would leave a slot nobody polls
    while the environment still takes invocations for it; the runtime stops every worker and exits."""
    from ddb2os import lambda_runtime
    first, started = tmp_path / "first", tmp_path / "started"

    def fake_run(address, concurrent):  # in each forked worker
        assert concurrent and address == "127.0.0.1:1"
        with open(started, "a") as f:
            f.write(f"{os.getpid()}\n")
        try:
            os.close(os.open(first, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            time.sleep(30)  # waiting for an invocation, until stopped (not stopped, the status would be 5)
            return 5
        while len(started.read_text().split()) < 3:
            time.sleep(0.02)
        return 3  # the first exits once all three run

    monkeypatch.setattr(lambda_runtime, "_run", fake_run)
    handler_before = signal.getsignal(signal.SIGTERM)
    assert lambda_runtime._run_workers("127.0.0.1:1", 3) == 3
    pids = [int(p) for p in started.read_text().split()]
    assert len(pids) == 3
    for pid in pids:  # every worker reaped: none left running
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
    assert signal.getsignal(signal.SIGTERM) is handler_before


def test_a_workers_own_failure_is_an_error_record_and_stops_the_runtime():
    """On its own output, not the telemetry descriptor the runtime was given: frames of several workers
    on one descriptor could interleave (awslambdaric's workers write to their output too)."""
    code = """
import sys
from ddb2os import _runtime_api, lambda_runtime
def fake_run(address, concurrent):
    raise ZeroDivisionError("a bug of the loop's " + "x" * 20000)
lambda_runtime._run = fake_run
_runtime_api.log_sink()  # as main() takes the descriptor before forking
sys.exit(lambda_runtime._run_workers("127.0.0.1:1", 1))
"""
    r, w = os.pipe()
    p = subprocess.run([sys.executable, "-c", code], pass_fds=(w,),
                       env=runtime_env(AWS_LAMBDA_LOG_FORMAT="JSON", _LAMBDA_TELEMETRY_LOG_FD=str(w)),
                       capture_output=True, text=True, timeout=60)
    os.close(w)
    frames = read_frames(r)
    os.close(r)
    (error,) = [json.loads(line) for line in p.stderr.splitlines()]
    assert p.returncode == 1 and (error["level"], error["errorType"]) == ("ERROR", "ZeroDivisionError"), p.stderr
    assert error["errorMessage"].startswith("a bug of the loop's x") and "fake_run" in error["stackTrace"][-1]
    (kind, _, warning), = frames  # the runtime's own, on the descriptor
    assert kind == 0xA55A0012 and json.loads(warning)["message"].endswith(
        "exited with status 1; stopping the other 0"), frames


def test_sigterm_to_the_runtime_reaches_every_worker(tmp_path):
    started = tmp_path / "started"
    code = f"""
import os, sys, time
from ddb2os import lambda_runtime
def fake_run(address, concurrent):
    with open({str(started)!r}, "a") as f:
        f.write(f"{{os.getpid()}}\\n")
    time.sleep(300)
    return 0
lambda_runtime._run = fake_run
sys.exit(lambda_runtime._run_workers("127.0.0.1:1", 2))
"""
    p = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while (not started.exists() or len(started.read_text().split()) < 2) and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = [int(w) for w in started.read_text().split()]
    assert len(workers) == 2
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 1  # the workers ended by the signal
    assert err == "", err  # a shutdown, not a worker gone: nothing to warn of
    for pid in workers:  # reaped by the runtime before it exited
        assert not pathlib.Path(f"/proc/{pid}").exists()


# ------------------------------------------------------------ from a mutation run of the pure-Python files

class _AnsweringAPI:
    """A Runtime API answering every POST with `status`, recording what it was sent."""

    def __init__(self, status=202):
        seen = self.seen = []

        class API(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                seen.append((self.path, self.headers, body))
                answer = b'{"errorMessage":"no","errorType":"X"}' if status >= 300 else b""
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), API)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_an_answer_the_api_refuses_with_a_4xx_is_an_error():
    from ddb2os.lambda_runtime import RuntimeAPIError, _Client
    for status in (400, 403, 410, 413):
        api = _AnsweringAPI(status)
        try:
            client = _Client(api.address)
            with pytest.raises(RuntimeAPIError) as e:
                client.respond("r1", b"{}")
            assert e.value.status == status
            with pytest.raises(RuntimeAPIError) as e:
                client.init_failed({"errorType": "OptionError", "errorMessage": "m", "stackTrace": []})
            assert e.value.status == status and str(e.value).startswith(f"POST /2018-06-01/runtime/init/error answered {status}")
        finally:
            api.close()


def test_a_bad_concurrency_setting_is_posted_as_the_start_failure(monkeypatch):
    from ddb2os import lambda_runtime
    api = _AnsweringAPI()
    try:
        monkeypatch.setenv("AWS_LAMBDA_RUNTIME_API", api.address)
        monkeypatch.setenv("AWS_LAMBDA_MAX_CONCURRENCY", "0")
        assert lambda_runtime.main() == 1
    finally:
        api.close()
    (path, headers, body), = api.seen
    assert (path, headers["Lambda-Runtime-Function-Error-Type"]) == ("/2018-06-01/runtime/init/error", "OptionError")
    assert "AWS_LAMBDA_MAX_CONCURRENCY must be a number from 1 to 10000, not '0'" in json.loads(body)["errorMessage"]


def test_an_exception_is_logged_as_one_line(capsys):
    from ddb2os._runtime_api import _log_exception
    try:
        raise ValueError("two\nlines")
    except ValueError as e:
        _log_exception(e, "r1")
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("[ERROR] ValueError (request r1): Traceback"), err
    assert "ValueError: two\rlines" in err


def test_the_runtime_apis_address_may_be_ipv6():
    from ddb2os.lambda_runtime import RuntimeAPIError, _Client
    assert (_Client("[::1]:9001")._host, _Client("[::1]:9001")._port) == ("::1", 9001)
    assert (_Client("127.0.0.1:9001")._host, _Client("localhost:80")._port) == ("127.0.0.1", 80)
    for bad in ("9001", "host:", ":9001", "host:port", "host:\u00b2", "host:0", "host:65536", "host:" + "9" * 5000):
        with pytest.raises(RuntimeAPIError, match="AWS_LAMBDA_RUNTIME_API must be host:port"):
            _Client(bad)


def test_the_loop_exits_with_1_when_the_runtime_api_fails(monkeypatch, capsys):
    from ddb2os import lambda_runtime
    monkeypatch.setattr(lambda_runtime, "_get_engine", lambda: None)
    monkeypatch.setattr(sys, "argv", ["rt"])  # no handler named: the loop goes on to ask for an invocation
    monkeypatch.delenv("_HANDLER", raising=False)
    address = f"127.0.0.1:{stack.free_port()}"  # nothing listens
    assert lambda_runtime._run(address, concurrent=False) == 1
    assert f"ddb2os.lambda_runtime: the Runtime API at {address} failed:" in capsys.readouterr().err


def read_frames(fd):
    """The frames written to a telemetry descriptor's pipe: (type, timestamp in microseconds, text)."""
    data = b""
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    frames = []
    while data:
        kind, length, stamp = int.from_bytes(data[:4], "big"), int.from_bytes(data[4:8], "big"), int.from_bytes(data[8:16], "big")
        frames.append((kind, stamp, data[16:16 + length].decode()))
        data = data[16 + length:]
    return frames


# Run with the log settings in its environment, and the descriptors OURS (ddb2os's
# _LAMBDA_TELEMETRY_LOG_FD) and THEIRS (awslambdaric's sink, given the same records).
LOG_BOTH = """
import logging, os, sys, traceback
from awslambdaric import bootstrap
from ddb2os import _runtime_api
theirs = bootstrap.FramedTelemetryLogSink(int(sys.argv[1])).__enter__()
ours = _runtime_api.log_sink()
assert "_LAMBDA_TELEMETRY_LOG_FD" not in os.environ  # taken out, as awslambdaric takes it
def fail():
    raise ValueError("two words")
try:
    fail()
except ValueError as e:
    _runtime_api._log_exception(e, "r1")
    # awslambdaric's own record of a handler's exception (bootstrap.handle_event_request's)
    bootstrap.log_error(bootstrap.make_error(str(e), type(e).__name__, traceback.format_list(
        bootstrap.extract_traceback(e.__traceback__)), "r1"), theirs)
_runtime_api.log_sink().warning("the answer to request r2 was not taken", "r2")
bootstrap._setup_logging(bootstrap._AWS_LAMBDA_LOG_FORMAT, bootstrap._AWS_LAMBDA_LOG_LEVEL, theirs)
bootstrap._GLOBAL_AWS_REQUEST_ID = "r2"
logging.getLogger("ddb2os.lambda_runtime").warning("the answer to request r2 was not taken")
"""


def log_both(**env):
    if sys.version_info < (3, 10):
        pytest.skip("awslambdaric 4 needs Python 3.10 or later")  # tests/requirements.txt leaves it out there
    ours_r, ours_w = os.pipe()
    theirs_r, theirs_w = os.pipe()
    before = time.time_ns() // 1000
    env = runtime_env(_LAMBDA_TELEMETRY_LOG_FD=str(ours_w), **env)
    p = subprocess.run([sys.executable, "-c", LOG_BOTH, str(theirs_w)], env=env, pass_fds=(ours_w, theirs_w),
                       capture_output=True, text=True, timeout=60)
    os.close(ours_w)
    os.close(theirs_w)
    ours, theirs = read_frames(ours_r), read_frames(theirs_r)
    os.close(ours_r)
    os.close(theirs_r)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    after = time.time_ns() // 1000
    assert all(before <= stamp <= after for _, stamp, _ in ours + theirs), (before, ours, after)
    return ours, theirs


def without_timestamp(text):
    record = json.loads(text)
    assert time.strptime(record.pop("timestamp"), "%Y-%m-%dT%H:%M:%SZ")
    return record


def test_in_the_json_log_format_records_are_awslambdarics_on_the_telemetry_descriptor():
    ours, theirs = log_both(AWS_LAMBDA_LOG_FORMAT="json")
    assert [kind for kind, _, _ in ours] == [kind for kind, _, _ in theirs] == [0xA55A0016, 0xA55A0012]
    (_, _, our_error), (_, _, our_warning) = ours
    (_, _, their_error), (_, _, their_warning) = theirs
    assert without_timestamp(our_error) == without_timestamp(their_error)
    error = without_timestamp(our_error)
    assert (error["level"], error["errorType"], error["errorMessage"], error["requestId"]) == (
        "ERROR", "ValueError", "two words", "r1")
    # The stack from where it was raised (with its source line from Python 3.13 on, which keeps -c's).
    assert error["stackTrace"][-1].startswith('  File "<string>", line 9, in fail\n'), error
    assert without_timestamp(our_warning) == without_timestamp(their_warning) == {
        "level": "WARNING", "message": "the answer to request r2 was not taken", "logger": "ddb2os.lambda_runtime",
        "requestId": "r2"}
    assert our_warning.endswith("}\n") and their_warning.endswith("}\n")


def test_in_the_text_log_format_a_record_of_several_lines_is_one_frame_with_its_level():
    ours, theirs = log_both()
    # A warning's frame has a level only when a log level is set (below), as awslambdaric's.
    assert [kind for kind, _, _ in ours] == [kind for kind, _, _ in theirs] == [0xA55A0017, 0xA55A0003]
    (_, _, error), (_, _, warning) = ours
    # Python's whole traceback, its lines kept apart: the frame, not a line, is the event.
    assert error.startswith("[ERROR] ValueError (request r1): Traceback (most recent call last):\n"), error
    assert error.endswith("ValueError: two words\n") and "\r" not in error, error
    assert warning == "[WARN] ddb2os.lambda_runtime: the answer to request r2 was not taken"


def test_the_log_level_leaves_warnings_out_but_never_errors():
    ours, theirs = log_both(AWS_LAMBDA_LOG_LEVEL="INFO")
    assert [kind for kind, _, _ in ours] == [kind for kind, _, _ in theirs] == [0xA55A0017, 0xA55A0013]
    for level, kept in (("ERROR", False), ("fatal", False), ("WARN", True), ("TRACE", True), ("verbose", True)):
        ours, theirs = log_both(AWS_LAMBDA_LOG_FORMAT="JSON", AWS_LAMBDA_LOG_LEVEL=level)
        assert [kind for kind, _, _ in ours] == [kind for kind, _, _ in theirs], level
        assert [kind for kind, _, _ in ours] == [0xA55A0016, 0xA55A0012] if kept else [0xA55A0016], level


def test_records_go_to_stderr_without_a_usable_telemetry_descriptor(monkeypatch, capsys):
    from ddb2os import _runtime_api
    env = {"_LAMBDA_TELEMETRY_LOG_FD": "stdout", "AWS_LAMBDA_LOG_FORMAT": "JSON"}
    sink = _runtime_api.LogSink(env)
    assert env == {"AWS_LAMBDA_LOG_FORMAT": "JSON"}
    warning = json.loads(capsys.readouterr().err)
    assert (warning["level"], warning["message"]) == ("WARNING", (
        "_LAMBDA_TELEMETRY_LOG_FD='stdout' is not a descriptor to write to (invalid literal for int() with base "
        "10: 'stdout'): the runtime's records go to stderr")), warning
    # A descriptor that was closed: each record goes to stderr rather than nowhere.
    r, w = os.pipe()
    sink = _runtime_api.LogSink({"_LAMBDA_TELEMETRY_LOG_FD": str(w)})
    os.close(r)
    sink.error({"errorType": "E"}, "[ERROR] E: a\nb\n")
    sink.warning("w")
    assert capsys.readouterr().err == "[ERROR] E: a\rb\n[WARN] ddb2os.lambda_runtime: w\n"
    assert sink._frames is None  # the descriptor closed, once
    # A number no descriptor has; a non-blocking descriptor that is full (the record is not waited for).
    _runtime_api.LogSink({"_LAMBDA_TELEMETRY_LOG_FD": "99999999999"})
    assert "_LAMBDA_TELEMETRY_LOG_FD='99999999999' is not a descriptor to write to" in capsys.readouterr().err
    r, w = os.pipe()
    os.set_blocking(w, False)
    try:
        while True:
            os.write(w, b"x" * 65536)
    except BlockingIOError:
        pass
    sink = _runtime_api.LogSink({"_LAMBDA_TELEMETRY_LOG_FD": str(w)})
    sink.error({"errorType": "E"}, "[ERROR] E: full")
    assert capsys.readouterr().err == "[ERROR] E: full\n" and sink._frames is None
    os.close(r)


def test_a_bug_of_the_loop_is_one_record_and_exit_1(monkeypatch, capsys):
    from ddb2os import lambda_runtime

    def serve(client, argv=(), concurrent=False):
        raise TypeError("a bug")
    monkeypatch.setattr(lambda_runtime, "serve", serve)
    assert lambda_runtime._run("127.0.0.1:1", concurrent=False) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("[ERROR] TypeError: Traceback"), err


def test_the_runtime_logs_in_json_under_the_emulator():
    env = runtime_env(OPENSEARCH_ENDPOINT=None, AWS_LAMBDA_LOG_FORMAT="JSON")
    with stack.lambda_emulator(RUNTIME, env=env) as rie:
        status, body = rie.invoke(b'{"Records": []}')
        out = rie.output()
    assert status >= 500 and json.loads(body)["errorType"] == "OptionError", body
    records = [json.loads(line) for line in out.splitlines() if line.startswith('{"timestamp"')]
    assert [(r["level"], r["errorType"]) for r in records] == [("ERROR", "OptionError")], out
    assert records[0]["errorMessage"].startswith("[ddb2os.option.invalid] OPENSEARCH_ENDPOINT is not set"), out


# ------------------------------------------------------------ from the fifth mutation run (lambda_runtime, scripts)

def test_an_invocations_tenant_and_invocation_id_reach_its_context_and_its_error(monkeypatch):
    from ddb2os import lambda_runtime
    tenants = []

    def refuse(event, context):
        tenants.append(context.tenant_id)
        raise ValueError("no good")

    monkeypatch.setattr(lambda_runtime, "handler", refuse)
    monkeypatch.setattr(lambda_runtime, "_get_engine", lambda: None)
    client = FakeClient([(b"{}", {"lambda-runtime-aws-request-id": "r1", "lambda-runtime-aws-tenant-id": "tenant-1",
                                  "lambda-runtime-invocation-id": "inv-1"}),
                         (b"{}", {"lambda-runtime-aws-request-id": "r2"})])
    assert lambda_runtime.serve(client, max_invocations=2) == 0
    assert tenants == ["tenant-1", None]
    # The error goes back with the invocation id it belongs to, as a response does.
    assert [rid for rid, _ in client.errors] == ["r1", "r2"] and client.invocation_ids == ["inv-1", ""]


def test_in_json_an_answer_not_taken_is_a_warning_of_its_request(monkeypatch, capsys):
    from ddb2os import lambda_runtime
    monkeypatch.setenv("AWS_LAMBDA_LOG_FORMAT", "JSON")  # read by the sink made at the first record
    monkeypatch.setattr(lambda_runtime, "_get_engine", lambda: None)
    monkeypatch.setattr(lambda_runtime, "handler", lambda event, context: {"batchItemFailures": []})
    client = FakeClient([(b"{}", {"lambda-runtime-aws-request-id": "r1"})], refusals={"respond": 410})
    assert lambda_runtime.serve(client, max_invocations=1) == 0
    warning = json.loads(capsys.readouterr().err)
    assert (warning["level"], warning["requestId"], warning["message"]) == (
        "WARNING", "r1", "the answer to request r1 was not taken: respond answered 410"), warning


def test_ctrl_c_ends_the_loop_with_130_and_a_broken_answer_is_the_apis_failure(monkeypatch, capsys):
    from ddb2os import lambda_runtime
    raised = [KeyboardInterrupt(), http.client.BadStatusLine("HTTP/9.9 what")]

    def serve(client, argv=(), concurrent=False):
        raise raised.pop(0)
    monkeypatch.setattr(lambda_runtime, "serve", serve)
    assert lambda_runtime._run("127.0.0.1:1", concurrent=False) == 130
    assert capsys.readouterr().err == ""
    # An answer http.client cannot read is the Runtime API's failure (one line), not a bug of the loop's.
    assert lambda_runtime._run("127.0.0.1:1", concurrent=False) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("ddb2os.lambda_runtime: the Runtime API at 127.0.0.1:1 failed: "), err


def test_main_takes_the_telemetry_descriptor_before_the_loop_runs():
    """Out of the environment before the handler runs (as awslambdaric takes it): nothing the function starts
    writes frames to it."""
    code = """
import os, sys
from ddb2os import lambda_runtime
def fake_run(address, concurrent):
    print(os.environ.get("_LAMBDA_TELEMETRY_LOG_FD"), concurrent)
    return 0
lambda_runtime._run = fake_run
sys.exit(lambda_runtime.main())
"""
    r, w = os.pipe()
    try:
        p = subprocess.run([sys.executable, "-c", code], pass_fds=(w,), capture_output=True, text=True, timeout=60,
                           env=runtime_env(AWS_LAMBDA_RUNTIME_API="127.0.0.1:1", _LAMBDA_TELEMETRY_LOG_FD=str(w)))
    finally:
        os.close(w)
        os.close(r)
    assert (p.returncode, p.stdout) == (0, "None False\n"), (p.stdout, p.stderr)


def test_a_concurrency_of_one_is_still_a_worker(monkeypatch):
    """AWS_LAMBDA_MAX_CONCURRENCY=1 is Lambda Managed Instances too: a forked worker (its log socket, its retries),
    not the plain loop."""
    from ddb2os import lambda_runtime
    calls = []
    monkeypatch.setattr(lambda_runtime, "_run_workers",
                        lambda address, workers: calls.append(("workers", workers)) or 0)
    monkeypatch.setattr(lambda_runtime, "_run", lambda address, concurrent: calls.append(("loop", concurrent)) or 0)
    monkeypatch.setenv("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:1")
    monkeypatch.setenv("AWS_LAMBDA_MAX_CONCURRENCY", "1")
    assert lambda_runtime.main() == 0
    monkeypatch.delenv("AWS_LAMBDA_MAX_CONCURRENCY")
    assert lambda_runtime.main() == 0
    assert calls == [("workers", 1), ("loop", False)]


def test_the_x_ray_cause_lists_each_file_once_in_order():
    from ddb2os.lambda_runtime import xray_cause_of
    # A frame in a file named to sort after any checkout's or interpreter's path, so that the stack's order is
    # never its sorted order wherever the tests run; json's decoder adds two frames of one file.
    scope = {"json": json}
    exec(compile("def parse():\n    return json.loads('{')\n", "/~zz/last.py", "exec"), scope)
    try:
        scope["parse"]()
    except ValueError as e:
        cause = json.loads(xray_cause_of(e))
    paths = [frame["path"] for frame in cause["exceptions"][0]["stack"]]
    assert "/~zz/last.py" in paths
    assert len(paths) > len(set(paths)) and paths != sorted(paths)
    assert cause["paths"] == sorted(set(paths))


def scripted_api(*connections, wait=10):
    """A Runtime API on a raw socket: for each connection in turn, the answers to its requests in order (the
    connection closes after the last; an answer b"" closes it unanswered). A connection not made within `wait`
    seconds ends it. Returns the address, the requests' first lines and the serving thread."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(wait)
    received = []

    def serve():
        with listener:
            for answers in connections:
                try:
                    conn, _ = listener.accept()
                except socket.timeout:
                    return
                with conn:
                    for answer in answers:
                        received.append(conn.recv(65536).split(b"\r\n", 1)[0])
                        conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return f"127.0.0.1:{listener.getsockname()[1]}", received, thread


def answer(body):
    return (b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: r\r\nContent-Length: %d\r\n\r\n" % len(body)) + body


def test_after_an_answer_that_cannot_be_read_the_next_request_is_on_a_new_connection():
    """A garbled answer leaves http.client's connection waiting for a response forever: the client drops it,
    so a worker's next ask (it asks again) can succeed."""
    from ddb2os.lambda_runtime import _Client
    address, received, _ = scripted_api([b"HELLO\r\n"], [answer(b"2")])
    client = _Client(address)
    with pytest.raises(http.client.BadStatusLine):
        client.next_invocation()
    assert client.next_invocation()[0] == b"2"
    assert received == [b"GET /2018-06-01/runtime/invocation/next HTTP/1.1"] * 2


def test_on_lambda_managed_instances_the_emulator_is_ready_once_every_worker_polls():
    """scripts/stack.py's LambdaEmulator in the emulator's Lambda Managed Instances mode: start() returns once each
    worker is connected to the Runtime API (the emulator listens before, and refuses an invocation no worker polls
    for). The runtime here takes 2 s to start (a sitecustomize), so that the emulator listens well before."""
    slow = pathlib.Path(tempfile.mkdtemp(prefix="ddb2os-slow-start-"))
    try:
        slow.chmod(0o755)  # the emulator runs the runtime as user 993 in this mode
        (slow / "sitecustomize.py").write_text("import time\ntime.sleep(2)\n")
        env = runtime_env(PYTHONPATH=os.pathsep.join(filter(None, [str(slow), os.environ.get("PYTHONPATH")])))
        with stack.lambda_emulator(RUNTIME, env=env, max_concurrency=2) as rie:
            assert rie._workers_connected()
            status, body = rie.invoke(b'{"Records": []}')
        assert (status, json.loads(body)) == (200, {"batchItemFailures": []}), body
    finally:
        shutil.rmtree(slow, ignore_errors=True)
