"""The Lambda Runtime API as ddb2os.lambda_runtime speaks it: the client, and an error as Lambda shows it.

Apart from ddb2os.lambda_runtime so that it needs nothing of ddb2os's compiled core: the package's
``__init__`` reports a core that cannot be loaded (a wheel for another Python or machine) to Lambda as
an initialization error through it (report_import_failure).
"""
from __future__ import annotations

import http.client
import json
import os
import platform
import sys
import time
import traceback
from typing import Any, Dict, List, MutableMapping, Optional, Tuple

_API = "/2018-06-01/runtime"
_XRAY_CAUSE_LIMIT = 1024 * 1024  # a larger cause is left out, as awslambdaric leaves it out


class RuntimeAPIError(RuntimeError):
    """The Runtime API answered something this loop cannot go on from (``status``: its HTTP status)."""

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.status = status


class _Client:
    """The Runtime API over one kept-alive HTTP/1.1 connection (reopened when it drops)."""

    def __init__(self, address: str) -> None:
        host, sep, port = address.rpartition(":")
        # ASCII digits of a port: str.isdigit() also takes "²", which int() does not.
        if not sep or not host or not (port.isascii() and port.isdigit() and len(port) <= 5 and 0 < int(port) < 65536):
            raise RuntimeAPIError(f"AWS_LAMBDA_RUNTIME_API must be host:port, not {address!r}")
        self._host, self._port = host.strip("[]"), int(port)
        self._conn: Optional[http.client.HTTPConnection] = None

    def _request(self, method: str, path: str, body: Optional[bytes] = None,
                 headers: Optional[Dict[str, str]] = None) -> Tuple[int, Dict[str, str], bytes]:
        # http.client closes the socket itself after a "Connection: close" answer and opens a new one
        # for the next request: that one is fresh, not kept alive.
        reused = self._conn is not None and self._conn.sock is not None
        try:
            try:
                r = self._send(method, path, body, headers or {})
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                # A kept-alive connection the API had closed before this request: it answered nothing,
                # so the request is sent once more, on a new connection. Any other failure (a fresh
                # connection's, or one after the answer began) is not retried: a POST could be
                # accepted twice, or an invocation half read.
                if not reused:
                    raise
                self._conn.close()
                self._conn = None
                r = self._send(method, path, body, headers or {})
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        except BaseException:
            self._conn.close()
            self._conn = None
            raise

    def _send(self, method: str, path: str, body: Optional[bytes], headers: Dict[str, str]) -> http.client.HTTPResponse:
        if self._conn is None:
            # No timeout: the next invocation is a long poll that lasts until there is one.
            self._conn = http.client.HTTPConnection(self._host, self._port, timeout=None)
        self._conn.request(method, path, body=body, headers=headers)
        return self._conn.getresponse()

    def next_invocation(self) -> Tuple[bytes, Dict[str, str]]:
        status, headers, body = self._request("GET", f"{_API}/invocation/next")
        if status != 200:
            raise RuntimeAPIError(f"GET {_API}/invocation/next answered {status}: {body[:200]!r}", status)
        return body, headers

    def _post(self, path: str, payload: bytes, headers: Optional[Dict[str, str]] = None) -> None:
        status, _, body = self._request("POST", path, payload, {"Content-Type": "application/json", **(headers or {})})
        if status >= 300:
            raise RuntimeAPIError(f"POST {path} answered {status}: {body[:200]!r}", status)

    # invocation_id: the /next answer's Lambda-Runtime-Invocation-Id, sent back with the invocation's answer
    # (as awslambdaric does) so the API can tell it from a late answer to an earlier attempt.
    def respond(self, request_id: str, payload: bytes, invocation_id: str = "") -> None:
        self._post(f"{_API}/invocation/{request_id}/response", payload, _invocation_header(invocation_id))

    def fail(self, request_id: str, error: Dict[str, Any], invocation_id: str = "", xray_cause: str = "") -> None:
        headers = _invocation_header(invocation_id)
        # X-Ray's record of the exception (xray_cause_of), as awslambdaric sends it: a header, so one
        # of 1 MiB or more is left out.
        if xray_cause and len(xray_cause.encode()) < _XRAY_CAUSE_LIMIT:
            headers["Lambda-Runtime-Function-XRay-Error-Cause"] = xray_cause
        self._post_error(f"{_API}/invocation/{request_id}/error", error, headers)

    def init_failed(self, error: Dict[str, Any]) -> None:
        self._post_error(f"{_API}/init/error", error)

    def _post_error(self, path: str, error: Dict[str, Any], headers: Optional[Dict[str, str]] = None) -> None:
        self._post(path, json.dumps(error).encode(),
                   {"Lambda-Runtime-Function-Error-Type": error["errorType"], **(headers or {})})


