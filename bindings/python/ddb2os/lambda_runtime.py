"""A Lambda runtime for ``ddb2os.handler`` that hands it each event's raw bytes.

Lambda's Python runtime (awslambdaric) parses every event with simplejson before the handler sees it,
and that costs more than everything ddb2os then does with the dict: on this project's medium stream
events the parse runs at about 60 MB/s, ddb2os from the dict at 250-460 MB/s and from the raw bytes at
about 650 MB/s (README, The Lambda handler). This loop speaks the Lambda Runtime API itself and gives the
engine the bytes, so the event is read once, in C++.

Run it as the function's runtime::

    python3 -m ddb2os.lambda_runtime

- a container image: ``ENTRYPOINT ["python3", "-m", "ddb2os.lambda_runtime"]``;
- the managed Python runtime: an executable wrapper script named by ``AWS_LAMBDA_EXEC_WRAPPER`` that
  puts ``$LAMBDA_TASK_ROOT`` and the layers' ``/opt/python`` directories on ``PYTHONPATH`` and runs
  ``exec "$1" -m ddb2os.lambda_runtime`` (README has it).

The runtime's own records (errors, warnings) follow the function's log format and level, and go to
Lambda's telemetry descriptor when it gives one, as awslambdaric's do (_runtime_api.LogSink).

On Lambda Managed Instances (``AWS_LAMBDA_MAX_CONCURRENCY`` set), one environment takes that many
invocations at once: the loop forks as many workers, each with its own connection and engine, as Lambda's
own Python runtime does; when one exits, the others are stopped and the runtime exits. An answer the API
no longer takes (410 Gone, after a timeout) is logged, and the loop goes on.

It runs ddb2os.handler and nothing else. A function that names another handler (a container image's
CMD, given to this module as its argument, or the managed runtime's handler setting, ``_HANDLER``)
fails to start with an error naming it, rather than running ddb2os.handler in its place.

The configuration is ddb2os.handler's (environment variables), read and checked before the first
event: a bad setting is reported to Lambda as an initialization error naming it, and the process
exits. An event the handler raises on is reported as that invocation's error (Lambda retries the
batch); the loop goes on with the next one. Responses are what ddb2os.handler returns
(``{"batchItemFailures": [...]}``).
"""
from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import sys
import time
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

from ._errors import OptionError
from ._handler import _get_engine, handler
from ._runtime_api import RuntimeAPIError, _Client, _error_of, _log_exception, _log_failure, log_sink, xray_cause_of

__all__ = ["LambdaContext", "main"]


class LambdaContext:
    """The context a handler gets, from the invocation's headers and the function's environment, with
    the attributes of the one Lambda's Python runtime passes. ``client_context`` and ``identity`` are
    always None: they come with a mobile SDK's invocation, never an event source mapping's."""

    def __init__(self, request_id: str, deadline_ms: int, invoked_function_arn: str,
                 env: Optional[Mapping[str, str]] = None, tenant_id: Optional[str] = None) -> None:
        env = os.environ if env is None else env
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_function_arn
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION", "")
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self.tenant_id = tenant_id
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def __repr__(self) -> str:
        return (f"LambdaContext(aws_request_id={self.aws_request_id!r}, function_name={self.function_name!r}, "
                f"remaining_ms={self.get_remaining_time_in_millis()})")


# The names this loop answers to. The Runtime Interface Emulator takes the last word of the command it
# runs for the handler, so under it _HANDLER is this module's own name.
_OWN_NAMES = ("ddb2os.handler", "ddb2os._handler.handler", "ddb2os.lambda_runtime")


def check_handler_setting(argv: Sequence[str], env: Mapping[str, str]) -> None:
    """Raises OptionError when the function names a handler other than ddb2os.handler: a container
    image's CMD comes as this module's first argument (Lambda appends it to the ENTRYPOINT), the managed
    runtime's handler setting as ``_HANDLER``; the argument wins, as it does for Lambda's own runtime."""
    if len(argv) > 1:
        name, where = argv[1], "the runtime's argument (a container image's CMD)"
    else:
        name, where = env.get("_HANDLER", ""), "_HANDLER (the function's handler setting)"
    if name and name not in _OWN_NAMES:
        # No handler setting holds a space or starts with "/": the emulator's last word of a command that does.
        hint = (" (the Runtime Interface Emulator takes the last word of its command for the handler: set "
                "_HANDLER=ddb2os.handler)" if where.startswith("_HANDLER") and (name.startswith("/") or
                                                                                any(c.isspace() for c in name)) else "")
        raise OptionError("option.invalid", "",
                          f"{where} names the handler {name!r}, and ddb2os.lambda_runtime runs ddb2os.handler only: "
                          f"set it to ddb2os.handler, or run another handler on Lambda's own Python runtime{hint}")


