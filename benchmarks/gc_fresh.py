"""What the cyclic garbage collector changes in the dict comparison (`python3 benchmarks/gc_fresh.py`, after
`make bench` has generated the corpora).

The transform benchmark times every competitor with the GC off, as `timeit` does: in its process, a full
collection walks every corpus it keeps parsed, which has nothing to do with the work timed. A Lambda
function's process holds one event and runs with the GC on, and Lambda's runtime parses the event with it
on too, so the event's objects have been through collections before the handler runs. Here each call gets
a dict just made by json.loads, in a process that keeps only the event's bytes, the GC off for both (as the
benchmark) or on for both the parse and the call (as Lambda). Only the call is timed (process CPU time).
Prints, per corpus, the median over `--calls` calls of boto3's reference and of ddb2os.bulk_bodies in each
mode, and boto3 / ddb2os; the four alternate, in `--rounds` rounds."""
import argparse
import gc
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "competitors")]
import boto3_ref  # noqa: E402
import ddb2os  # noqa: E402
import gen_events  # noqa: E402

KEYS = {t: list(ks) for t, ks in gen_events.KEY_SCHEMA.items()}
DATA = os.path.join(HERE, "..", "build", "bench", "data")


def cpu_per_call(fn, data: bytes, gc_on: bool, calls: int) -> float:
    times = []
    for _ in range(calls):
        gc.enable() if gc_on else gc.disable()
        event = json.loads(data)  # with the GC on, collected as Lambda's runtime parse is
        t = time.process_time()
        fn(event)
        times.append(time.process_time() - t)
        event = None
    gc.enable()
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", nargs="*", default=["small", "medium", "large", "remove", "6mb"])
    ap.add_argument("--calls", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    competitors = (("boto3", boto3_ref.bulk_bodies), ("ddb2os", lambda e: ddb2os.bulk_bodies(e, key_schemas=KEYS)))
    print(f"{'corpus':8} {'boto3 off':>10} {'ddb2os off':>11} {'ratio':>6}   {'boto3 on':>9} {'ddb2os on':>10} "
          f"{'ratio':>6}   (ms of CPU per call, medians of {args.rounds} rounds)")
    for corpus in args.corpus:
        with open(os.path.join(DATA, f"{corpus}.json"), "rb") as f:
            data = f.read()
        for _, fn in competitors:  # warm-up: imports, first-call caches
            fn(json.loads(data))
        rounds = {(name, on): [] for name, _ in competitors for on in (False, True)}
        for _ in range(args.rounds):
            for on in (False, True):
                for name, fn in competitors:
                    rounds[(name, on)].append(cpu_per_call(fn, data, on, args.calls))
        m = {k: statistics.median(v) * 1e3 for k, v in rounds.items()}
        print(f"{corpus:8} {m[('boto3', False)]:10.2f} {m[('ddb2os', False)]:11.2f} "
              f"{m[('boto3', False)] / m[('ddb2os', False)]:5.1f}x   {m[('boto3', True)]:9.2f} "
              f"{m[('ddb2os', True)]:10.2f} {m[('boto3', True)] / m[('ddb2os', True)]:5.1f}x", flush=True)


if __name__ == "__main__":
    main()
