#!/usr/bin/env python3
"""Transform benchmark (issue 6, comparison 1): DynamoDB stream events -> OpenSearch _bulk bodies.

    python3 benchmarks/run_transform.py [--corpus small medium ...] [--only NAME ...] [--cpu N]
                                        [--seconds 1.0] [--reference NAME] [--json PATH] [--records N ...]

On one core (sched_setaffinity; child processes inherit it), for each corpus of benchmarks/gen_events.py
(generated into build/bench/data/ when missing), each competitor is run once to produce its output, which is
checked with check.py against the reference competitor's output; only then is it timed: warm-up, then
several runs, and the MEDIAN run gives records/s and input MB/s (1 MB = 1e6 bytes of the event's JSON).
A competitor whose output fails the check is shown as FAILED and its timing is not counted.
Ceilings (json.loads only, JSON.parse only, nlohmann/simdjson parse only, simdjson's stage 1, memcpy, a C walk of
the event dict, an unchecked On Demand transform) have no output to check.

The table goes to stdout; everything, with the machine, the versions and every check report, to
build/bench/transform.json.

Competitors (one entry each in COMPETITORS below; one file each under benchmarks/competitors/):
  boto3 dict       boto3_ref.bulk_bodies(event_dict)            TypeDeserializer + Decimal-aware json.dumps
  boto3 bytes      boto3_ref.bulk_bodies_from_bytes(raw)        json.loads first
  ... (fresh)      boto3 dict, ddb2os Python dict and the dict walk again, each call on a dict just made by
                   json.loads (not timed), as every Lambda invocation gets; the others repeat calls on one dict
  node exact       node_ref/transform.js --numbers exact        unmarshall(wrapNumbers) + JSON.stringify
  node double      node_ref/transform.js --numbers double       unmarshall(wrapNumbers: Number): lossy
  ddb2os C++       build/bench/ddb2os_transform                 skipped until built ($DDB2OS_TRANSFORM_BIN)
  ddb2os Python    ddb2os.bulk_bodies(event_dict), and (raw bytes) skipped until importable
  ceilings         json.loads, node JSON.parse, nlohmann::json::parse, simdjson DOM parse, memcpy, and
                   dict walk (competitors/dict_walk.c: every object of the event dict but OldImages visited,
                   nothing built); stage1 (simdjson's structural index alone); ondemand (simdjson On Demand writing each record's
                   bulk lines with every check and rewrite left out, a bound on any one-pass transform)

Reference for the checks: the first available of --reference, ddb2os C++, ddb2os Python, node exact, boto3 dict.
"""
from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "competitors"))

import check  # noqa: E402
import gen_events  # noqa: E402

BUILD = os.environ.get("DDB2OS_BUILD_DIR", os.path.join(ROOT, "build"))
BENCH = os.path.join(BUILD, "bench")
DATA = os.path.join(BENCH, "data")
OUTPUTS = os.path.join(BENCH, "transform-outputs")
NODE_DIR = os.path.join(HERE, "competitors", "node_ref")
CEILINGS_SRC = os.path.join(HERE, "competitors", "ceilings.cpp")
CEILINGS_BIN = os.path.join(BENCH, "ceilings")
# run_all.py passes --cpp-bin (the CMake build's bench/ directory); by default, next to the outputs.
DDB2OS_CPP_BIN = os.environ.get("DDB2OS_TRANSFORM_BIN") or os.path.join(BENCH, "ddb2os_transform")
KEYS_ARGS = [a for t, ks in gen_events.KEY_SCHEMA.items() for a in ("--keys", f"{t}={','.join(ks)}")]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------------------------
CLOCK = "cpu"  # set by --clock


class Timing:
    """Per-run wall and CPU seconds. The rates use the median of the clock chosen by --clock."""

    def __init__(self, wall: List[float], cpu: Optional[List[float]], records: int, size: int,
                 output: Optional[bytes], extra: Optional[dict] = None) -> None:
        self.wall_median, self.wall_best = statistics.median(wall), min(wall)
        self.cpu_median = statistics.median(cpu) if cpu else None
        self.cpu_best = min(cpu) if cpu else None
        self.runs = len(wall)
        self.records = records
        self.size = size
        self.output = output
        self.extra = extra or {}

    @property
    def clock(self) -> str:
        return "cpu" if CLOCK == "cpu" and self.cpu_median else "wall"

    @property
    def median(self) -> float:
        return self.cpu_median if self.clock == "cpu" else self.wall_median

    @property
    def best(self) -> float:
        return self.cpu_best if self.clock == "cpu" else self.wall_best

    def as_dict(self) -> Dict[str, Any]:
        d = {
            "clock": self.clock,
            "records_per_s": self.records / self.median,
            "mb_per_s": self.size / 1e6 / self.median,
            "best_mb_per_s": self.size / 1e6 / self.best,
            "wall_seconds_median": self.wall_median,
            "wall_seconds_best": self.wall_best,
            "wall_mb_per_s": self.size / 1e6 / self.wall_median,
            "cpu_seconds_median": self.cpu_median,
            "cpu_seconds_best": self.cpu_best,
            "runs": self.runs,
        }
        d.update(self.extra)
        return d