def check_initialization_type(env: Mapping[str, str]) -> None:
    """Raises OptionError under SnapStart (``AWS_LAMBDA_INITIALIZATION_TYPE=snap-start``): this loop does not
    speak its part of the Runtime API (``/restore/next``), nor make its engine anew after a restore, so the
    version fails to publish rather than serve from a snapshot's connections. ddb2os.handler on Lambda's
    own Python runtime makes its engine at the first invocation, after the restore."""
    if env.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start":
        raise OptionError("option.invalid", "",
                          "ddb2os.lambda_runtime does not support SnapStart (AWS_LAMBDA_INITIALIZATION_TYPE is "
                          "snap-start): turn SnapStart off, or set the function's handler to ddb2os.handler on "
                          "Lambda's own Python runtime")


def _next_invocation(client: _Client, concurrent: bool) -> Tuple[bytes, Dict[str, str]]:
    """The next invocation. A worker of several (Lambda Managed Instances) asks again after a failure, with
    a growing pause, as awslambdaric's workers do; a single loop exits on it, as the Runtime API asks."""
    delays = (0.1, 0.2, 0.4, 0.8, 1.6) if concurrent else ()
    for delay in delays:
        try:
            return client.next_invocation()
        except (RuntimeAPIError, OSError, http.client.HTTPException) as e:
            log_sink().warning(f"asking for the next invocation failed ({e}); asking again in {delay} s")
            time.sleep(delay)
    return client.next_invocation()


def _answer(post: Callable[[], None], request_id: str, concurrent: bool) -> None:
    """Sends an invocation's answer. 410 Gone is an answer the API no longer wants (the invocation timed
    out; Lambda Managed Instances let its handler run on): logged, and the loop goes on. A worker of
    several logs any other failure too (awslambdaric's workers do), rather than leaving its slot empty."""
    try:
        post()
    except (RuntimeAPIError, OSError, http.client.HTTPException) as e:
        if not (concurrent or getattr(e, "status", None) == 410):
            raise
        log_sink().warning(f"the answer to request {request_id} was not taken: {e}", request_id)


def serve(client: _Client, max_invocations: Optional[int] = None, argv: Sequence[str] = (),
          env: Optional[Mapping[str, str]] = None, concurrent: bool = False) -> int:
    """Handles invocations until the Runtime API goes away (or max_invocations, for tests). argv and env
    (default: os.environ) name the function's handler (check_handler_setting). concurrent: this loop is
    one of several workers of a Lambda Managed Instances environment (main())."""
    try:
        env = os.environ if env is None else env
        check_handler_setting(argv, env)
        check_initialization_type(env)
        _get_engine()  # the configuration, checked before the first event
    except Exception as e:
        _log_exception(e)
        try:
            client.init_failed(_error_of(e))
        except RuntimeAPIError as posted:
            # Each worker starts on its own, and the API refuses (403) every start's failure after the first.
            if not (concurrent and posted.status == 403):
                raise
        return 1
    done = 0
    while max_invocations is None or done < max_invocations:
        event, headers = _next_invocation(client, concurrent)
        request_id = headers.get("lambda-runtime-aws-request-id", "")
        if not request_id:
            raise RuntimeAPIError("the next invocation came without Lambda-Runtime-Aws-Request-Id")
        trace = headers.get("lambda-runtime-trace-id")
        if trace:
            os.environ["_X_AMZN_TRACE_ID"] = trace
        else:
            os.environ.pop("_X_AMZN_TRACE_ID", None)
        try:
            deadline_ms = int(headers.get("lambda-runtime-deadline-ms", ""))
        except ValueError:
            deadline_ms = int(time.time() * 1000) + 60_000  # as ddb2os.handler assumes without a context
        context = LambdaContext(request_id, deadline_ms, headers.get("lambda-runtime-invoked-function-arn", ""),
                                tenant_id=headers.get("lambda-runtime-aws-tenant-id"))
        invocation_id = headers.get("lambda-runtime-invocation-id", "")
        try:
            result = handler(event, context)
        except Exception as e:
            _log_exception(e, request_id)
            error, cause = _error_of(e, request_id), xray_cause_of(e)
            _answer(lambda: client.fail(request_id, error, invocation_id, cause), request_id, concurrent)
        else:
            payload = json.dumps(result).encode()
            _answer(lambda: client.respond(request_id, payload, invocation_id), request_id, concurrent)
        done += 1
    return 0


