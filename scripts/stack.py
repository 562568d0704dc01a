#!/usr/bin/env python3
"""The real stack for ddb2os's tests and demo: OpenSearch and DynamoDB Local on loopback.

Both servers come from Maven Central (fetched with Maven's own client through
scripts/stack/pom.xml) into a cache, ``.cache/stack/`` under the repository by default. A second
start downloads nothing and does not even run Maven. If an artifact cannot be fetched the error is
Maven's own, raised as :class:`StackError`; there is no fake server to fall back on.

Library use (standard library only)::

    import stack
    with stack.opensearch() as os_, stack.dynamodb_local() as ddb:
        os_.url            # "http://127.0.0.1:PORT"
        ddb.endpoint_url   # "http://127.0.0.1:PORT"
        os_.stop(); os_.start()   # same port, same data: the node comes back with its indices

Command line::

    python3 scripts/stack.py fetch     # download into the cache (nothing to do when cached)
    python3 scripts/stack.py up        # start both, print their URLs, stop both on Ctrl-C/SIGTERM
    python3 scripts/stack.py reap      # kill servers left behind by a process that was killed

Processes are never left behind: each server runs in its own process group, is stopped by
group (SIGTERM, then SIGKILL), is stopped at interpreter exit (atexit), gets SIGTERM from the kernel
if the process that started it dies (PR_SET_PDEATHSIG; when started from the main thread), and is recorded in ``.cache/stack/run/`` so
that the next start (or ``reap``) kills any straggler whose owner is gone.

OpenSearch refuses to run as root. When started by root, the node runs as the unprivileged system
user ``ddb2os-stack`` (created with ``useradd`` if missing), with config, data and logs in a
temporary directory that user owns.

Environment knobs (all optional):
  DDB2OS_STACK_CACHE            cache directory (default: <repo>/.cache/stack)
  DDB2OS_OPENSEARCH_VERSION     OpenSearch 2.x version (default in scripts/stack/pom.xml)
  DDB2OS_DYNAMODB_LOCAL_VERSION DynamoDB Local version (default in scripts/stack/pom.xml)
  DDB2OS_OPENSEARCH_HEAP        OpenSearch heap, e.g. 512m (default)
  DDB2OS_DYNAMODB_LOCAL_HEAP    DynamoDB Local max heap, e.g. 256m (default)
  DDB2OS_STACK_START_TIMEOUT    seconds to wait for a server to become healthy (default 240)
  DDB2OS_STACK_KEEP=1           keep the servers' temporary directories (logs) after stopping
  DDB2OS_STACK_USER             the unprivileged user OpenSearch runs as under root
  JAVA_HOME                     the Java (17+) to use; default: `java` on PATH
"""
from __future__ import annotations

import argparse
import atexit
import contextlib
import ctypes
import fcntl
import json
import os
import pathlib
import pwd
import re
import shlex
import shutil
import signal
import site
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
from typing import ContextManager, Iterator, Optional

ROOT = pathlib.Path(__file__).resolve().parents[1]
POM = ROOT / "scripts" / "stack" / "pom.xml"
CACHE = pathlib.Path(os.environ.get("DDB2OS_STACK_CACHE") or ROOT / ".cache" / "stack")
RUN_DIR = CACHE / "run"

SERVICE_USER = os.environ.get("DDB2OS_STACK_USER", "ddb2os-stack")
START_TIMEOUT = float(os.environ.get("DDB2OS_STACK_START_TIMEOUT", "240"))
STOP_TIMEOUT = 30.0
OPENSEARCH_HEAP = os.environ.get("DDB2OS_OPENSEARCH_HEAP", "512m")
DYNAMODB_LOCAL_HEAP = os.environ.get("DDB2OS_DYNAMODB_LOCAL_HEAP", "256m")
OPENSEARCH_GROUP = "org.opensearch.distribution.integ-test-zip"
DYNAMODB_LOCAL_MAIN = "software.amazon.dynamodb.services.local.main.ServerRunner"
LOOPBACK = "127.0.0.1"

# urllib without proxies: a proxy from the environment must never see loopback traffic.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class StackError(RuntimeError):
    """A server could not be fetched, started or stopped. The message says exactly why."""