def time_python(fn: Callable[..., Any], seconds: float, min_runs: int = 3, max_runs: int = 200,
                prepare: Optional[Callable[[], Any]] = None) -> Tuple[List[float], List[float]]:
    """Warm-up once, then run until ``seconds`` have passed (at least ``min_runs`` runs); one call per run.
    Returns wall and process-CPU seconds per run. With ``prepare``, each run calls ``fn(prepare())``: making
    the argument, and freeing the last run's, is not timed (time_python_fresh).

    The cyclic GC is off while timing, as ``timeit`` does: its full collections scale with everything the
    harness keeps alive (the parsed corpora), not with the work measured, and made runs vary 4-fold."""
    fn(prepare()) if prepare is not None else fn()
    wall: List[float] = []
    cpu: List[float] = []
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        deadline = time.perf_counter() + seconds
        arg = None
        while len(wall) < min_runs or (time.perf_counter() < deadline and len(wall) < max_runs):
            if prepare is not None:
                arg = None
                arg = prepare()
            c0 = time.process_time()
            t0 = time.perf_counter()
            fn(arg) if prepare is not None else fn()
            t1 = time.perf_counter()
            cpu.append(time.process_time() - c0)
            wall.append(t1 - t0)
        arg = None
    finally:
        if gc_was_enabled:
            gc.enable()
    return wall, cpu


def time_python_fresh(fn: Callable[[Any], Any], data: bytes, seconds: float) -> Tuple[List[float], List[float]]:
    """As ``time_python``, but every run gets a dict just made by ``json.loads(data)`` (not timed), as every
    Lambda invocation does. Repeated calls on one dict find its objects in the CPU caches (and the UTF-8 copy
    CPython keeps in a non-ASCII str), which a memory-bound transform gains from and Lambda never gives."""
    return time_python(fn, seconds, prepare=lambda: json.loads(data))


def iterations_for(size: int, expected_mb_s: float, seconds: float, lo: int = 5, hi: int = 2000) -> int:
    return max(lo, min(hi, int(seconds * expected_mb_s * 1e6 / max(1, size))))


def rounds_summary(timings: List[Timing]) -> Dict[str, Any]:
    """Timing.as_dict's fields over several rounds of one competitor: each median is the median of the rounds'
    medians, each best the best of all runs (so no field is left from the first round alone)."""
    first = timings[0]
    med = statistics.median(t.median for t in timings)
    cpu = [t.cpu_median for t in timings if t.cpu_median is not None]
    cpu_best = [t.cpu_best for t in timings if t.cpu_best is not None]
    wall = statistics.median(t.wall_median for t in timings)
    return {
        "clock": first.clock,
        "records_per_s": first.records / med,
        "mb_per_s": first.size / 1e6 / med,
        "best_mb_per_s": first.size / 1e6 / min(t.best for t in timings),
        "wall_seconds_median": wall,
        "wall_seconds_best": min(t.wall_best for t in timings),
        "wall_mb_per_s": first.size / 1e6 / wall,
        "cpu_seconds_median": statistics.median(cpu) if cpu else None,
        "cpu_seconds_best": min(cpu_best) if cpu_best else None,
        "runs": sum(t.runs for t in timings),
        "rounds": len(timings),
    }


def run_program(cmd: List[str], cwd: Optional[str] = None, timeout: float = 120) -> Dict[str, Any]:
    p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])}... exited {p.returncode}: {p.stderr.decode(errors='replace')[-800:]}")
    last = [ln for ln in p.stdout.decode().splitlines() if ln.strip().startswith("{")]
    if not last:
        raise RuntimeError(f"{cmd[0]} printed no JSON line: {p.stdout[-300:]!r}")
    return json.loads(last[-1])


def program_timing(res: Dict[str, Any], corpus: "Corpus", output: Optional[bytes]) -> Timing:
    """From a program's JSON line (node_ref/transform.js, ceilings.cpp, ddb2os_transform)."""
    if res.get("records") not in (None, corpus.records):
        raise RuntimeError(f"program counted {res.get('records')} records, the corpus has {corpus.records}")
    t = Timing([res["seconds_median"]], [res["cpu_seconds_median"]] if res.get("cpu_seconds_median") else None,
               corpus.records, corpus.size, output,
               {"sha256": res.get("sha256"), "iterations": res.get("iterations")})
    # The program's own medians and minimums (over its iterations).
    t.wall_best = res.get("seconds_min", t.wall_best)
    if t.cpu_median is not None:
        t.cpu_best = res.get("cpu_seconds_min", t.cpu_best)
    t.runs = res.get("iterations", 1)
    return t


# --------------------------------------------------------------------------------------------------------------
# Competitors
# --------------------------------------------------------------------------------------------------------------
class Skip(Exception):
    """A competitor that is not available (yet): skipped with a message, never a failure."""


class Corpus:
    """One event file; its parsed dict is built on first use (a whole corpus's at once, to count its records)
    and dropped by ``release()``."""

    def __init__(self, name: str, path: str, records: Optional[int] = None) -> None:
        self.name = name
        self.path = path
        with open(path, "rb") as f:
            self.data = f.read()
        self.size = len(self.data)
        self._event: Optional[Dict[str, Any]] = None
        # Known (a cut): its dict is made at its turn, not held from the start.
        self.records = records if records is not None else len(self.event["Records"])

    @property
    def event(self) -> Dict[str, Any]:
        if self._event is None:
            self._event = json.loads(self.data)
        return self._event

    def release(self) -> None:
        self._event = None
        gc.collect()