def max_concurrency(env: Mapping[str, str]) -> Optional[int]:
    """AWS_LAMBDA_MAX_CONCURRENCY: how many invocations a Lambda Managed Instances environment hands its
    runtime at once (None: a plain Lambda environment, one at a time)."""
    text = env.get("AWS_LAMBDA_MAX_CONCURRENCY")
    if text is None:
        return None
    # Without leading zeros, its length first: int() refuses text of more than 4300 digits, zeros
    # included, in words of its own (Python 3.11 on).
    digits = text.lstrip("0") if text.isascii() and text.isdigit() else ""
    if not digits or len(digits) > 5 or not 1 <= int(digits) <= 10_000:
        raise OptionError("option.invalid", "", f"AWS_LAMBDA_MAX_CONCURRENCY must be a number from 1 to 10000, "
                          f"not {text!r}")
    return int(digits)


def _redirect_output(socket_path: Optional[str]) -> None:
    """A worker's stdout and stderr to the log socket Lambda Managed Instances give for each worker
    (_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET), as awslambdaric's workers do; unset, they stay as they are."""
    if not socket_path:
        return
    for fd in (sys.stdout.fileno(), sys.stderr.fileno()):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(socket_path)
            os.dup2(s.fileno(), fd)


def _run(address: str, concurrent: bool) -> int:
    try:
        return serve(_Client(address), argv=sys.argv, concurrent=concurrent)
    except KeyboardInterrupt:
        return 130
    except (RuntimeAPIError, OSError, http.client.HTTPException) as e:
        _log_failure(f"the Runtime API at {address} failed", e)
        return 1
    except Exception as e:  # a bug of the loop's: one record, as the function's others are
        _log_exception(e)
        return 1


def _run_workers(address: str, workers: int) -> int:
    """Lambda Managed Instances: one forked worker per invocation the environment takes at once, each
    with its own connection and engine (made after the fork: no connection or thread is shared), as
    awslambdaric forks its workers. When one exits (a crash, the out-of-memory killer, the Runtime API
    gone), the others are stopped and this returns its status: a worker short, the environment would go
    on taking invocations for a slot nobody polls, which fail. A SIGTERM (the environment's shutdown)
    goes on to every worker. Returns the largest exit status (1 for a worker ended by a signal)."""
    sys.stdout.flush()
    sys.stderr.flush()
    alive = set()
    stopping = False

    def stop(signum: int, frame: Any = None) -> None:
        nonlocal stopping
        stopping = True
        for pid in alive:  # not reaped yet, so no pid here can be another process's
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    # Blocked while forking: a SIGTERM then waits for the handler, instead of ending this process
    # with workers already running. Each worker takes the default action back.
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        for _ in range(workers):
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    signal.signal(signal.SIGTERM, signal.SIG_DFL)
                    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
                    # Frames of several processes on one descriptor could interleave: a worker's
                    # records go to its own output, as awslambdaric's workers' do.
                    log_sink().close()
                    _redirect_output(os.environ.get("_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET"))
                    code = _run(address, concurrent=True)
                except BaseException as e:  # a bug of the loop's: in the log as the function's records are
                    _log_exception(e)
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(code)
            alive.add(pid)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        code = 0
        while alive:
            pid, status = os.wait()
            if pid not in alive:
                continue
            alive.discard(pid)
            exit_code = os.waitstatus_to_exitcode(status)
            code = max(code, exit_code if exit_code >= 0 else 1)
            if not stopping:
                log_sink().warning(f"worker {pid} exited with status {exit_code}; stopping the other {len(alive)}")
                stop(signal.SIGTERM)
        return code
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def main() -> int:
    """No options: everything is in the environment, as for ddb2os.handler. An argument is the
    handler a container image's CMD names, which must be ddb2os.handler (check_handler_setting)."""
    log_sink()  # the log settings read, and the telemetry descriptor taken, before any worker or handler runs
    address = os.environ.get("AWS_LAMBDA_RUNTIME_API", "")
    if not address:
        print("ddb2os.lambda_runtime: AWS_LAMBDA_RUNTIME_API is not set: this runs as a Lambda function's "
              "runtime (or under the Lambda Runtime Interface Emulator), not by hand", file=sys.stderr)
        return 2
    try:
        workers = max_concurrency(os.environ)
    except OptionError as e:
        _log_exception(e)
        try:
            _Client(address).init_failed(_error_of(e))
        except (RuntimeAPIError, OSError, http.client.HTTPException) as posted:
            _log_failure(f"the Runtime API at {address} failed", posted)
        return 1
    return _run(address, concurrent=False) if workers is None else _run_workers(address, workers)


if __name__ == "__main__":
    sys.exit(main())