def _invocation_header(invocation_id: str) -> Dict[str, str]:
    return {"Lambda-Runtime-Invocation-Id": invocation_id} if invocation_id else {}


def _frames(e: BaseException) -> List[traceback.FrameSummary]:
    """The exception's traceback from the handler on: the loop's own frames before it are left out, as
    awslambdaric leaves out its bootstrap's."""
    frames = list(traceback.extract_tb(e.__traceback__))
    for i, frame in enumerate(frames):
        if os.path.basename(frame.filename) not in ("lambda_runtime.py", "_runtime_api.py"):
            return frames[i:]
    return frames


def _error_of(e: BaseException, request_id: str = "") -> Dict[str, Any]:
    """What Lambda shows for an exception, as awslambdaric shapes it. ddb2os's errors never hold a
    secret (README, Security), so the message is passed on whole. The stack is formatted from plain
    (file, line, name, text) tuples, as awslambdaric's: from Python 3.13 on, a FrameSummary's would add
    lines of carets under each call."""
    frames = [(f.filename, f.lineno, f.name, f.line) for f in _frames(e)]
    return {"errorMessage": str(e), "errorType": type(e).__name__, "requestId": request_id,
            "stackTrace": traceback.format_list(frames)}


def xray_cause_of(e: BaseException) -> str:
    """The exception as X-Ray records a segment's fault (the Lambda-Runtime-Function-XRay-Error-Cause
    header), in awslambdaric's shape: the working directory, the exception with its stack, the files."""
    stack = [{"label": f.name, "path": f.filename, "line": f.lineno} for f in _frames(e)]
    return json.dumps({"working_directory": os.getcwd(),
                       "exceptions": [{"message": str(e), "type": type(e).__name__, "stack": stack}],
                       "paths": sorted({f["path"] for f in stack})})


# Lambda's log settings, read as its own Python runtime reads them (awslambdaric 4.2.2):
# AWS_LAMBDA_LOG_FORMAT (JSON, else text), AWS_LAMBDA_LOG_LEVEL (the least level of the application's
# records written; errors always are) and _LAMBDA_TELEMETRY_LOG_FD (a descriptor taking one frame per
# record, so a record of several lines is one CloudWatch event, with its level).
_LEVELS = {"TRACE": 10, "DEBUG": 10, "INFO": 20, "WARN": 30, "WARNING": 30, "ERROR": 40, "FATAL": 50, "CRITICAL": 50}
_ERROR, _WARNING = 40, 30
# A frame's type: 0xA55A0002 (JSON) or 0xA55A0003 (text), with the level in bits 2-4 (DEBUG 0x08 ... CRITICAL
# 0x18); the runtime writes warnings and errors only.
_FRAME_LEVEL_BITS = {_WARNING: 0x10, _ERROR: 0x14}
_TIMESTAMP = "%Y-%m-%dT%H:%M:%SZ"


