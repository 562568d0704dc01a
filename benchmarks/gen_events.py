#!/usr/bin/env python3
"""Deterministic DynamoDB Streams events for the ddb2os benchmarks.

Every byte depends only on the corpus name and the seed: a private SplitMix64 generator is used (never
``random``, ``hash()`` or set/dict iteration of unordered things), so the files are identical on every run and
every Python version.

Events look exactly as Lambda delivers them (``{"Records": [...]}``, DynamoDB JSON with typed attribute values,
stream view ``NEW_AND_OLD_IMAGES``): INSERT carries ``NewImage``, MODIFY ``NewImage`` and ``OldImage``, REMOVE
``OldImage``.  Keys are a composite ``pk`` (S) + ``sk`` (N for table ``Orders``, S for table ``Customers``);
the order of the two attributes inside ``Keys`` varies, as it does in DynamoDB Streams.  Some changes touch a key
that an earlier record of the same batch already touched, so later records supersede earlier ones.

Corpora (``CORPORA``):
  small   1000 records, items of about 300 bytes (DynamoDB JSON of the NewImage)
  medium   500 records, items of about 3 KB: nested maps, lists, sets, B/BS, numbers of every size (38 digits,
           1E-130, 9.99...E+125, 2^53+1, 2^63), unicode (emoji, RTL, NUL, U+2028), some mixed-type lists
  large     24 records, items of about 100 KB
  remove  1000 REMOVE records (about a tenth are TTL deletes with a userIdentity)
  6mb     one event of about 6 MB (under Lambda's 6 MiB payload limit): medium items and a few large ones

CLI:
  python3 benchmarks/gen_events.py --out build/bench/data            # writes <name>.json for every corpus
  python3 benchmarks/gen_events.py --out DIR --corpus small medium   # only some
  python3 benchmarks/gen_events.py --stream 200000 --batch 1000 > changes.jsonl   # one event per line
      (about 900 MB for the medium corpus: prefer the library's iterator, which keeps one batch in memory)

Library:
  corpus_bytes(name) -> bytes            the compact JSON of one corpus (what the CLI writes)
  corpus_event(name) -> dict
  stream_events(total_changes=200000, batch_size=1000, corpus="medium", pool=1024) -> iterator of event dicts
  stream_event_bytes(...) -> iterator of bytes
  KEY_SCHEMA = {"Orders": ["pk", "sk"], "Customers": ["pk", "sk"]}
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import zlib
from typing import Any, Dict, Iterator, List, Optional, Tuple

ACCOUNT = "123456789012"
REGION = "us-east-1"
STREAM_LABEL = "2024-01-01T00:00:00.000"
BASE_TIME = 1704067200  # 2024-01-01T00:00:00Z
KEY_SCHEMA: Dict[str, List[str]] = {"Orders": ["pk", "sk"], "Customers": ["pk", "sk"]}
LAMBDA_MAX_PAYLOAD = 6 * 1024 * 1024


def table_arn(table: str) -> str:
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}/stream/{STREAM_LABEL}"


# --------------------------------------------------------------------------------------------------------------
# Deterministic generator
# --------------------------------------------------------------------------------------------------------------
class Rng:
    """SplitMix64: tiny, fast, identical everywhere."""

    __slots__ = ("state",)
    MASK = (1 << 64) - 1

    def __init__(self, seed: int) -> None:
        self.state = seed & self.MASK

    def u64(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & self.MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & self.MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & self.MASK
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        return self.u64() % n

    def between(self, lo: int, hi: int) -> int:  # inclusive
        return lo + self.below(hi - lo + 1)

    def chance(self, p: float) -> bool:
        return self.u64() < int(p * (1 << 64))

    def choice(self, seq):
        return seq[self.below(len(seq))]

    def digits(self, n: int, first_nonzero: bool = True) -> str:
        out = [str(self.between(1, 9) if first_nonzero else self.below(10))]
        rest = n - 1
        while rest > 0:
            take = min(rest, 18)
            out.append(str(self.u64() % 10 ** take).zfill(take))
            rest -= take
        return "".join(out)

    def hex(self, n: int) -> str:
        out = []
        while n > 0:
            take = min(n, 16)
            out.append(format(self.u64() >> (64 - 4 * take), f"0{take}x"))
            n -= take
        return "".join(out)

    def bytes(self, n: int) -> bytes:
        words = (n + 7) // 8
        return b"".join(self.u64().to_bytes(8, "little") for _ in range(words))[:n]


def seed_of(name: str, seed: int = 0) -> int:
    return (zlib.crc32(name.encode()) << 32) ^ seed ^ 0x5DEECE66D


# --------------------------------------------------------------------------------------------------------------
# Attribute values
# --------------------------------------------------------------------------------------------------------------
WORDS = [
    "order", "widget", "blue", "large", "express", "shipping", "customer", "premium", "garden", "kitchen",
    "search", "stream", "lambda", "index", "document", "river", "mountain", "coffee", "paper", "signal",
    "quantum", "velvet", "harbor", "meadow", "copper", "lantern", "orbit", "pixel", "saffron", "tundra",
]
UNICODE = [
    "café", "naïve", "Straße", "Ångström", "日本語のテキスト", "中文字符", "한국어", "Ελληνικά", "русский текст",
    "עברית", "العربية", "हिन्दी", "🚀", "👩‍💻", "🇫🇷", "e\u0301", "ﬁ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
]
# Characters that must be escaped or that break naive line splitting.
TRICKY = ['"quoted"', "back\\slash", "line\nbreak", "tab\there", "ls\u2028ps\u2029", "nul\u0000byte",
          "ctl\u001fchar", "</script>", "{\"index\":{}}"]


def text(rng: Rng, n_words: int, unicode_rate: float = 0.15, tricky_rate: float = 0.0) -> str:
    parts = []
    for _ in range(n_words):
        if tricky_rate and rng.chance(tricky_rate):
            parts.append(rng.choice(TRICKY))
        elif rng.chance(unicode_rate):
            parts.append(rng.choice(UNICODE))
        else:
            parts.append(rng.choice(WORDS))
    return " ".join(parts)


def S(v: str) -> dict:
    return {"S": v}


def N(v: str) -> dict:
    return {"N": v}


def B(raw: bytes) -> dict:
    return {"B": base64.b64encode(raw).decode("ascii")}


# Numbers of every size DynamoDB allows, written as DynamoDB returns them.
EXTREME_NUMBERS = [
    "1E-130", "-1E-130",
    "9.9999999999999999999999999999999999999E+125", "-9.9999999999999999999999999999999999999E+125",
    "1E+125", "1.5E-100", "6.02214076E+23", "1.602176634E-19",
    "9007199254740993",          # 2^53 + 1: first integer a double cannot hold
    "9223372036854775807",       # 2^63 - 1: OpenSearch long max
    "9223372036854775808",       # 2^63: beyond long
    "-9223372036854775808",
    "18446744073709551615",
    "0.1", "0.30000000000000004", "-0.5", "0",
]


def number(rng: Rng) -> str:
    k = rng.below(10)
    if k <= 2:
        return str(rng.between(-1000, 100000))
    if k == 3:
        return str(rng.between(0, 10 ** 15))
    if k == 4:
        return f"{rng.between(0, 99999)}.{rng.between(1, 99)}".rstrip("0")
    if k == 5:  # 38 significant digits, integral
        return ("-" if rng.chance(0.3) else "") + rng.digits(38)
    if k == 6:  # 38 significant digits, fractional
        d = rng.digits(38)
        cut = rng.between(1, 37)
        return (d[:cut] + "." + d[cut:]).rstrip("0").rstrip(".")
    if k == 7:  # tiny with 38 digits
        return "0.000" + rng.digits(37)
    if k == 8:  # exponent form
        mant = rng.digits(rng.between(1, 20))
        mant = mant[0] + ("." + mant[1:] if len(mant) > 1 else "")
        mant = mant.rstrip("0").rstrip(".") if "." in mant else mant
        return f"{mant}E{rng.choice(['+', '-'])}{rng.between(20, 120)}"
    return rng.choice(EXTREME_NUMBERS)


def price(rng: Rng) -> str:
    return f"{rng.between(0, 9999)}.{rng.between(1, 99):02d}".rstrip("0")


def distinct(rng: Rng, make, n: int) -> list:
    seen: Dict[str, None] = {}
    guard = 0
    while len(seen) < n and guard < n * 20:
        seen.setdefault(make(), None)
        guard += 1
    return list(seen)


def distinct_numbers(rng: Rng, n: int, make=None) -> List[str]:
    from decimal import Decimal
    make = make or (lambda: number(rng))
    out: List[str] = []
    values = set()
    guard = 0
    while len(out) < n and guard < n * 20:
        t = make()
        v = Decimal(t)
        if v not in values:
            values.add(v)
            out.append(t)
        guard += 1
    return out


def mixed_list(rng: Rng) -> dict:
    """A list OpenSearch would reject: values of more than one kind (what the founding Lambdas stringified)."""
    k = rng.below(7)
    if k == 0:
        return {"L": [N(str(rng.between(1, 500))), S(rng.choice(WORDS)), N(number(rng))]}
    if k == 1:
        return {"L": [S(rng.choice(WORDS)), {"BOOL": rng.chance(0.5)}, N(price(rng)), {"NULL": True}]}
    if k == 2:  # nested arrays, flattened by OpenSearch: number + string
        return {"L": [{"L": [N("1"), N("2")]}, {"L": [S("a"), S(rng.choice(UNICODE))]}]}
    if k == 3:  # object + string
        return {"L": [{"M": {"k": S(rng.choice(WORDS)), "n": N(str(rng.between(0, 99)))}}, S("plain")]}
    if k == 4:  # number + nested list of strings
        return {"L": [N(number(rng)), {"L": [S(rng.choice(WORDS)), S(rng.choice(WORDS))]}]}
    if k == 5:  # sets inside a list
        return {"L": [{"SS": distinct(rng, lambda: rng.choice(WORDS), 2)},
                      {"NS": distinct_numbers(rng, 2, lambda: str(rng.between(1, 99)))}]}
    return {"L": [{"BOOL": True}, N("0"), S("false")]}


def small_item(rng: Rng, pk: str, sk: dict) -> Dict[str, Any]:
    item: Dict[str, Any] = {
        "pk": S(pk),
        "sk": sk,
        "name": S(text(rng, rng.between(2, 4), 0.2)),
        "sku": S(f"SKU-{rng.between(10000, 99999)}"),
        "category": S(rng.choice(["books", "garden", "kitchen", "toys", "électronique"])),
        "price": N(price(rng)),
        "qty": N(str(rng.between(0, 500))),
        "active": {"BOOL": rng.chance(0.7)},
        "tags": {"SS": distinct(rng, lambda: rng.choice(WORDS), rng.between(1, 3))},
        "updated": N(str(BASE_TIME + rng.below(10 ** 7))),
    }
    if rng.chance(0.3):
        item["note"] = {"NULL": True}
    if rng.chance(0.05):
        item["misc"] = mixed_list(rng)
    return item


def line_item(rng: Rng) -> dict:
    return {"M": {
        "sku": S(f"SKU-{rng.between(10000, 99999)}"),
        "qty": N(str(rng.between(1, 12))),
        "unit_price": N(price(rng)),
        "options": {"M": {"color": S(rng.choice(["red", "green", "blue", "noir", "смарагд"])),
                          "size": S(rng.choice(["S", "M", "L", "XL"]))}},
        "gift": {"BOOL": rng.chance(0.2)},
    }}


def medium_item(rng: Rng, pk: str, sk: dict, mixed_rate: float = 0.2) -> Dict[str, Any]:
    numbers = {}
    for i in range(rng.between(3, 6)):
        numbers[f"n{i}"] = N(number(rng))
    numbers["extreme"] = N(rng.choice(EXTREME_NUMBERS))
    item: Dict[str, Any] = {
        "pk": S(pk),
        "sk": sk,
        "title": S(text(rng, rng.between(3, 8), 0.3)),
        "description": S(text(rng, rng.between(40, 90), 0.15, 0.02)),
        "status": S(rng.choice(["NEW", "PAID", "SHIPPED", "DELIVERED", "RETURNED"])),
        "active": {"BOOL": rng.chance(0.8)},
        "deleted_at": {"NULL": True},
        "price": N(price(rng)),
        "quantity": N(str(rng.between(1, 1000))),
        "rating": N(f"{rng.between(0, 4)}.{rng.between(0, 9)}{rng.between(1, 9)}"),
        "numbers": {"M": numbers},
        "counters": {"M": {
            "views": N(str(rng.between(0, 10 ** 12))),
            "likes": N(str(rng.between(0, 10 ** 6))),
            "ratio": N("0." + rng.digits(38)),
        }},
        "address": {"M": {
            "street": S(f"{rng.between(1, 9999)} {rng.choice(WORDS).title()} Street"),
            "city": S(rng.choice(["Paris", "東京", "São Paulo", "Zürich", "Reykjavík", "Seattle"])),
            "zip": S(f"{rng.between(0, 99999):05d}"),
            "geo": {"M": {"lat": N(f"{rng.between(-89, 89)}.{rng.digits(6, False)}"),
                          "lon": N(f"{rng.between(-179, 179)}.{rng.digits(6, False)}")}},
        }},
        "tags": {"SS": distinct(rng, lambda: text(rng, 1, 0.3), rng.between(3, 8))},
        "scores": {"NS": distinct_numbers(rng, rng.between(3, 8))},
        "thumbs": {"BS": [base64.b64encode(b).decode("ascii")
                          for b in distinct(rng, lambda: rng.bytes(rng.between(8, 48)), rng.between(1, 3))]},
        "avatar": B(rng.bytes(rng.between(16, 96))),
        "line_items": {"L": [line_item(rng) for _ in range(rng.between(3, 7))]},
        "history": {"L": [N(str(rng.between(0, 10 ** 6))) for _ in range(rng.between(5, 20))]},
        "labels": {"L": [S(text(rng, 1, 0.25)) for _ in range(rng.between(2, 6))]},
        "matrix": {"L": [{"L": [N(str(rng.between(-99, 99))) for _ in range(3)]} for _ in range(3)]},
        "empty_map": {"M": {}},
        "empty_list": {"L": []},
        "empty_string": S(""),
    }
    if rng.chance(mixed_rate):
        item["mixed"] = mixed_list(rng)
        if rng.chance(0.3):  # a mixed list deeper down
            item["address"]["M"]["extra"] = {"M": {"codes": mixed_list(rng)}}
    return item


def large_item(rng: Rng, pk: str, sk: dict, target: int = 100_000) -> Dict[str, Any]:
    item = medium_item(rng, pk, sk, mixed_rate=0.5)
    item["body"] = S(text(rng, 3000, 0.1, 0.002))
    item["samples"] = {"NS": distinct_numbers(rng, 400)}
    item["blobs"] = {"BS": [base64.b64encode(b).decode("ascii")
                            for b in distinct(rng, lambda: rng.bytes(rng.between(200, 600)), 20)]}
    events: List[dict] = []
    item["events"] = {"L": events}
    size = len(compact(item))
    while size < target:
        ev = {"M": {
            "at": N(str(BASE_TIME + rng.below(10 ** 8))),
            "kind": S(rng.choice(["view", "click", "cart", "buy", "refund"])),
            "by": S(f"user#{rng.between(1, 10 ** 6)}"),
            "amount": N(number(rng)),
            "meta": {"M": {"ua": S(text(rng, 4, 0.1)), "ok": {"BOOL": rng.chance(0.9)}}},
        }}
        events.append(ev)
        size += len(compact(ev)) + 1
    return item


def compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# --------------------------------------------------------------------------------------------------------------
# Changes and records
# --------------------------------------------------------------------------------------------------------------
class KeySet:
    """An indexable set of keys with O(1) add, remove and random pick (insertion-ordered, deterministic)."""

    def __init__(self) -> None:
        self.items: List[Tuple[str, str, dict]] = []
        self.pos: Dict[Tuple[str, str, str], int] = {}

    @staticmethod
    def kid(key: Tuple[str, str, dict]) -> Tuple[str, str, str]:
        table, pk, sk = key
        return table, pk, json.dumps(sk, sort_keys=True)

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, key) -> bool:
        return self.kid(key) in self.pos

    def add(self, key) -> None:
        k = self.kid(key)
        if k not in self.pos:
            self.pos[k] = len(self.items)
            self.items.append(key)

    def discard(self, key) -> None:
        i = self.pos.pop(self.kid(key), None)
        if i is None:
            return
        last = self.items.pop()
        if i < len(self.items):
            self.items[i] = last
            self.pos[self.kid(last)] = i

    def pick(self, rng: Rng):
        return self.items[rng.below(len(self.items))]


class Simulator:
    """Produces a deterministic sequence of stream records over a key space.

    ``live`` holds the keys that currently exist.  With ``preexisting`` (the file corpora, which start
    mid-stream), MODIFY and REMOVE touch keys the table already held; otherwise (the stream, which starts from
    an empty table) they touch live keys.  With probability ``repeat_rate`` a change touches a key already
    touched in the current batch (a MODIFY or REMOVE of a key still live, an INSERT of a key removed earlier),
    so that later records supersede earlier ones.
    """

    def __init__(self, name: str, seed: int, size: str, preexisting: bool = True,
                 mix: Tuple[float, float, float] = (0.55, 0.30, 0.15), repeat_rate: float = 0.06,
                 pool: int = 0) -> None:
        self.rng = Rng(seed_of(name, seed))
        # pool > 0: items are drawn from that many pre-generated bodies (fresh keys, price, quantity, status),
        # about 20 times faster: what long streams use.
        self.pool_size = pool
        self.pool: List[dict] = []
        self.size = size
        self.preexisting = preexisting
        self.mix = mix
        self.repeat_rate = repeat_rate
        self.live = KeySet()
        self.images: Dict[Tuple[str, str, str], Any] = {}  # compact JSON (or the dict, from a pool)
        self.batch_live = KeySet()      # touched in this batch and live
        self.batch_removed = KeySet()   # removed in this batch
        self.counter = 0
        self.seq = 0

    def new_key(self) -> Tuple[str, str, dict]:
        rng = self.rng
        self.counter += 1
        table = "Orders" if rng.chance(0.75) else "Customers"
        c = self.counter
        r = rng.below(100)
        if r < 2:
            pk = f"tenant|{c}\\x"         # '|' and '\' inside a key: must be escaped in the _id
        elif r < 5:
            pk = f"用户#{c}"
        elif r < 6:
            pk = f"user#{c}#" + "k" * 600  # very long key: _id beyond 512 bytes
        else:
            pk = f"user#{c:07d}"
        if table == "Orders":
            sk = N(str(rng.between(1, 10 ** 9)) if rng.chance(0.8) else rng.choice(["-7", "3.25", "1E+30"]))
        else:
            sk = S(rng.choice(["profile", "address#home", "address#work", "pref|ui", "a\\b"]) + f"#{c % 97}")
        return table, pk, sk

    def make_item(self, key, size: Optional[str] = None) -> dict:
        table, pk, sk = key
        size = size or self.size
        if self.pool_size:
            rng = self.rng
            if not self.pool:
                self.pool = [self._fresh_item(("Orders", "pool", N("0")), size) for _ in range(self.pool_size)]
            item = dict(self.pool[rng.below(self.pool_size)])
            item["pk"] = S(pk)
            item["sk"] = sk
            if "quantity" in item:
                item["quantity"] = N(str(rng.between(1, 1000)))
                item["status"] = S(rng.choice(["NEW", "PAID", "SHIPPED", "DELIVERED", "RETURNED"]))
            else:
                item["qty"] = N(str(rng.between(0, 500)))
            item["price"] = N(price(rng))
            return item
        return self._fresh_item(key, size)

    def _fresh_item(self, key, size: str) -> dict:
        table, pk, sk = key
        if size == "small":
            return small_item(self.rng, pk, sk)
        if size == "large":
            return large_item(self.rng, pk, sk)
        return medium_item(self.rng, pk, sk)

    def record(self, op: Optional[str] = None, size: Optional[str] = None, ttl_rate: float = 0.0) -> dict:
        rng = self.rng
        if op is None:
            x = rng.u64() / float(1 << 64)
            op = "INSERT" if x < self.mix[0] else ("MODIFY" if x < self.mix[0] + self.mix[1] else "REMOVE")
        if op == "INSERT":
            if self.batch_removed and rng.chance(self.repeat_rate):
                key = self.batch_removed.pick(rng)
            else:
                key = self.new_key()
        elif self.batch_live and rng.chance(self.repeat_rate):
            key = self.batch_live.pick(rng)
        elif self.preexisting:
            key = self.new_key()
        elif self.live:
            key = self.live.pick(rng)
        else:
            op, key = "INSERT", self.new_key()
        k = KeySet.kid(key)
        old = self.images.get(k)
        if isinstance(old, bytes):
            old = json.loads(old)
        if old is None and op != "INSERT":
            old = self.make_item(key, size)
        ddb: Dict[str, Any] = {"ApproximateCreationDateTime": BASE_TIME + self.seq // 50}
        table, pk, sk = key
        keys = {"pk": S(pk), "sk": sk} if rng.chance(0.7) else {"sk": sk, "pk": S(pk)}
        ddb["Keys"] = keys
        if op in ("INSERT", "MODIFY"):
            new = self.make_item(key, size)
            ddb["NewImage"] = new
            if op == "MODIFY":
                ddb["OldImage"] = old
            if self.pool_size:  # shares its big values with the pool: cheap to keep
                self.images[k] = new
                size_bytes = 3000 if self.size == "medium" else 300 if self.size == "small" else 100000
            else:
                new_bytes = compact(new)
                self.images[k] = new_bytes
                size_bytes = len(new_bytes)
            self.live.add(key)
            self.batch_live.add(key)
            self.batch_removed.discard(key)
        else:
            ddb["OldImage"] = old
            self.images.pop(k, None)
            self.live.discard(key)
            self.batch_live.discard(key)
            self.batch_removed.add(key)
            size_bytes = 100 + (len(compact(old)) if not self.pool_size else 0)
        self.seq += 1
        ddb["SequenceNumber"] = str(100000000000000000000 + self.seq * 1000 + rng.below(1000))
        ddb["SizeBytes"] = size_bytes
        ddb["StreamViewType"] = "NEW_AND_OLD_IMAGES"
        rec: Dict[str, Any] = {
            "eventID": rng.hex(32),
            "eventName": op,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": REGION,
            "dynamodb": ddb,
            "eventSourceARN": table_arn(table),
        }
        if op == "REMOVE" and ttl_rate and rng.chance(ttl_rate):
            rec["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
        return rec

    def new_batch(self) -> None:
        self.batch_live = KeySet()
        self.batch_removed = KeySet()
        if not self.preexisting:
            return
        # File corpora: nothing to remember across batches.
        self.images.clear()
        self.live = KeySet()


# --------------------------------------------------------------------------------------------------------------
# Corpora
# --------------------------------------------------------------------------------------------------------------
CORPORA = ["small", "medium", "large", "remove", "6mb"]


def corpus_event(name: str, seed: int = 0) -> Dict[str, Any]:
    if name == "small":
        sim = Simulator(name, seed, "small")
        recs = [sim.record() for _ in range(1000)]
    elif name == "medium":
        sim = Simulator(name, seed, "medium")
        recs = [sim.record() for _ in range(500)]
    elif name == "large":
        sim = Simulator(name, seed, "large")
        recs = [sim.record() for _ in range(24)]
    elif name == "remove":
        sim = Simulator(name, seed, "small")
        recs = [sim.record("REMOVE", ttl_rate=0.1) for _ in range(1000)]
    elif name == "6mb":
        # Fill to just under Lambda's 6 MiB payload limit (about 6 MB), with a large item every 40 records.
        sim = Simulator(name, seed, "medium")
        recs = []
        total = len(b'{"Records":[]}')
        budget = LAMBDA_MAX_PAYLOAD - 64 * 1024
        i = 0
        while True:
            rec = sim.record(size="large" if i % 40 == 39 else None)
            n = len(compact(rec)) + 1
            if total + n > budget:
                break
            recs.append(rec)
            total += n
            i += 1
    else:
        raise ValueError(f"unknown corpus {name!r}; known: {', '.join(CORPORA)}")
    return {"Records": recs}


def corpus_bytes(name: str, seed: int = 0) -> bytes:
    return compact(corpus_event(name, seed))


def _stream_records(total_changes: int, batch_size: int, corpus: str, seed: int,
                    pool: int) -> Iterator[List[Tuple[dict, bytes]]]:
    if batch_size < 1 or batch_size > 10000:
        raise ValueError("batch_size must be in 1..10000 (Lambda's DynamoDB Streams maximum)")
    size = {"small": "small", "medium": "medium", "large": "large"}.get(corpus)
    if size is None:
        raise ValueError("streaming corpus must be small, medium or large")
    sim = Simulator("stream-" + corpus, seed, size, preexisting=False, pool=pool)
    done = 0
    pending: Optional[Tuple[dict, bytes]] = None
    while done < total_changes:
        sim.new_batch()
        recs: List[Tuple[dict, bytes]] = []
        total = len(b'{"Records":[]}')
        while len(recs) < batch_size and done < total_changes:
            if pending is not None:
                item, pending = pending, None
            else:
                rec = sim.record()
                item = (rec, compact(rec))
            n = len(item[1]) + 1
            if recs and total + n > LAMBDA_MAX_PAYLOAD:
                pending = item
                break
            recs.append(item)
            total += n
            done += 1
        yield recs


def stream_events(total_changes: int = 200_000, batch_size: int = 1000, corpus: str = "medium",
                  seed: int = 0, pool: int = 1024) -> Iterator[Dict[str, Any]]:
    """Yield events of at most ``batch_size`` records, ``total_changes`` records in all.

    The table starts empty: INSERTs create keys, MODIFYs and REMOVEs touch keys that exist at that point
    (some of them touched earlier in the same batch), so replaying the events in order against an empty index
    gives a well-defined final state.  Every event stays under Lambda's 6 MiB payload limit (a batch is cut
    early if needed).  ``stream_event_bytes`` yields the same events as compact JSON bytes.

    Item bodies come from a pool of ``pool`` pre-generated items of the corpus (each change gets its own key,
    price, quantity and status), which generates about 20 times faster than fresh items (about 1 ms each);
    ``pool=0`` generates every item afresh.  The events share objects with the pool: do not mutate them.
    """
    for recs in _stream_records(total_changes, batch_size, corpus, seed, pool):
        yield {"Records": [r for r, _ in recs]}


def stream_event_bytes(total_changes: int = 200_000, batch_size: int = 1000, corpus: str = "medium",
                       seed: int = 0, pool: int = 1024) -> Iterator[bytes]:
    for recs in _stream_records(total_changes, batch_size, corpus, seed, pool):
        yield b'{"Records":[' + b",".join(b for _, b in recs) + b"]}"


def describe(data: bytes) -> Dict[str, Any]:
    ev = json.loads(data)
    recs = ev["Records"]
    ops: Dict[str, int] = {}
    new_sizes = []
    keys = {}
    for r in recs:
        ops[r["eventName"]] = ops.get(r["eventName"], 0) + 1
        img = r["dynamodb"].get("NewImage") or r["dynamodb"].get("OldImage")
        new_sizes.append(len(compact(img)))
        k = (r["eventSourceARN"], json.dumps(r["dynamodb"]["Keys"], sort_keys=True))
        keys[k] = keys.get(k, 0) + 1
    return {
        "bytes": len(data),
        "records": len(recs),
        "ops": ops,
        "avg_item_bytes": round(sum(new_sizes) / max(1, len(new_sizes))),
        "superseded": sum(v - 1 for v in keys.values()),
    }


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", help="directory for <corpus>.json files")
    ap.add_argument("--corpus", nargs="*", default=CORPORA, choices=CORPORA)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stream", type=int, metavar="CHANGES",
                    help="write CHANGES changes as events, one compact JSON event per line, to stdout")
    ap.add_argument("--batch", type=int, default=1000, help="records per streamed event (default 1000)")
    ap.add_argument("--stream-corpus", default="medium", choices=["small", "medium", "large"])
    ap.add_argument("--pool", type=int, default=1024,
                    help="streamed items are drawn from POOL pre-generated bodies (0: every item fresh, slower)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)

    if args.stream is not None:
        out = sys.stdout.buffer
        for data in stream_event_bytes(args.stream, args.batch, args.stream_corpus, args.seed, args.pool):
            out.write(data)
            out.write(b"\n")
        return 0
    if not args.out:
        ap.error("--out DIR or --stream N is required")
    os.makedirs(args.out, exist_ok=True)
    for name in args.corpus:
        data = corpus_bytes(name, args.seed)
        path = os.path.join(args.out, f"{name}.json")
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        if not args.quiet:
            d = describe(data)
            print(f"{path}: {d['bytes']:,} bytes, {d['records']} records {d['ops']}, "
                  f"avg item {d['avg_item_bytes']:,} B, {d['superseded']} superseded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