class Competitor:
    name = ""
    kind = "transform"        # or "ceiling" (no output to check)
    lossy = False             # writes numbers as doubles
    set_order_lost = False    # writes sets in another order
    note = ""

    def available(self) -> None:
        """Raise Skip if it cannot run here."""

    def run(self, corpus: Corpus, seconds: float) -> Timing:
        raise NotImplementedError


class Boto3Dict(Competitor):
    name = "boto3 dict"
    lossy = True
    set_order_lost = True
    note = "boto3_ref.bulk_bodies(event_dict): TypeDeserializer + DecimalEncoder-style json.dumps"

    def available(self) -> None:
        try:
            import boto3_ref  # noqa: F401
        except ImportError as e:
            raise Skip(f"boto3 not importable ({e})")

    def run(self, corpus: Corpus, seconds: float) -> Timing:
        import boto3_ref
        out = b"".join(boto3_ref.bulk_bodies(corpus.event))
        wall, cpu = time_python(lambda: boto3_ref.bulk_bodies(corpus.event), seconds)
        return Timing(wall, cpu, corpus.records, corpus.size, out)


class Boto3DictFresh(Boto3Dict):
    name = "boto3 dict (fresh)"
    note = "as boto3 dict, each call on a dict just made by json.loads (not timed), as Lambda hands over"

    def run(self, corpus: Corpus, seconds: float) -> Timing:
        import boto3_ref
        out = b"".join(boto3_ref.bulk_bodies(json.loads(corpus.data)))
        wall, cpu = time_python_fresh(boto3_ref.bulk_bodies, corpus.data, seconds)
        return Timing(wall, cpu, corpus.records, corpus.size, out)


class Boto3Bytes(Boto3Dict):
    name = "boto3 bytes"
    note = "boto3_ref.bulk_bodies_from_bytes(raw): json.loads, then as boto3 dict"

    def run(self, corpus: Corpus, seconds: float) -> Timing:
        import boto3_ref
        out = b"".join(boto3_ref.bulk_bodies_from_bytes(corpus.data))
        wall, cpu = time_python(lambda: boto3_ref.bulk_bodies_from_bytes(corpus.data), seconds)
        return Timing(wall, cpu, corpus.records, corpus.size, out)


class NodeRef(Competitor):
    numbers = "exact"
    expected_mb_s = 35.0

    def __init__(self, numbers: str) -> None:
        self.numbers = numbers
        self.name = f"node {numbers}"
        self.lossy = numbers == "double"
        self.note = ("@aws-sdk/util-dynamodb unmarshall + JSON.stringify, wrapNumbers: "
                     + ("number text spliced back (exact)" if numbers == "exact" else "Number (lossy)"))

    def available(self) -> None:
        ensure_node_modules()

    def run(self, corpus: Corpus, seconds: float) -> Timing:
        out_path = os.path.join(OUTPUTS, f"{safe(self.name)}-{corpus.name}.ndjson")
        iters = iterations_for(corpus.size, self.expected_mb_s, seconds, lo=5, hi=200)
        res = run_program(["node", "transform.js", corpus.path, str(iters), "--warmup", "3",
                           "--numbers", self.numbers, "--out", out_path], cwd=NODE_DIR)
        with open(out_path, "rb") as f:
            out = f.read()
        return program_timing(res, corpus, out)


# ---- HOOK: ddb2os C++ from raw bytes ---------------------------------------------------------------------------
class Ddb2osCpp(Competitor):
    """``build/bench/ddb2os_transform FILE ITERATIONS [--warmup N] [--out PATH] [--keys TABLE=PK[,SK]]...``

    Reads FILE into memory, then times ITERATIONS conversions of those raw bytes into bulk bodies (process
    start-up and file reading excluded), and prints one JSON line with at least ``records``,
    ``seconds_median`` (and ideally ``seconds_min``, ``seconds``), ``records_per_s``, ``mb_per_s`` and the
    ``sha256`` of its output (all bodies concatenated); ``--out PATH`` writes that output for the check.
    ``--keys`` as in ``ddb2os convert``. Same JSON as node_ref/transform.js.
    """
    name = "ddb2os C++ bytes"
    expected_mb_s = 300.0
    note = "build/bench/ddb2os_transform FILE ITERATIONS (raw bytes -> bulk bodies)"

    def available(self) -> None:
        if not os.access(DDB2OS_CPP_BIN, os.X_OK):
            raise Skip(f"{os.path.relpath(DDB2OS_CPP_BIN, ROOT)} not built yet")

    def run(self, corpus: Corpus, seconds: float) -> Timing:
        out_path = os.path.join(OUTPUTS, f"{safe(self.name)}-{corpus.name}.ndjson")
        if os.path.exists(out_path):
            os.unlink(out_path)
        iters = iterations_for(corpus.size, self.expected_mb_s, seconds, lo=10, hi=5000)
        res = run_program([DDB2OS_CPP_BIN, corpus.path, str(iters), "--warmup", "3", "--out", out_path]
                          + KEYS_ARGS)
        if not os.path.exists(out_path):
            raise RuntimeError("ddb2os_transform did not write --out PATH: its output cannot be checked")
        with open(out_path, "rb") as f:
            out = f.read()
        if res.get("sha256") and res["sha256"] != hashlib.sha256(out).hexdigest():
            raise RuntimeError("ddb2os_transform: sha256 printed differs from the --out file")
        return program_timing(res, corpus, out)