def _log(msg: str) -> None:
    print(f"stack: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Versions and fetching
# ---------------------------------------------------------------------------------------------

def _pom_property(name: str) -> str:
    m = re.search(rf"<{re.escape(name)}>([^<]+)</{re.escape(name)}>", POM.read_text())
    if not m:
        raise StackError(f"{POM} has no <{name}> property")
    return m.group(1).strip()


def opensearch_version() -> str:
    return os.environ.get("DDB2OS_OPENSEARCH_VERSION") or _pom_property("opensearch.version")


def dynamodb_local_version() -> str:
    return os.environ.get("DDB2OS_DYNAMODB_LOCAL_VERSION") or _pom_property("dynamodb-local.version")


def opensearch_home(version: Optional[str] = None) -> pathlib.Path:
    version = version or opensearch_version()
    return CACHE / f"opensearch-{version}" / f"opensearch-{version}"


def dynamodb_local_dir(version: Optional[str] = None) -> pathlib.Path:
    return CACHE / f"dynamodb-local-{version or dynamodb_local_version()}"


_COMPLETE = ".ddb2os-complete"


def _is_fetched(os_version: str, ddb_version: str) -> bool:
    return ((opensearch_home(os_version).parent / _COMPLETE).exists()
            and (dynamodb_local_dir(ddb_version) / _COMPLETE).exists())


@contextlib.contextmanager
def _cache_lock() -> Iterator[None]:
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _mvn() -> str:
    mvn = shutil.which("mvn")
    if not mvn:
        raise StackError("Maven (`mvn`) is not on PATH: install it (Debian: apt-get install maven)")
    return mvn


def _extract_zip(zip_path: pathlib.Path, dest: pathlib.Path) -> None:
    """Unzip keeping the Unix permission bits (zipfile drops them); everything stays world-readable
    so that the unprivileged service user can run it."""
    with zipfile.ZipFile(zip_path) as z:
        for info in z.infolist():
            target = dest / info.filename
            if not str(target.resolve()).startswith(str(dest.resolve())):
                raise StackError(f"{zip_path}: unsafe path {info.filename!r}")
            z.extract(info, dest)
            mode = (info.external_attr >> 16) & 0o7777
            if info.is_dir():
                os.chmod(target, 0o755)
            else:
                os.chmod(target, (mode or 0o644) | 0o444 | (0o111 if mode & 0o100 else 0))


def fetch(opensearch_version_: Optional[str] = None, dynamodb_local_version_: Optional[str] = None,
          quiet: bool = False) -> dict:
    """Make sure OpenSearch and DynamoDB Local are in the cache; returns where they are.

    Runs Maven (`dependency:copy-dependencies` on scripts/stack/pom.xml) only when something is
    missing. Raises StackError with Maven's exact error if an artifact cannot be fetched."""
    os_v = opensearch_version_ or opensearch_version()
    ddb_v = dynamodb_local_version_ or dynamodb_local_version()
    result = {"opensearch_version": os_v, "opensearch_home": str(opensearch_home(os_v)),
              "dynamodb_local_version": ddb_v, "dynamodb_local_dir": str(dynamodb_local_dir(ddb_v)),
              "downloaded": False}
    if _is_fetched(os_v, ddb_v):
        return result
    with _cache_lock():
        if _is_fetched(os_v, ddb_v):
            return result
        if not quiet:
            _log(f"fetching OpenSearch {os_v} and DynamoDB Local {ddb_v} from Maven Central ...")
        t0 = time.monotonic()
        staging = pathlib.Path(tempfile.mkdtemp(prefix="fetch-", dir=CACHE))
        try:
            out = staging / "artifacts"
            cmd = [_mvn(), "-B", "-ntp", "-f", str(POM), "dependency:copy-dependencies",
                   f"-Dopensearch.version={os_v}", f"-Ddynamodb-local.version={ddb_v}",
                   f"-DoutputDirectory={out}"]
            proc = subprocess.run(cmd, cwd=POM.parent, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            (CACHE / "mvn-fetch.log").write_text(proc.stdout)
            if proc.returncode != 0:
                errors = [l for l in proc.stdout.splitlines() if l.startswith("[ERROR]")]
                raise StackError(
                    "blocked: Maven could not fetch the stack's artifacts "
                    f"(exit {proc.returncode}; full log: {CACHE / 'mvn-fetch.log'})\n"
                    f"$ {' '.join(cmd)}\n" + "\n".join(errors or proc.stdout.splitlines()[-30:]))
            zips = sorted(out.glob(f"opensearch-{os_v}.zip"))
            if len(zips) != 1:
                raise StackError(f"Maven did not produce opensearch-{os_v}.zip in {out}: "
                                 f"{sorted(p.name for p in out.iterdir())}")
            # OpenSearch: unpack, then move into place in one rename.
            os_dir = opensearch_home(os_v).parent
            os_stage = staging / "opensearch"
            os_stage.mkdir()
            _extract_zip(zips[0], os_stage)
            if not (os_stage / f"opensearch-{os_v}" / "bin" / "opensearch").exists():
                raise StackError(f"{zips[0]} does not contain opensearch-{os_v}/bin/opensearch")
            zips[0].unlink()
            (os_stage / _COMPLETE).write_text(f"{os_v}\n")
            shutil.rmtree(os_dir, ignore_errors=True)
            os_stage.rename(os_dir)
            # DynamoDB Local: every other artifact (jars and the sqlite4java native library).
            ddb_dir = dynamodb_local_dir(ddb_v)
            ddb_stage = staging / "dynamodb-local"
            (ddb_stage / "lib").mkdir(parents=True)
            for p in out.iterdir():
                if p.name.startswith("opensearch-"):
                    continue
                p.chmod(0o644)
                p.rename(ddb_stage / "lib" / p.name)
            if not list((ddb_stage / "lib").glob("DynamoDBLocal-*.jar")):
                raise StackError(f"Maven did not produce DynamoDBLocal-{ddb_v}.jar")
            if not list((ddb_stage / "lib").glob("libsqlite4java-linux-amd64*.so")):
                raise StackError("Maven did not produce libsqlite4java-linux-amd64.so")
            (ddb_stage / _COMPLETE).write_text(f"{ddb_v}\n")
            shutil.rmtree(ddb_dir, ignore_errors=True)
            ddb_stage.rename(ddb_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        result["downloaded"] = True
        result["seconds"] = round(time.monotonic() - t0, 1)
        if not quiet:
            _log(f"fetched in {result['seconds']} s into {CACHE}")
        return result


# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------

def _java_home() -> pathlib.Path:
    if os.environ.get("JAVA_HOME") and (pathlib.Path(os.environ["JAVA_HOME"]) / "bin" / "java").exists():
        return pathlib.Path(os.environ["JAVA_HOME"])
    java = shutil.which("java")
    if not java:
        raise StackError("no Java: set JAVA_HOME or put a Java 17+ `java` on PATH "
                         "(Debian: apt-get install openjdk-17-jre-headless)")
    return pathlib.Path(os.path.realpath(java)).parent.parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def _free_ports(n: int) -> list:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((LOOPBACK, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _tail(path: pathlib.Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"({path}: not there)"
    return "\n".join(text[-lines:])


_ERROR_LINE = re.compile(r"\b(ERROR|FATAL|SEVERE)\b|Exception\b|^Caused by|^Error:")


def _error_lines(paths: list, limit: int = 12) -> list:
    """The lines of the logs that say what went wrong (not stack frames), at most `limit`."""
    found = []
    for path in paths:
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            if _ERROR_LINE.search(line) and not line.lstrip().startswith("at ") and line not in found:
                found.append(line[:400])
    return found[:limit]


_libc = None


def _set_pdeathsig() -> None:
    """In the child, after the uid change: SIGTERM when the starting thread's process dies."""
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)
        _libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:  # best effort; atexit and the run registry still apply
        pass


def _proc_start_time(pid: int) -> Optional[str]:
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _group_alive(pgid: int, proc: Optional[subprocess.Popen] = None) -> bool:
    """Whether any process of the group is still running (our own child is reaped first, so that a
    zombie does not count)."""
    if proc is not None:
        proc.poll()
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _kill_group(pgid: int, timeout: float, proc: Optional[subprocess.Popen] = None) -> None:
    """SIGTERM the process group, wait, then SIGKILL whatever is left."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _group_alive(pgid, proc):
                return
            time.sleep(0.1)
    if _group_alive(pgid, proc):
        raise StackError(f"process group {pgid} survived SIGKILL")


def reap() -> int:
    """Kill servers recorded in the run registry whose starting process is gone. Returns how many."""
    if not RUN_DIR.is_dir():
        return 0
    killed = 0
    for f in RUN_DIR.glob("*.json"):
        try:
            rec = json.loads(f.read_text())
        except (OSError, ValueError):
            f.unlink(missing_ok=True)
            continue
        if _proc_start_time(rec["owner"]) == rec["owner_start"]:
            continue  # its owner is alive and responsible for it
        pgid = rec["pgid"]
        try:
            cmdline = pathlib.Path(f"/proc/{pgid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            cmdline = ""
        if _proc_start_time(pgid) == rec.get("start") and rec["marker"] in cmdline:
            _log(f"killing straggler {rec['name']} (process group {pgid}) left by dead process {rec['owner']}")
            with contextlib.suppress(StackError):
                _kill_group(pgid, 10.0)
            killed += 1
        if rec.get("tmpdir") and not os.environ.get("DDB2OS_STACK_KEEP"):
            shutil.rmtree(rec["tmpdir"], ignore_errors=True)
        f.unlink(missing_ok=True)
    return killed


_running: "set[_Server]" = set()
_running_lock = threading.Lock()


@atexit.register
def _stop_all() -> None:
    for server in list(_running):
        with contextlib.suppress(Exception):
            server.close()


class _Server:
    """A server process in its own process group, with a temporary directory."""

    name = "server"

    def __init__(self) -> None:
        self.proc: Optional[subprocess.Popen] = None
        self.tmpdir: Optional[pathlib.Path] = None
        self.started_seconds: Optional[float] = None
        self._owner_start = _proc_start_time(os.getpid())
        self._record: Optional[pathlib.Path] = None

    # subclasses: _command(), _env(), _user(), _wait_healthy(deadline), _logs()

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def rss_bytes(self) -> int:
        """Resident memory of the server's process group (the JVM), in bytes."""
        total = 0
        if not self.proc:
            return 0
        for d in pathlib.Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                stat = (d / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[2]) != self.proc.pid:
                    continue
                for line in (d / "status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            except (OSError, ValueError, IndexError):
                continue
        return total

    def _spawn(self, cmd: list, env: dict, cwd: pathlib.Path, user: Optional[pwd.struct_passwd]) -> None:
        out = open(self.tmpdir / "stdout.log", "ab")
        kwargs = {}
        # The parent-death signal fires when the *thread* that forked exits: only from the main
        # thread (elsewhere atexit and reap() still apply).
        pdeathsig = _set_pdeathsig if threading.current_thread() is threading.main_thread() else None
        if user is not None:
            kwargs = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        try:
            self.proc = subprocess.Popen(
                cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=pdeathsig, **kwargs)
        finally:
            out.close()
        with _running_lock:
            _running.add(self)
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        self._record = RUN_DIR / f"{self.name}-{os.getpid()}-{self.proc.pid}.json"
        self._record.write_text(json.dumps({
            "name": self.name, "pgid": self.proc.pid, "start": _proc_start_time(self.proc.pid),
            "owner": os.getpid(), "owner_start": self._owner_start, "marker": str(self.tmpdir),
            "tmpdir": str(self.tmpdir)}))

    def _fail(self, why: str) -> "StackError":
        logs = "\n".join(f"--- last lines of {p} ---\n{_tail(p)}" for p in self._logs())
        key = _error_lines(self._logs())
        if key:
            logs = "--- errors found in the logs ---\n" + "\n".join(key) + "\n" + logs
        self._kill()
        keep = "" if os.environ.get("DDB2OS_STACK_KEEP") else " (DDB2OS_STACK_KEEP=1 keeps these logs)"
        return StackError(f"{self.name} did not start: {why}{keep}\n{logs}")

    def _wait(self, probe, timeout: float) -> None:
        t0 = time.monotonic()
        deadline = t0 + timeout
        last = "no answer yet"
        while True:
            if self.proc.poll() is not None:
                raise self._fail(f"the process exited with code {self.proc.returncode}")
            try:
                if probe():
                    self.started_seconds = time.monotonic() - t0
                    return
            except (urllib.error.URLError, OSError, ValueError) as e:
                last = str(e)
            if time.monotonic() > deadline:
                raise self._fail(f"not healthy after {timeout:.0f} s (last probe: {last})")
            time.sleep(0.25)

    def _kill(self) -> None:
        if self.proc is None:
            return
        try:
            _kill_group(self.proc.pid, STOP_TIMEOUT, self.proc)
        finally:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
            with _running_lock:
                _running.discard(self)
            if self._record:
                self._record.unlink(missing_ok=True)
                self._record = None

    def stop(self) -> None:
        """Stop the process (SIGTERM to its group, then SIGKILL); keeps ports and data for start()."""
        self._kill()

    def close(self) -> None:
        """Stop and remove the temporary directory (unless DDB2OS_STACK_KEEP=1)."""
        try:
            self.stop()
        finally:
            if self.tmpdir and not os.environ.get("DDB2OS_STACK_KEEP"):
                shutil.rmtree(self.tmpdir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _logs(self) -> list:
        return [self.tmpdir / "stdout.log"] if self.tmpdir else []


# ---------------------------------------------------------------------------------------------
# OpenSearch
# ---------------------------------------------------------------------------------------------

def _service_user() -> Optional[pwd.struct_passwd]:
    """None when not root; otherwise the unprivileged user OpenSearch runs as (created if missing)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    proc = subprocess.run(
        [useradd, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
         "--shell", "/usr/sbin/nologin", "--comment", "ddb2os test stack (OpenSearch)", SERVICE_USER],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        raise StackError(f"OpenSearch cannot run as root and `useradd {SERVICE_USER}` failed "
                         f"(exit {proc.returncode}): {proc.stdout.strip()}") from None


def _readable_by(user: pwd.struct_passwd, path: pathlib.Path) -> bool:
    return subprocess.run(["test", "-r", str(path / "lib"), "-a", "-x", str(path / "bin" / "opensearch")],
                          user=user.pw_uid, group=user.pw_gid, extra_groups=[]).returncode == 0


class OpenSearch(_Server):
    """A single-node OpenSearch on 127.0.0.1. start()/stop() can be repeated: the same ports and
    the same data directory are reused, so indices survive a restart."""

    name = "opensearch"

    def __init__(self, heap: str = OPENSEARCH_HEAP, version: Optional[str] = None,
                 settings: Optional[dict] = None, start_timeout: float = START_TIMEOUT) -> None:
        super().__init__()
        self.version = version or opensearch_version()
        self.heap = heap
        self.extra_settings = dict(settings or {})
        self.start_timeout = start_timeout
        self.http_port: Optional[int] = None
        self.transport_port: Optional[int] = None
        self.user: Optional[pwd.struct_passwd] = None
        self.home: Optional[pathlib.Path] = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.http_port}"

    def _logs(self) -> list:
        if not self.tmpdir:
            return []
        return [self.tmpdir / "stdout.log", self.tmpdir / "logs" / "ddb2os-stack.log"]

    def _prepare(self) -> None:
        """Once per instance: cache, user, temporary directory with config/data/logs, ports."""
        fetch(opensearch_version_=self.version)
        reap()
        self.home = opensearch_home(self.version)
        self.user = _service_user()
        if self.user is not None and not _readable_by(self.user, self.home):
            # The cache is under a directory the service user cannot traverse (e.g. /root):
            # keep a world-readable copy of the distribution outside it.
            shared = pathlib.Path("/var/tmp/ddb2os-stack") / f"opensearch-{self.version}"
            with _cache_lock():
                if not (shared / _COMPLETE).exists():
                    shutil.rmtree(shared, ignore_errors=True)
                    shared.parent.mkdir(parents=True, exist_ok=True)
                    os.chmod(shared.parent, 0o755)
                    shutil.copytree(self.home, shared, symlinks=True)
                    (shared / _COMPLETE).write_text(self.version)
            self.home = shared
        self.tmpdir = pathlib.Path(tempfile.mkdtemp(prefix="ddb2os-opensearch-"))
        conf = self.tmpdir / "config"
        shutil.copytree(self.home / "config", conf)
        for d in ("data", "logs", "tmp"):
            (self.tmpdir / d).mkdir()
        # jvm.options: our heap, and logs/heap dumps in our directory (the defaults are relative
        # to the distribution, which the service user cannot write).
        jvm = (conf / "jvm.options").read_text()
        jvm = re.sub(r"(?m)^-Xms\S+$", f"-Xms{self.heap}", jvm)
        jvm = re.sub(r"(?m)^-Xmx\S+$", f"-Xmx{self.heap}", jvm)
        jvm = jvm.replace("HeapDumpPath=data", f"HeapDumpPath={self.tmpdir / 'data'}")
        jvm = jvm.replace("=logs/", f"={self.tmpdir / 'logs'}/")
        jvm += "\n-XX:-UsePerfData\n"  # no /tmp/hsperfdata_<user> left behind
        (conf / "jvm.options").write_text(jvm)
        if self.user is not None:
            os.chmod(self.tmpdir, 0o755)
            for dirpath, dirnames, filenames in os.walk(self.tmpdir):
                os.chown(dirpath, self.user.pw_uid, self.user.pw_gid)
                for n in filenames:
                    os.chown(os.path.join(dirpath, n), self.user.pw_uid, self.user.pw_gid)
        self.http_port, self.transport_port = _free_ports(2)

    def _write_settings(self) -> None:
        settings = {
            "cluster.name": "ddb2os-stack",
            "node.name": "ddb2os-stack-node",
            "discovery.type": "single-node",
            "network.host": LOOPBACK,
            "http.port": self.http_port,
            "transport.port": self.transport_port,
            "path.data": str(self.tmpdir / "data"),
            "path.logs": str(self.tmpdir / "logs"),
            # A test machine's disk may be fuller than the default watermarks allow.
            "cluster.routing.allocation.disk.threshold_enabled": False,
            "bootstrap.memory_lock": False,
        }
        settings.update(self.extra_settings)
        yml = "".join(f"{k}: {json.dumps(v)}\n" for k, v in settings.items())
        path = self.tmpdir / "config" / "opensearch.yml"
        path.write_text("# written by scripts/stack.py\n" + yml)
        if self.user is not None:
            os.chown(path, self.user.pw_uid, self.user.pw_gid)

    def _healthy(self) -> bool:
        req = f"{self.url}/_cluster/health?wait_for_status=yellow&timeout=2s"
        try:
            with _HTTP.open(req, timeout=5) as r:
                status = json.loads(r.read()).get("status")
        except urllib.error.HTTPError as e:  # 408 while still red
            if e.code == 408:
                return False
            raise
        return status in ("yellow", "green")

    def start(self) -> "OpenSearch":
        """Start (or restart) the node and wait until its cluster health is yellow or green."""
        if self.running():
            return self
        first = self.tmpdir is None
        if first:
            self._prepare()
        for attempt in range(3):
            self._write_settings()
            env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENSEARCH_", "JAVA_"))}
            env.update({
                "OPENSEARCH_JAVA_HOME": str(_java_home()),
                "OPENSEARCH_PATH_CONF": str(self.tmpdir / "config"),
                "OPENSEARCH_TMPDIR": str(self.tmpdir / "tmp"),
                "HOME": str(self.tmpdir),
                "TMPDIR": str(self.tmpdir / "tmp"),
            })
            self._spawn([str(self.home / "bin" / "opensearch")], env, self.tmpdir, self.user)
            try:
                self._wait(self._healthy, self.start_timeout)
                return self
            except StackError as e:
                # Someone took a port between choosing it and the bind: choose again (first start only).
                if first and attempt < 2 and "BindException" in str(e):
                    self.http_port, self.transport_port = _free_ports(2)
                    continue
                raise
        raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------------------
# DynamoDB Local
# ---------------------------------------------------------------------------------------------

class DynamoDBLocal(_Server):
    """DynamoDB Local (in memory, with Streams) on a free port, reached at 127.0.0.1.

    shared_db=True (the default) makes every credential and region see the same tables, so a
    client with other dummy credentials (the ddb2os handler's DescribeTable) finds them."""

    name = "dynamodb-local"

    def __init__(self, heap: str = DYNAMODB_LOCAL_HEAP, version: Optional[str] = None,
                 shared_db: bool = True, start_timeout: float = START_TIMEOUT) -> None:
        super().__init__()
        self.version = version or dynamodb_local_version()
        self.heap = heap
        self.shared_db = shared_db
        self.start_timeout = start_timeout
        self.port: Optional[int] = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    url = endpoint_url

    def _healthy(self) -> bool:
        req = urllib.request.Request(
            self.endpoint_url, data=b"{}", method="POST",
            headers={"Content-Type": "application/x-amz-json-1.0",
                     "X-Amz-Target": "DynamoDB_20120810.ListTables",
                     "X-Amz-Date": "20240101T000000Z",
                     "Authorization": "AWS4-HMAC-SHA256 Credential=stack/20240101/us-east-1/dynamodb/"
                                      "aws4_request, SignedHeaders=host;x-amz-date, Signature=00"})
        with _HTTP.open(req, timeout=5) as r:
            return "TableNames" in json.loads(r.read())

    def start(self) -> "DynamoDBLocal":
        if self.running():
            return self
        first = self.tmpdir is None
        if first:
            fetch(dynamodb_local_version_=self.version)
            reap()
            self.tmpdir = pathlib.Path(tempfile.mkdtemp(prefix="ddb2os-dynamodb-local-"))
            self.port = free_port()
        lib = dynamodb_local_dir(self.version) / "lib"
        for attempt in range(3):
            cmd = [str(_java_home() / "bin" / "java"), f"-Xmx{self.heap}", "-XX:+UseSerialGC", "-XX:-UsePerfData",
                   f"-Djava.library.path={lib}", f"-Dsqlite4java.library.path={lib}",
                   f"-Djava.io.tmpdir={self.tmpdir}", f"-Dddb2os.stack={self.tmpdir}",
                   "-cp", f"{lib}/*", DYNAMODB_LOCAL_MAIN,
                   "-inMemory", "-port", str(self.port), "-disableTelemetry"]
            if self.shared_db:
                cmd.append("-sharedDb")
            self._spawn(cmd, dict(os.environ), self.tmpdir, None)
            try:
                self._wait(self._healthy, self.start_timeout)
                return self
            except StackError as e:
                if first and attempt < 2 and "BindException" in str(e):
                    self.port = free_port()
                    continue
                raise
        raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------------------
# The Lambda Runtime Interface Emulator
# ---------------------------------------------------------------------------------------------

# AWS's emulator of the Lambda Runtime API (what Lambda runs a function's runtime against), built from
# its Go module with the Go module proxy's `go install`: its releases are on GitHub, which this
# project's machines do not reach. The proxy serves one pseudo-version of it.
RIE_MODULE = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"
RIE_VERSION = os.environ.get("DDB2OS_RIE_VERSION", "v0.0.0-20261030222936-bef5c4ba774d")


def lambda_rie_path() -> pathlib.Path:
    return CACHE / f"lambda-rie-{RIE_VERSION}" / "aws-lambda-rie"


# The Go that builds it when the one on PATH is older than 1.21, which cannot fetch the newer toolchain the
# module asks for (GOTOOLCHAIN, Go 1.21): Go's own release, fetched as the module golang.org/toolchain with
# `go mod download` (Debian 12's golang-go is Go 1.19).
GO_TOOLCHAIN = "go1.26.8"


def _go_version(go: str) -> tuple:
    out = subprocess.run([go, "env", "GOVERSION"], env=_go_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True).stdout.strip()
    m = re.match(r"go(\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def _go_env() -> dict:
    """The environment for the Go commands: a GOROOT set for another Go would make each use that one's tree."""
    env = dict(os.environ)
    env.pop("GOROOT", None)
    return env


def _go_toolchain(go: str, staging: pathlib.Path) -> str:
    """A Go new enough for the emulator's module: `go` itself from 1.21 on, else GO_TOOLCHAIN, downloaded
    by the old one into the cache (made executable: a module's files are not)."""
    if _go_version(go) >= (1, 21):
        return go
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    root = CACHE / f"{GO_TOOLCHAIN}.linux-{arch}"
    if not (root / "bin" / "go").exists():
        module = f"golang.org/toolchain@v0.0.1-{GO_TOOLCHAIN}.linux-{arch}"
        # -modcacherw: the module cache in staging can be moved and removed.
        flags = (os.environ.get("GOFLAGS", "") + " -modcacherw").strip()
        env = dict(_go_env(), GOMODCACHE=str(staging / "modcache"), GOFLAGS=flags)
        proc = subprocess.run([go, "mod", "download", "-json", module], cwd=staging, env=env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            info = json.loads(proc.stdout)
        except ValueError:
            info = {}
        if proc.returncode != 0 or "Dir" not in info or info.get("Error"):
            why = info.get("Error") or proc.stderr.strip() or proc.stdout.strip()  # -json puts the error on stdout
            raise StackError(f"blocked: {go} is older than Go 1.21 and could not download {module} "
                             f"(exit {proc.returncode}): {why[-2000:]}")
        tree = pathlib.Path(info["Dir"])
        for p in [*(tree / "bin").iterdir(), *(tree / "pkg" / "tool").glob("*/*")]:
            p.chmod(0o755)
        shutil.rmtree(root, ignore_errors=True)
        tree.rename(root)
    return str(root / "bin" / "go")


def fetch_lambda_rie(quiet: bool = False) -> pathlib.Path:
    """The emulator's binary, built into the cache when missing (about 20 s). Raises StackError with
    Go's own error when it cannot be built."""
    path = lambda_rie_path()
    if path.exists():
        return path
    with _cache_lock():
        if path.exists():
            return path
        go = shutil.which("go")
        if not go:
            raise StackError("Go (`go`) is not on PATH: it builds the Lambda Runtime Interface Emulator "
                             "(Debian: apt-get install golang-go)")
        if not quiet:
            _log(f"building the Lambda Runtime Interface Emulator {RIE_VERSION} with go install ...")
        staging = pathlib.Path(tempfile.mkdtemp(prefix="rie-", dir=CACHE))
        try:
            go = _go_toolchain(go, staging)
            # GOTOOLCHAIN=auto: a Go from 1.21 on but older than the module asks for fetches the newer one.
            env = dict(_go_env(), GOBIN=str(staging), CGO_ENABLED="0", GOTOOLCHAIN="auto")
            cmd = [go, "install", f"{RIE_MODULE}@{RIE_VERSION}"]
            proc = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
            if proc.returncode != 0 or not (staging / "aws-lambda-rie").exists():
                raise StackError(f"blocked: `{' '.join(cmd)}` failed (exit {proc.returncode}):\n"
                                 + "\n".join(proc.stdout.splitlines()[-30:]))
            path.parent.mkdir(parents=True, exist_ok=True)
            (staging / "aws-lambda-rie").rename(path)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return path


class LambdaEmulator(_Server):
    """A function's runtime (command, env) under the Lambda Runtime Interface Emulator on loopback.

    The emulator starts the runtime at the first invocation, gives it AWS_LAMBDA_RUNTIME_API, and
    answers ``invoke(payload)`` with what the runtime responded (or its error).

    ``max_concurrency``: the emulator's Lambda Managed Instances mode (AWS_LAMBDA_MAX_CONCURRENCY), where
    one environment takes that many invocations at once. There the emulator starts the runtime at once,
    and, as for a zip function, runs /var/task/bootstrap as user 993 whatever command it is given: so it
    runs in a mount namespace of its own (root only), where a tmpfs /var holds that bootstrap (an exec of
    ``command``) and a tmpfs /root shows only the directories this Python lives in (user 993 cannot enter
    root's home)."""

    name = "lambda-rie"

    def __init__(self, command: list, env: Optional[dict] = None, timeout_seconds: int = 300,
                 start_timeout: float = 30.0, max_concurrency: Optional[int] = None) -> None:
        super().__init__()
        self.command = list(command)
        self.max_concurrency = max_concurrency
        self.env = dict(os.environ if env is None else env)
        self.timeout_seconds = timeout_seconds
        self.start_timeout = start_timeout
        self.port: Optional[int] = None
        self.api_port: Optional[int] = None  # the Runtime API's, which the emulator serves to the runtime

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/2015-03-31/functions/function/invocations"

    def _healthy(self) -> bool:
        with socket.create_connection((LOOPBACK, self.port), timeout=2):
            return True

    def start(self) -> "LambdaEmulator":
        if self.running():
            return self
        rie = fetch_lambda_rie()
        reap()
        self.tmpdir = pathlib.Path(tempfile.mkdtemp(prefix="ddb2os-lambda-rie-"))
        self.port, api_port = _free_ports(2)
        env = dict(self.env, AWS_LAMBDA_FUNCTION_TIMEOUT=str(self.timeout_seconds), LOG_LEVEL="warn")
        cmd = [str(rie), "--runtime-interface-emulator-address", f"{LOOPBACK}:{self.port}",
               "--runtime-api-address", f"{LOOPBACK}:{api_port}"]
        if self.max_concurrency is None:
            cmd += self.command
        else:
            env["AWS_LAMBDA_MAX_CONCURRENCY"] = str(self.max_concurrency)
            cmd = self._managed_instances(cmd)
        self.api_port = api_port
        self._spawn(cmd, env, self.tmpdir, None)
        self._wait(self._healthy, self.start_timeout)
        if self.max_concurrency is not None:
            # This mode listens before it starts the runtime, and refuses an invocation no worker polls
            # for: ready once every worker is connected to the Runtime API (a start that fails ends the
            # emulator meanwhile, which _wait reports).
            self._wait(self._workers_connected, self.start_timeout)
        return self

    def _workers_connected(self) -> bool:
        """Whether max_concurrency connections to the Runtime API's port are established (/proc/net/tcp)."""
        peer = f"0100007F:{self.api_port:04X}"  # 127.0.0.1, as the kernel writes it
        with open("/proc/net/tcp") as f:
            rows = [line.split() for line in f.readlines()[1:]]
        return sum(1 for row in rows if row[2] == peer and row[3] == "01") >= self.max_concurrency  # 01: ESTABLISHED

    def _managed_instances(self, rie_cmd: list) -> list:
        """rie_cmd run by a shell in a mount namespace of its own, set up as the class says."""
        if os.geteuid() != 0 or shutil.which("unshare") is None:
            raise StackError("the emulator's Lambda Managed Instances mode runs /var/task/bootstrap as user 993: "
                             "this needs root and unshare (util-linux) for a mount namespace")
        home = pathlib.Path(pwd.getpwuid(0).pw_dir)  # root's home (/root), which user 993 cannot enter
        needed = [pathlib.Path(sys.executable).resolve(), pathlib.Path(sys.prefix), pathlib.Path(sys.base_prefix),
                  pathlib.Path(sysconfig.get_paths()["purelib"]), pathlib.Path(sysconfig.get_paths()["platlib"]),
                  pathlib.Path(site.getusersitepackages())]
        shown = sorted({p.relative_to(home).parts[0] for p in needed if home in p.parents and p.exists()})
        bootstrap = f"#!/bin/sh\nexec {shlex.join(self.command)}\n"
        lines = ["set -e", "mount -t tmpfs -o mode=755 ddb2os-var /var", "mkdir -p /var/task /var/keep",
                 f"printf %s {shlex.quote(bootstrap)} > /var/task/bootstrap", "chmod 755 /var/task/bootstrap"]
        for i, name in enumerate(shown):
            lines += [f"mkdir /var/keep/{i}", f"mount --bind {shlex.quote(str(home / name))} /var/keep/{i}"]
        lines.append(f"mount -t tmpfs -o mode=755 ddb2os-root {shlex.quote(str(home))}")
        for i, name in enumerate(shown):
            lines += [f"mkdir -p {shlex.quote(str(home / name))}",
                      f"mount --bind /var/keep/{i} {shlex.quote(str(home / name))}"]
        lines.append('exec "$@"')
        return ["unshare", "--mount", "sh", "-c", "\n".join(lines), "sh", *rie_cmd]

    def invoke(self, payload: bytes, timeout: float = 120.0) -> "tuple[int, bytes]":
        """POSTs one event; returns the emulator's status and body (the response, or the error's JSON)."""
        req = urllib.request.Request(self.url, data=payload, method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with _HTTP.open(req, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def output(self) -> str:
        """What the emulator and the runtime wrote so far (stdout and stderr), all of it."""
        return (self.tmpdir / "stdout.log").read_text(errors="replace") if self.tmpdir else ""


# ---------------------------------------------------------------------------------------------
# Context managers
# ---------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _started(server: "_Server") -> Iterator:
    """server, started, for the duration of the block; stopped (and its directory removed) after it."""
    try:
        server.start()
        yield server
    finally:
        server.close()


def opensearch(**kwargs) -> ContextManager[OpenSearch]:
    """A running OpenSearch for the duration of the block; see OpenSearch for the arguments."""
    return _started(OpenSearch(**kwargs))


def lambda_emulator(command: list, **kwargs) -> ContextManager[LambdaEmulator]:
    """A function's runtime under the Lambda Runtime Interface Emulator for the duration of the block."""
    return _started(LambdaEmulator(command, **kwargs))


def dynamodb_local(**kwargs) -> ContextManager[DynamoDBLocal]:
    """A running DynamoDB Local for the duration of the block; see DynamoDBLocal for the arguments."""
    return _started(DynamoDBLocal(**kwargs))


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------

def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _du(path: pathlib.Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv: Optional[list] = None) -> int:
    ap = argparse.ArgumentParser(prog="stack.py", description=(__doc__ or "").split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("fetch", help="download OpenSearch and DynamoDB Local into the cache")
    up = sub.add_parser("up", help="start both servers, print their URLs, stop them on Ctrl-C/SIGTERM")
    up.add_argument("--env-file", help="also write OPENSEARCH_URL=... and DYNAMODB_ENDPOINT=... here")
    up.add_argument("--only", choices=("opensearch", "dynamodb"), help="start just one of them")
    sub.add_parser("reap", help="kill servers left behind by processes that died")
    args = ap.parse_args(argv)

    try:
        if args.cmd == "fetch":
            info = fetch()
            os_dir, ddb_dir = pathlib.Path(info["opensearch_home"]), pathlib.Path(info["dynamodb_local_dir"])
            print(f"OpenSearch {info['opensearch_version']}: {os_dir} ({_human(_du(os_dir))})")
            print(f"DynamoDB Local {info['dynamodb_local_version']}: {ddb_dir} ({_human(_du(ddb_dir))})")
            if not info["downloaded"]:
                print("(already cached: nothing downloaded)")
            return 0
        if args.cmd == "reap":
            print(f"killed {reap()} straggler(s)")
            return 0

        # up: SIGINT/SIGTERM/SIGHUP raise KeyboardInterrupt once (also while starting); the
        # context managers then stop whatever is running, and further signals are ignored. A signal
        # this process was started ignoring stays ignored (nohup's SIGHUP, a background job's SIGINT).
        def on_signal(*_):
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, signal.SIG_IGN)
            raise KeyboardInterrupt
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(sig) != signal.SIG_IGN:
                signal.signal(sig, on_signal)
        try:
            with contextlib.ExitStack() as stack:
                servers, lines = [], []
                if args.only in (None, "dynamodb"):
                    ddb = stack.enter_context(dynamodb_local())
                    servers.append(("DynamoDB Local", ddb))
                    lines.append(f"DYNAMODB_ENDPOINT={ddb.endpoint_url}")
                    _log(f"DynamoDB Local {ddb.version} up at {ddb.endpoint_url} "
                         f"in {ddb.started_seconds:.1f} s")
                if args.only in (None, "opensearch"):
                    os_ = stack.enter_context(opensearch())
                    servers.append(("OpenSearch", os_))
                    lines.append(f"OPENSEARCH_URL={os_.url}")
                    _log(f"OpenSearch {os_.version} up at {os_.url} in {os_.started_seconds:.1f} s")
                if args.env_file:
                    pathlib.Path(args.env_file).write_text("".join(l + "\n" for l in lines))
                print("\n".join(lines), flush=True)
                _log("running; Ctrl-C or SIGTERM stops " + ("both" if len(servers) > 1 else "it"))
                while True:
                    time.sleep(1.0)
                    for name, server in servers:
                        if not server.running():
                            raise StackError(f"{name} exited unexpectedly (code {server.proc.returncode})\n"
                                             f"{_tail(server._logs()[-1])}")
        except KeyboardInterrupt:
            pass
        finally:
            if args.env_file:
                with contextlib.suppress(OSError):
                    os.unlink(args.env_file)
        _log("stopped")
        return 0
    except StackError as e:
        print(f"stack: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