class LogSink:
    """Where the runtime's own records go: one line each on stderr, or one frame each on Lambda's telemetry
    descriptor; as JSON objects in the shape awslambdaric writes when the function's log format is JSON.
    env: the environment, from which _LAMBDA_TELEMETRY_LOG_FD is taken out (as awslambdaric does, so that
    no child process writes frames to it)."""

    def __init__(self, env: MutableMapping[str, str]) -> None:
        self.json = env.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON"
        level = env.get("AWS_LAMBDA_LOG_LEVEL", "")
        self.level = _LEVELS.get(level.upper(), 0)
        # awslambdaric's frames of a warning carry its level only in JSON or with a level set; an error's, always.
        self._leveled = self.json or bool(level)
        self._frames: Optional[Any] = None
        fd = env.pop("_LAMBDA_TELEMETRY_LOG_FD", None)
        if fd is not None:
            try:
                self._frames = os.fdopen(int(fd), "wb", 0)
            except Exception as e:  # not a number, out of range, not open
                self.warning(f"_LAMBDA_TELEMETRY_LOG_FD={fd!r} is not a descriptor to write to ({e}): "
                             "the runtime's records go to stderr")

    def _write(self, level: int, text: str) -> None:
        if self._frames is not None:
            data = text.encode("utf-8", "backslashreplace")
            kind = (0xA55A0002 if self.json else 0xA55A0003) | (
                _FRAME_LEVEL_BITS[level] if self._leveled or level == _ERROR else 0)
            frame = (kind.to_bytes(4, "big") + len(data).to_bytes(4, "big")
                     + (time.time_ns() // 1000).to_bytes(8, "big") + data)
            try:
                view = memoryview(frame)
                while view:
                    written = self._frames.write(view)
                    if written is None:  # a non-blocking descriptor that is full: not waited on
                        raise BlockingIOError("the telemetry descriptor takes no more")
                    view = view[written:]
                return
            except OSError:  # a broken descriptor: this record and the next go to stderr rather than nowhere
                self.close()
        # CloudWatch makes a line of stderr an event: the record's lines are kept together with \r,
        # as awslambdaric writes its errors (to stdout). A stderr that is gone loses the record, never
        # the answer that the caller posts next.
        try:
            sys.stderr.write(text.rstrip("\n").replace("\n", "\r") + "\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass

    def close(self) -> None:
        """Stops writing frames (records go to stderr): the telemetry descriptor is closed. A Lambda
        Managed Instances worker closes its copy, so that no two processes write frames to it."""
        frames, self._frames = self._frames, None
        if frames is not None:
            try:
                frames.close()
            except OSError:
                pass

    def _json(self, record: Dict[str, Any]) -> str:
        return json.dumps({"timestamp": time.strftime(_TIMESTAMP, time.gmtime()), **record})

    def error(self, error: Dict[str, Any], text: str) -> None:
        """An error as Lambda shows it (_error_of's shape): in JSON, awslambdaric's record of a failed
        invocation; in text, the given line."""
        self._write(_ERROR, self._json({"level": "ERROR", **error}) if self.json else text)

    def warning(self, message: str, request_id: str = "", logger: str = "ddb2os.lambda_runtime") -> None:
        """A warning, unless AWS_LAMBDA_LOG_LEVEL asks for errors only; in JSON, in the shape of
        awslambdaric's records of Python's logging."""
        if self.level > _WARNING:
            return
        if self.json:
            self._write(_WARNING, self._json({"level": "WARNING", "message": message, "logger": logger,
                                              "requestId": request_id}) + "\n")
        else:
            self._write(_WARNING, f"[WARN] {logger}: {message}")


_log_sink: Optional[LogSink] = None


def log_sink() -> LogSink:
    """The process's LogSink, made from os.environ the first time."""
    global _log_sink
    if _log_sink is None:
        _log_sink = LogSink(os.environ)
    return _log_sink


def _error_without_stack(message: str, error_type: str) -> Dict[str, Any]:
    """An error in _error_of's shape for a failure that is not an exception's (no request, no stack)."""
    return {"errorMessage": message, "errorType": error_type, "requestId": "", "stackTrace": []}


def _log_failure(message: str, e: BaseException) -> None:
    """The runtime's own failure to go on (the Runtime API gone): an error record without a stack."""
    text = f"{message}: {e}"
    log_sink().error(_error_without_stack(text, type(e).__name__), f"ddb2os.lambda_runtime: {text}")


def _log_exception(e: BaseException, request_id: str = "") -> None:
    """An exception in the log: in text, one line (the traceback's lines joined, as awslambdaric joins
    them), with Python's whole traceback and the request's id; in JSON, _error_of's fields."""
    where = f" (request {request_id})" if request_id else ""
    text = "".join(traceback.format_exception(type(e), e, e.__traceback__))
    log_sink().error(_error_of(e, request_id), f"[ERROR] {type(e).__name__}{where}: {text}")


def _command_line() -> Optional[List[str]]:
    """The interpreter's own command line: sys.orig_argv, or /proc/self/cmdline before Python 3.10."""
    argv = getattr(sys, "orig_argv", None)
    if argv is not None:
        return list(argv)
    try:
        with open("/proc/self/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0")[:-1]]
    except OSError:
        return None


def _module_run(argv: List[str]) -> Optional[str]:
    """The module a Python command line runs with -m, or None (a script, -c, stdin). Options end at the
    first -m, -c or script name; short ones combine (-Im mod, -um), and -W, -X and
    --check-hash-based-pycs take a value."""
    args = iter(argv[1:])
    for arg in args:
        if arg.startswith("--"):
            if arg == "--check-hash-based-pycs":
                next(args, None)
            continue
        if arg == "-" or not arg.startswith("-"):
            return None
        for i, flag in enumerate(arg[1:], 1):
            rest = arg[i + 1:]
            if flag == "c":
                return None
            if flag == "m":
                return rest or next(args, None)
            if flag in "WX":
                if not rest:
                    next(args, None)
                break
    return None


def started_as_runtime(argv: Optional[List[str]] = None) -> bool:
    """Whether this process is ``python3 -m ddb2os.lambda_runtime`` under a Runtime API. argv: the
    interpreter's own command line (default: _command_line())."""
    if not os.environ.get("AWS_LAMBDA_RUNTIME_API"):
        return False
    argv = _command_line() if argv is None else argv
    return argv is not None and _module_run(argv) == f"{__package__}.lambda_runtime"


def core_import_error(e: ImportError) -> ImportError:
    """ddb2os's compiled core not found, in words that say what to install (Python's own, "cannot import
    name '_core' from partially initialized module", suggests a circular import). Any other failure to
    load it (a missing shared library) is e, as its message says what is wrong."""
    if not isinstance(e, ModuleNotFoundError) or e.name != f"{__package__}._core":
        return e
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        found = ", ".join(sorted(name for name in os.listdir(here) if name.startswith("_core."))) or "none"
    except OSError:  # not a directory (a zip archive on the path), or not readable
        found = "not listed"
    return ImportError(
        f"ddb2os's compiled core ({e.name}) is not in {here} for {sys.implementation.name} "
        f"{sys.version_info[0]}.{sys.version_info[1]} on {platform.machine()} (found: {found}): "
        "install ddb2os built for the Python and the architecture that run it", name=e.name)


def report_import_failure(e: BaseException) -> None:
    """ddb2os's compiled core could not be loaded (missing, built for another Python or machine, or a
    shared library it needs missing): told to the Runtime API as an initialization error, as Lambda's own runtime tells a
    handler module it cannot import, when this process is the runtime. The caller raises e on."""
    if not started_as_runtime():
        return
    error = _error_without_stack(f"Unable to import module 'ddb2os': {e}", "Runtime.ImportModuleError")
    # Writing a record never raises (LogSink falls back to stderr, and past it drops the record).
    log_sink().error(error, f"[ERROR] Runtime.ImportModuleError: {error['errorMessage']}")
    try:
        _Client(os.environ["AWS_LAMBDA_RUNTIME_API"]).init_failed(error)
    except Exception as posted:  # whatever happens here, the caller's ImportError is what is raised
        _log_failure("the Runtime API failed", posted)