# ---- ddb2os Python: from the event dict (what Lambda hands over) and from raw bytes ------------------------------
def ddb2os_python_call(ddb2os: Any, event: Any) -> Any:
    """How the benchmark calls the Python module: ``ddb2os.bulk_bodies(event, key_schemas=...)``; ``event`` is
    the event dict or its raw JSON bytes."""
    return ddb2os.bulk_bodies(event, key_schemas=PY_KEY_SCHEMAS)


PY_KEY_SCHEMAS = {t: list(ks) for t, ks in gen_events.KEY_SCHEMA.items()}


def bodies_bytes(result: Any) -> bytes:
    bodies = getattr(result, "bodies", result)
    if isinstance(bodies, (bytes, bytearray, str)):
        bodies = [bodies]
    out = []
    for b in bodies:
        b = getattr(b, "body", b)
        out.append(b.encode("utf-8") if isinstance(b, str) else bytes(b))
    return b"".join(out)


class Ddb2osPython(Competitor):
    name = "ddb2os Python dict"
    note = "import ddb2os; ddb2os.bulk_bodies(event_dict, key_schemas=...)"

    def available(self) -> None:
        try:
            import ddb2os
        except ImportError as e:
            raise Skip(f"ddb2os Python module not importable yet ({e})")
        if not hasattr(ddb2os, "bulk_bodies"):
            raise Skip("ddb2os has no bulk_bodies yet")

    def input(self, corpus: Corpus) -> Any:
        return corpus.event

    @staticmethod
    def output(ddb2os: Any, event: Any) -> bytes:
        """The bodies of one call, for the check; a record that failed stops the run."""
        result = ddb2os_python_call(ddb2os, event)
        if len(result.errors):
            raise RuntimeError(f"{len(result.errors)} records failed: {result.errors[0]}")
        return bodies_bytes(result)

    def run(self, corpus: Corpus, seconds: float) -> Timing:
        import ddb2os
        event = self.input(corpus)
        out = self.output(ddb2os, event)
        wall, cpu = time_python(lambda: ddb2os_python_call(ddb2os, event), seconds)
        return Timing(wall, cpu, corpus.records, corpus.size, out)


class Ddb2osPythonFresh(Ddb2osPython):
    name = "ddb2os Python dict (fresh)"
    note = "as ddb2os Python dict, each call on a dict just made by json.loads (not timed), as Lambda hands over"

    def run(self, corpus: Corpus, seconds: float) -> Timing:
        import ddb2os
        out = self.output(ddb2os, json.loads(corpus.data))
        wall, cpu = time_python_fresh(lambda e: ddb2os_python_call(ddb2os, e), corpus.data, seconds)
        return Timing(wall, cpu, corpus.records, corpus.size, out)


class Ddb2osPythonBytes(Ddb2osPython):
    name = "ddb2os Python bytes"
    note = "import ddb2os; ddb2os.bulk_bodies(raw_bytes, key_schemas=...)"

    def input(self, corpus: Corpus) -> Any:
        return corpus.data


class Ddb2osPythonLoads(Ddb2osPython):
    """What ddb2os.handler costs on Lambda's own Python runtime, which parses the event before the handler
    sees it; against "ddb2os Python bytes", what ddb2os.lambda_runtime (the raw bytes to the engine) saves."""
    name = "ddb2os Python json.loads+dict"
    note = "json.loads(raw) then ddb2os.bulk_bodies(event_dict): the managed runtime's parse, then the handler's work"

    def run(self, corpus: Corpus, seconds: float) -> Timing:
        import ddb2os
        out = self.output(ddb2os, json.loads(corpus.data))
        wall, cpu = time_python(lambda: ddb2os_python_call(ddb2os, json.loads(corpus.data)), seconds)
        return Timing(wall, cpu, corpus.records, corpus.size, out)


# ---- ceilings ------------------------------------------------------------------------------------------------
class JsonLoads(Competitor):
    name = "ceiling json.loads"
    kind = "ceiling"
    note = "Python json.loads(raw) only"

    def run(self, corpus: Corpus, seconds: float) -> Timing:
        wall, cpu = time_python(lambda: json.loads(corpus.data), seconds)
        return Timing(wall, cpu, corpus.records, corpus.size, None)


class DictWalk(Competitor):
    name = "ceiling dict walk"
    kind = "ceiling"
    note = "C: visit every object of the event dict but OldImages (PyDict_Next, list items, each str's text), build nothing"

    def available(self) -> None:
        ensure_dict_walk()

    def input(self, corpus: Corpus) -> Any:
        return corpus.event

    def run(self, corpus: Corpus, seconds: float) -> Timing:
        import dict_walk
        event = corpus.event
        wall, cpu = time_python(lambda: dict_walk.walk(event), seconds)
        return Timing(wall, cpu, corpus.records, corpus.size, None)


