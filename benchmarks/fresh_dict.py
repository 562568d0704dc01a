"""How much slower a first call on a fresh event dict is than the repeated calls the transform
benchmark times (`python3 benchmarks/fresh_dict.py`, after `make bench` has generated the corpora).

Lambda hands every invocation a dict just made by json.loads. The transform benchmark times repeated
calls on one dict, as it does for every competitor; ddb2os's dict path then finds state of the first
call's making: the CPU caches hold exactly the objects it reads (on REMOVE-only batches, the Keys among
the OldImages it skips), and non-ASCII strs hold the UTF-8 copy CPython caches in them. A transform
bound by memory latency gains from both; boto3's, bound by its own Python code, does not.
Prints, per corpus, the median over 7 fresh dicts of (first call's CPU time) / (second call's), for
ddb2os.bulk_bodies and for the boto3 reference, each after a warm-up on another fresh dict."""
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


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    for corpus in ("small", "medium", "large", "remove", "6mb"):
        with open(os.path.join(DATA, f"{corpus}.json"), "rb") as f:
            data = f.read()
        for name, fn in (("ddb2os", lambda e: ddb2os.bulk_bodies(e, key_schemas=KEYS)),
                         ("boto3", boto3_ref.bulk_bodies)):
            ratios = []
            for _ in range(7):
                warm = json.loads(data)
                fn(warm)
                fn(warm)
                fresh = json.loads(data)
                gc.collect()
                gc.disable()  # as the benchmark's timing does: no collection owed by json.loads inside a call
                t0 = time.process_time()
                fn(fresh)
                t1 = time.process_time()
                fn(fresh)
                t2 = time.process_time()
                gc.enable()
                ratios.append((t1 - t0) / (t2 - t1))
            print(f"{corpus:7s} {name:7s} first call on a fresh dict / a repeated call: "
                  f"{statistics.median(ratios):.2f}", flush=True)


if __name__ == "__main__":
    main()