class DictWalkFresh(DictWalk):
    name = "ceiling dict walk (fresh)"
    note = "as ceiling dict walk, each walk of a dict just made by json.loads (not timed)"

    def run(self, corpus: Corpus, seconds: float) -> Timing:
        import dict_walk
        wall, cpu = time_python_fresh(dict_walk.walk, corpus.data, seconds)
        return Timing(wall, cpu, corpus.records, corpus.size, None)


class NodeParse(Competitor):
    name = "ceiling node JSON.parse"
    kind = "ceiling"
    note = "node: JSON.parse(buf.toString()) only"

    def available(self) -> None:
        ensure_node_modules()

    def run(self, corpus: Corpus, seconds: float) -> Timing:
        iters = iterations_for(corpus.size, 150.0, seconds, lo=5, hi=500)
        res = run_program(["node", "transform.js", corpus.path, str(iters), "--warmup", "3", "--parse-only"],
                          cwd=NODE_DIR)
        return program_timing(res, corpus, None)


class CeilingProgram(Competitor):
    kind = "ceiling"

    def __init__(self, mode: str, expected_mb_s: float, note: str) -> None:
        self.mode = mode
        self.name = f"ceiling {mode}"
        self.expected_mb_s = expected_mb_s
        self.note = note

    def available(self) -> None:
        ensure_ceilings()
        if self.mode in ("simdjson", "stage1", "ondemand") and not CEILINGS_HAVE_SIMDJSON:
            raise Skip("simdjson not installed (libsimdjson-dev)")

    def run(self, corpus: Corpus, seconds: float) -> Timing:
        iters = iterations_for(corpus.size, self.expected_mb_s, seconds, lo=10, hi=20000)
        res = run_program([CEILINGS_BIN, self.mode, corpus.path, str(iters), "--warmup", "3"])
        return program_timing(res, corpus, None)


COMPETITORS: List[Competitor] = [
    Ddb2osCpp(),
    Ddb2osPython(),
    Ddb2osPythonFresh(),
    Ddb2osPythonBytes(),
    Ddb2osPythonLoads(),
    Boto3Dict(),
    Boto3DictFresh(),
    Boto3Bytes(),
    NodeRef("exact"),
    NodeRef("double"),
    JsonLoads(),
    DictWalk(),
    DictWalkFresh(),
    NodeParse(),
    CeilingProgram("nlohmann", 40.0, "nlohmann::json::parse(raw) into a DOM, g++ -O3"),
    CeilingProgram("simdjson", 800.0, "simdjson DOM parse(raw), g++ -O3"),
    CeilingProgram("stage1", 5000.0, "simdjson stage 1 alone: structural index and UTF-8 check, g++ -O3"),
    CeilingProgram("memcpy", 10000.0, "memcpy of the raw bytes"),
    # Not a parse: the most a one-pass transform reaches here if it checked and rewrote nothing (its lines are
    # not ddb2os's, so there is nothing to check them against).
    CeilingProgram("ondemand", 1500.0, "simdjson On Demand writing bulk lines unchecked, g++ -O3"),
]
REFERENCE_ORDER = ["ddb2os C++ bytes", "ddb2os Python dict", "node exact", "boto3 dict"]


# --------------------------------------------------------------------------------------------------------------
# Setup helpers
# --------------------------------------------------------------------------------------------------------------
def safe(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name)


_node_ready: Optional[str] = None


def ensure_node_modules() -> None:
    global _node_ready
    if _node_ready is not None:
        if _node_ready:
            raise Skip(_node_ready)
        return
    if not shutil.which("node"):
        _node_ready = "node not installed"
        raise Skip(_node_ready)
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "@aws-sdk", "util-dynamodb")):
        npm = shutil.which("npm")
        if not npm:
            _node_ready = "npm not installed"
            raise Skip(_node_ready)
        log("installing node_ref dependencies: npm ci")
        p = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE_DIR,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if p.returncode != 0:
            _node_ready = f"npm ci failed: {p.stdout.decode(errors='replace')[-300:]}"
            raise Skip(_node_ready)
    _node_ready = ""


CEILINGS_HAVE_SIMDJSON = False
_ceilings_ready: Optional[str] = None


def ensure_ceilings() -> None:
    global _ceilings_ready, CEILINGS_HAVE_SIMDJSON
    if _ceilings_ready is not None:
        if _ceilings_ready:
            raise Skip(_ceilings_ready)
        return
    cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if not cxx:
        _ceilings_ready = "no C++ compiler"
        raise Skip(_ceilings_ready)
    os.makedirs(BENCH, exist_ok=True)
    stamp = CEILINGS_BIN + ".flags"
    for flags in (["-DWITH_SIMDJSON"], []):
        libs = ["-lsimdjson"] if flags else []
        want = " ".join(flags)
        fresh = (os.path.exists(CEILINGS_BIN) and os.path.exists(stamp)
                 and os.path.getmtime(CEILINGS_BIN) >= os.path.getmtime(CEILINGS_SRC)
                 and open(stamp).read() == want)
        if fresh:
            CEILINGS_HAVE_SIMDJSON = bool(flags)
            _ceilings_ready = ""
            return
        log(f"building {os.path.relpath(CEILINGS_BIN, ROOT)} ({cxx} -O3 {want})")
        p = subprocess.run([cxx, "-std=c++17", "-O3", "-DNDEBUG", *flags, CEILINGS_SRC, "-o", CEILINGS_BIN, *libs],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if p.returncode == 0:
            with open(stamp, "w") as f:
                f.write(want)
            CEILINGS_HAVE_SIMDJSON = bool(flags)
            _ceilings_ready = ""
            return
    _ceilings_ready = f"cannot build ceilings.cpp: {p.stdout.decode(errors='replace')[-300:]}"
    raise Skip(_ceilings_ready)


_dict_walk_ready: Optional[str] = None


def ensure_dict_walk() -> None:
    """Builds competitors/dict_walk.c into build/bench/ as a module of the running Python (when stale)."""
    global _dict_walk_ready
    if _dict_walk_ready is None:
        import sysconfig
        src = os.path.join(HERE, "competitors", "dict_walk.c")
        so = os.path.join(BENCH, "dict_walk" + (sysconfig.get_config_var("EXT_SUFFIX") or ".so"))
        cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
        _dict_walk_ready = ""
        if not (os.path.exists(so) and os.path.getmtime(so) >= os.path.getmtime(src)):
            if not cc:
                _dict_walk_ready = "no C compiler"
            else:
                os.makedirs(BENCH, exist_ok=True)
                log(f"building {os.path.relpath(so, ROOT)} ({cc} -O3)")
                p = subprocess.run([cc, "-O3", "-shared", "-fPIC", "-I", sysconfig.get_paths()["include"], src, "-o", so],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                if p.returncode != 0:
                    _dict_walk_ready = f"cannot build dict_walk.c: {p.stdout.decode(errors='replace')[-300:]}"
        if not _dict_walk_ready and BENCH not in sys.path:
            sys.path.insert(0, BENCH)
    if _dict_walk_ready:
        raise Skip(_dict_walk_ready)


def write_atomically(path: str, data: bytes) -> None:
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)


def ensure_data(names: List[str], regen: bool, cuts: Optional[List[int]] = None) -> Dict[str, Corpus]:
    """The corpora, generated when missing; and with cuts, each also cut to its first N records (an event of
    the same records, smaller: <name>-first<N>, after the whole one)."""
    os.makedirs(DATA, exist_ok=True)
    out = {}
    for name in names:
        path = os.path.join(DATA, f"{name}.json")
        if regen or not os.path.exists(path):
            log(f"generating {os.path.relpath(path, ROOT)}")
            write_atomically(path, gen_events.corpus_bytes(name))
        whole = out[name] = Corpus(name, path)
        for n in sorted(set(cuts or []), reverse=True):
            if n >= whole.records:
                log(f"{name} has {whole.records} records: no cut to its first {n}")
                continue
            cut_path = os.path.join(DATA, f"{name}-first{n}.json")
            data = gen_events.compact({"Records": whole.event["Records"][:n]})  # written as the whole one is
            write_atomically(cut_path, data)  # each run: a cut never outlives a regenerated whole
            if len(data) < 64 * 1024:
                log(f"{name}-first{n} is {len(data):,} bytes: a call's fixed cost is much of its time")
            out[f"{name}-first{n}"] = Corpus(f"{name}-first{n}", cut_path, records=n)
    return out


def positive_int(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n}: a cut needs at least 1 record")
    return n


def pin_to_one_core(cpu: Optional[int]) -> Optional[int]:
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    cpu = allowed[-1] if cpu is None else cpu
    os.sched_setaffinity(0, {cpu})
    return cpu


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), for the machine facts every result carries."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def machine_info(cpu: Optional[int]) -> Dict[str, Any]:
    model = cpu_model()
    versions: Dict[str, Any] = {"python": platform.python_version()}
    try:
        import boto3
        versions["boto3"] = boto3.__version__
    except ImportError:
        pass
    if shutil.which("node"):
        versions["node"] = subprocess.run(["node", "--version"], stdout=subprocess.PIPE).stdout.decode().strip()
    try:
        with open(os.path.join(NODE_DIR, "node_modules", "@aws-sdk", "util-dynamodb", "package.json")) as f:
            versions["@aws-sdk/util-dynamodb"] = json.load(f)["version"]
    except OSError:
        pass
    return {"cpu_model": model, "cpus": os.cpu_count(), "pinned_cpu": cpu, "platform": platform.platform(),
            "loadavg_start": os.getloadavg(), "versions": versions}


# --------------------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------------------
def fmt_rate(v: Optional[float]) -> str:
    if v is None:
        return "-"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="ddb2os transform benchmark")
    ap.add_argument("--corpus", nargs="*", default=gen_events.CORPORA, choices=gen_events.CORPORA)
    ap.add_argument("--only", nargs="*", help="competitor names (substring match) to run")
    ap.add_argument("--seconds", type=float, default=1.0, help="measuring time per competitor and corpus")
    ap.add_argument("--rounds", type=int, default=5,
                    help="the competitors take turns in this many rounds of seconds/rounds each; a rate is the "
                         "median of its rounds, a ratio the median of its per-round ratios")
    ap.add_argument("--cpu", type=int, help="CPU to pin to (default: the last allowed one)")
    ap.add_argument("--reference", help="competitor whose output the others are checked against")
    ap.add_argument("--regen", action="store_true", help="regenerate the corpora")
    ap.add_argument("--records", nargs="+", type=positive_int, default=[], metavar="N",
                    help="also each corpus cut to its first N records (how a rate depends on the event's size: "
                         "whether its objects stay in the cache)")
    ap.add_argument("--clock", choices=["cpu", "wall"], default="cpu",
                    help="rates from process CPU time (default: robust to other load on a shared machine) "
                         "or wall time; both are in the JSON")
    ap.add_argument("--json", default=os.path.join(BENCH, "transform.json"), help="where to write the results")
    args = ap.parse_args(argv)

    global CLOCK
    CLOCK = args.clock
    cpu = pin_to_one_core(args.cpu)
    os.makedirs(OUTPUTS, exist_ok=True)
    corpora = ensure_data(args.corpus, args.regen, args.records)
    started = time.time()

    comps = [c for c in COMPETITORS if not args.only or any(o.lower() in c.name.lower() for o in args.only)]
    skipped: Dict[str, str] = {}
    active: List[Competitor] = []
    for c in COMPETITORS:
        if c not in comps and c.name not in ([args.reference] + REFERENCE_ORDER):
            continue
        try:
            c.available()
            active.append(c)
        except Skip as e:
            skipped[c.name] = str(e)
            if c in comps:
                log(f"skip {c.name}: {e}")
    by_name = {c.name: c for c in active}
    order = ([args.reference] if args.reference else []) + REFERENCE_ORDER
    ref_name = next((n for n in order if n in by_name), None)
    if args.reference and ref_name != args.reference:
        log(f"reference {args.reference!r} not available; using {ref_name!r}")
    if ref_name is None:
        log("no transform competitor available to serve as reference")
        return 1
    ref = by_name[ref_name]
    log(f"pinned to CPU {cpu}; reference for checks: {ref_name}")

    results: List[Dict[str, Any]] = []
    # This machine's speed drifts by tens of percent over seconds (a shared host): measured one after another,
    # two competitors can see different machines. So they take turns, in rounds.
    rounds = max(1, args.rounds)
    per_round = args.seconds / rounds
    per_round_rates: Dict[tuple, List[float]] = {}  # (competitor, corpus) -> MB/s of each round
    for cname, corpus in corpora.items():
        log(f"== {cname}: {corpus.size:,} bytes, {corpus.records} records")
        ref_timing: Optional[Timing] = None
        try:
            ref_timing = ref.run(corpus, per_round)
        except Exception as e:  # noqa: BLE001 -- a broken competitor is reported, never fatal
            log(f"   reference {ref_name} failed: {e}")
        ref_out = ref_timing.output if ref_timing else None
        if ref_out is not None:
            with open(os.path.join(OUTPUTS, f"reference-{cname}.ndjson"), "wb") as f:
                f.write(ref_out)
        corpus_rows: List[tuple] = []  # (competitor, row, timings of its rounds) of the counted ones
        for c in active:
            if c not in comps:
                continue
            row: Dict[str, Any] = {"competitor": c.name, "kind": c.kind, "corpus": cname,
                                   "input_bytes": corpus.size, "records": corpus.records}
            try:
                t = ref_timing if c is ref else c.run(corpus, per_round)
                if t is None:
                    raise RuntimeError("reference failed")
            except Exception as e:  # noqa: BLE001
                row.update(counted=False, error=str(e)[:1000])
                log(f"   {c.name:26s} ERROR {str(e)[:200]}")
                results.append(row)
                continue
            row.update(t.as_dict())
            if c.kind == "ceiling":
                row["counted"] = True
                row["check"] = "ceiling: no output"
            elif ref_out is None:
                row["counted"] = False
                row["check"] = "no reference output"
            else:
                rep = check.compare(ref_out, t.output, corpus.event,
                                    lossy=c.lossy or ref.lossy,
                                    set_order_lost=c.set_order_lost or ref.set_order_lost)
                # ddb2os's own ways in (C++ bytes, Python dict, bytes, fresh dict) run one engine: their bodies
                # must be the reference's byte for byte, not only equal under check.py's allowances.
                if c is not ref and c.name.startswith("ddb2os") and ref.name.startswith("ddb2os"):
                    rep["bytes_identical"] = t.output == ref_out
                    if not rep["bytes_identical"]:
                        rep["ok"] = False
                        log(f"   {c.name}: output differs from {ref.name}'s byte for byte")
                row["counted"] = bool(rep["ok"])
                row["check"] = rep if c is not ref else "reference"
                row["output_bytes"] = len(t.output)
                row["output_sha256"] = hashlib.sha256(t.output).hexdigest()
                if not rep["ok"]:
                    log("   " + check.summary(rep).replace("\n", "\n   "))
            results.append(row)
            if row["counted"]:
                corpus_rows.append((c, row, [t]))
            else:
                log(f"   {c.name:26s} CHECK FAILED: not counted")
        # Rounds 2..n: the counted competitors again, in turn (their output was checked in round 1).
        for _ in range(1, rounds):
            for c, row, timings in corpus_rows:
                try:
                    timings.append(c.run(corpus, per_round))
                except Exception as e:  # noqa: BLE001
                    row.update(counted=False, error=f"a later round failed: {str(e)[:1000]}")
        for c, row, timings in corpus_rows:
            if not row["counted"]:
                log(f"   {c.name:26s} ERROR {row['error'][:200]}")
                continue
            rates = [t.size / 1e6 / t.median for t in timings]
            per_round_rates[(c.name, cname)] = rates
            row.update(rounds_summary(timings), mb_per_s_per_round=rates)
            lossy = ""
            if isinstance(row.get("check"), dict) and row["check"].get("precision_lost", {}).get("values"):
                lossy = f"  ({row['check']['precision_lost']['values']} numbers lost precision)"
            log(f"   {c.name:26s} {fmt_rate(row['records_per_s']):>12s} rec/s {fmt_rate(row['mb_per_s']):>10s} MB/s"
                f"  (best {fmt_rate(row['best_mb_per_s'])}, wall {fmt_rate(row['wall_mb_per_s'])}){lossy}")
        corpus.release()

    # ---- table -------------------------------------------------------------------------------------------
    names = [c.name for c in active if c in comps]
    cols = list(corpora)
    cell: Dict[tuple, Dict[str, Any]] = {(r["competitor"], r["corpus"]): r for r in results}

    def line(parts: List[str], widths: List[int]) -> str:
        return "  ".join(p.ljust(w) if i == 0 else p.rjust(w) for i, (p, w) in enumerate(zip(parts, widths)))

    widths = [26] + [19] * len(cols)
    print()
    print(f"Transform, one core (CPU {cpu}), median of runs ({args.clock} time): records/s | input MB/s"
          f"   (reference for checks: {ref_name})")
    print(line(["competitor"] + [f"{c} ({corpora[c].size / 1e6:.2f} MB)" for c in cols], widths))
    for n in names:
        parts = [n]
        for c in cols:
            r = cell.get((n, c))
            if r is None or "records_per_s" not in r:
                parts.append("error")
            elif not r["counted"]:
                parts.append("check FAILED")
            else:
                parts.append(f"{fmt_rate(r['records_per_s'])} | {fmt_rate(r['mb_per_s'])}")
        print(line(parts, widths))
    for n, why in skipped.items():
        if any(c.name == n for c in comps):
            print(f"{n:26s}  skipped: {why}")

    ratios: Dict[str, Dict[str, Optional[float]]] = {}
    pairs = [("ddb2os C++ bytes", "boto3 bytes"), ("ddb2os Python dict", "boto3 dict"),
             ("ddb2os Python bytes", "boto3 bytes"), ("ddb2os Python dict", "node exact"),
             ("ddb2os C++ bytes", "node exact"), ("ddb2os C++ bytes", "ceiling simdjson"),
             ("ddb2os C++ bytes", "ceiling nlohmann"), ("ddb2os C++ bytes", "ceiling ondemand"),
             ("ceiling ondemand", "boto3 bytes"), ("node exact", "boto3 bytes"),
             ("ceiling json.loads", "boto3 bytes"), ("ddb2os Python dict", "ceiling dict walk"),
             ("ddb2os Python dict (fresh)", "boto3 dict (fresh)"),
             ("ddb2os Python dict (fresh)", "ceiling dict walk (fresh)"),
             ("ceiling dict walk (fresh)", "boto3 dict (fresh)"),
             ("ddb2os Python bytes", "ddb2os Python json.loads+dict")]
    for a, b in pairs:
        row = {}
        for c in cols:
            ra, rb = cell.get((a, c)), cell.get((b, c))
            if ra and rb and ra.get("counted") and rb.get("counted") and "mb_per_s" in ra and "mb_per_s" in rb:
                # Round by round: both sides measured on the same machine state.
                row[c] = statistics.median(x / y for x, y in zip(per_round_rates[(a, c)], per_round_rates[(b, c)]))
        if row:
            ratios[f"{a} / {b}"] = row
    if ratios:
        print("\nRatios (input MB/s):")
        print(line(["pair"] + cols, [44] + [10] * len(cols)))
        for k, row in ratios.items():
            print(line([k] + [f"{row[c]:.2f}x" if c in row else "-" for c in cols], [44] + [10] * len(cols)))

    info = machine_info(cpu)
    info["loadavg_end"] = os.getloadavg()
    doc = {
        "benchmark": "transform",
        "units": {"records_per_s": "stream records per second", "mb_per_s": "1e6 bytes of input event JSON per second",
                  "timing": "per round, the median run after warm-up, of process CPU time (clock=cpu) or wall time; "
                            "a rate is the median of its rounds (mb_per_s_per_round), a ratio the median of "
                            "its per-round ratios; the best run of all rounds is given too"},
        "machine": info,
        "seconds_per_measure": args.seconds,
        "rounds": rounds,
        "reference": ref_name,
        "corpora": {n: {"bytes": c.size, "records": c.records, "path": os.path.relpath(c.path, ROOT)}
                    for n, c in corpora.items()},
        "competitors": {c.name: {"kind": c.kind, "note": c.note, "lossy_numbers": c.lossy,
                                 "set_order_lost": c.set_order_lost} for c in comps},
        "skipped": skipped,
        "results": results,
        "ratios": ratios,
        "wall_seconds": time.time() - started,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False, default=str)
    print(f"\nwrote {os.path.relpath(args.json, ROOT)} in {doc['wall_seconds']:.0f} s "
          f"(load average {info['loadavg_start'][0]:.2f} -> {info['loadavg_end'][0]:.2f})")
    # Benchmarks are not tests: a competitor failing its check is reported (table, JSON), not an exit status.
    return 0


if __name__ == "__main__":
    sys.exit(main())
