#!/usr/bin/env python3
"""Semantic comparison of two OpenSearch ``_bulk`` NDJSON outputs (a reference and a candidate).

    python3 benchmarks/check.py REFERENCE.ndjson CANDIDATE.ndjson [--event EVENT.json]
                                [--lossy] [--set-order-lost] [--strict-order] [--json]

Exit status 0 when equal under the rules below, 1 when not, 2 on unreadable input.

Rules
-----
* Lines are split on ``\\n`` only (U+2028/U+2029 inside a line are data, not line breaks). Every line must be
  JSON; ``index``/``create``/``update`` action lines are followed by their document line, ``delete`` is not.
* Actions are compared AS A SET AFTER DEDUP: on each side only the last action per (``_index``, ``_id``) counts
  (that is what ddb2os emits; the boto3 and Node references emit one action per record, and OpenSearch applies
  them in order, so the final state is the same). Both sides must hold the same (_index, _id) keys with the
  same op and equal documents. Whether the surviving actions come in the same order is reported;
  ``--strict-order`` makes a different order a failure. The number of superseded actions per side is reported.
* Documents: objects compare by key (attribute order is not significant: JS objects reorder index-like keys);
  arrays in order; strings, booleans and null exactly.
* Numbers compare BY VALUE (``Decimal``, exact: ``1E+2`` equals ``100``). A pair that differs but rounds to the
  same IEEE double (``float(a) == float(b)``) is a PRECISION LOSS: allowed only with ``--lossy`` (a competitor
  that writes doubles, e.g. the boto3 reference's ``float(Decimal)`` or Node without ``wrapNumbers``) and always
  reported, by field path, with the side that lost it (the side whose text is exactly a double).
  Any other difference is a mismatch.
* Mixed-type lists: both documents are first normalized with issue 2's ``stringify`` policy (idempotent on
  already-normalized output, so a ``keep`` competitor compares too). Inside such lists numbers are strings:
  two strings that are both JSON number texts compare by value as above (``"1E-7"`` vs ``"0.0000001"`` is
  equal, reported as a text difference), and two strings that are both JSON objects (stringified objects)
  are parsed, normalized and compared recursively.
* Sets (SS/NS/BS) have no order in the boto3 reference (Python sets). With ``--event`` the checker knows which
  paths of each final document are sets (from the record's NewImage) and compares those order-free when
  ``--set-order-lost`` is given; without ``--event`` any array of scalars may match order-free under
  ``--set-order-lost``. Every order-free match is reported.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from decimal import Decimal, InvalidOperation
from typing import Any, Dict, List, Optional, Set, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "competitors"))

DOC_OPS = ("index", "create", "update")
NUMBER_RE = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?\Z")


class Malformed(Exception):
    pass


def _loads(text: bytes) -> Any:
    return json.loads(text, parse_float=Decimal, parse_int=Decimal)


def parse_bulk(data: bytes) -> Tuple[Dict[Tuple[str, str], Tuple[str, Any, int]], int, int]:
    """Returns ({(index, id): (op, doc, position)} keeping the last action per key, actions, superseded)."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    final: Dict[Tuple[str, str], Tuple[str, Any, int]] = {}
    actions = superseded = 0
    i = 0
    while i < len(lines):
        line = lines[i]
        try:
            action = json.loads(line)
        except ValueError as e:
            raise Malformed(f"line {i + 1}: not JSON ({e}): {line[:120]!r}")
        if not isinstance(action, dict) or len(action) != 1:
            raise Malformed(f"line {i + 1}: not an action line: {line[:120]!r}")
        (op, meta), = action.items()
        if not isinstance(meta, dict) or "_id" not in meta or "_index" not in meta:
            raise Malformed(f"line {i + 1}: action without _index/_id: {line[:120]!r}")
        doc = None
        if op in DOC_OPS:
            if i + 1 >= len(lines):
                raise Malformed(f"line {i + 1}: {op} action without a document line")
            try:
                doc = _loads(lines[i + 1])
            except ValueError as e:
                raise Malformed(f"line {i + 2}: document is not JSON ({e})")
            if not isinstance(doc, dict):
                raise Malformed(f"line {i + 2}: document is not an object")
            i += 2
        elif op == "delete":
            i += 1
        else:
            raise Malformed(f"line {i + 1}: unknown action {op!r}")
        key = (meta["_index"], meta["_id"])
        if key in final:
            superseded += 1
            del final[key]  # re-insert so dict order is the order of last occurrence
        final[key] = (op, doc, actions)
        actions += 1
    return final, actions, superseded


# ---- normalization (issue 2, policy `stringify`) on parsed JSON (Decimal numbers) ---------------------------
def _kinds(values, acc: set) -> set:
    for v in values:
        if v is None:
            continue
        if isinstance(v, list):
            _kinds(v, acc)
        elif isinstance(v, dict):
            acc.add("object")
        elif isinstance(v, str):
            acc.add("string")
        elif isinstance(v, bool):
            acc.add("boolean")
        else:
            acc.add("number")
    return acc


def _dump(v: Any) -> str:
    """Compact JSON with Decimal numbers written exactly (their text)."""
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + _dump(x) for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ",".join(_dump(x) for x in v) + "]"
    if isinstance(v, Decimal):
        return str(v)
    return json.dumps(v, ensure_ascii=False)


def _stringify(v: Any) -> Any:
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, list):
        return [_stringify(x) for x in v]
    if isinstance(v, dict):
        return _dump(normalize(v))
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def normalize(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: normalize(x) for k, x in v.items()}
    if isinstance(v, list):
        if len(_kinds(v, set())) > 1:
            return [_stringify(x) for x in v]
        return [normalize(x) for x in v]
    return v


# ---- set paths from the event ------------------------------------------------------------------------------
def set_paths_from_event(event: Dict[str, Any], key_schema=None) -> Dict[Tuple[str, str], Set[str]]:
    import boto3_ref  # the same _id and index rules as the references

    schema = key_schema or boto3_ref.KEY_SCHEMA
    out: Dict[Tuple[str, str], Set[str]] = {}

    def walk(av: Dict[str, Any], path: str, acc: Set[str]) -> None:
        for t, v in av.items():
            if t in ("SS", "NS", "BS"):
                acc.add(path)
            elif t == "M":
                for k, x in v.items():
                    walk(x, f"{path}.{k}", acc)
            elif t == "L":
                for i, x in enumerate(v):
                    walk(x, f"{path}[{i}]", acc)

    for rec in event.get("Records", []):
        ddb = rec["dynamodb"]
        table = boto3_ref.table_of(rec["eventSourceARN"])
        key = (table.lower(), boto3_ref.document_id(ddb["Keys"], table, schema))
        acc: Set[str] = set()
        for name, av in (ddb.get("NewImage") or {}).items():
            walk(av, "." + name, acc)
        out[key] = acc
    return out


# ---- comparison -------------------------------------------------------------------------------------------
def _is_double_text(d: Decimal) -> bool:
    """True when d is exactly what a double prints as (the lossy side of a precision difference)."""
    try:
        return Decimal(repr(float(d))) == d
    except (OverflowError, InvalidOperation, ValueError):
        return False


def _generic(path: str) -> str:
    return re.sub(r"\[\d+\]", "[]", path)


class Report:
    def __init__(self, lossy_ok: bool, set_order_ok: bool, max_examples: int) -> None:
        self.lossy_ok = lossy_ok
        self.set_order_ok = set_order_ok
        self.max_examples = max_examples
        self.mismatches: List[str] = []
        self.mismatch_count = 0
        self.lossy: Dict[str, Dict[str, Any]] = {}
        self.lossy_count = 0
        self.set_reorders: Dict[str, int] = {}
        self.number_text: Dict[str, int] = {}

    def mismatch(self, where: str, msg: str) -> None:
        self.mismatch_count += 1
        if len(self.mismatches) < self.max_examples:
            self.mismatches.append(f"{where}: {msg}")

    def precision(self, where: str, path: str, ref: Decimal, cand: Decimal) -> None:
        self.lossy_count += 1
        side = "candidate" if _is_double_text(cand) and not _is_double_text(ref) else (
            "reference" if _is_double_text(ref) and not _is_double_text(cand) else "both")
        g = _generic(path)
        e = self.lossy.setdefault(g, {"count": 0, "lost_by": {}, "example": None})
        e["count"] += 1
        e["lost_by"][side] = e["lost_by"].get(side, 0) + 1
        if e["example"] is None:
            e["example"] = {"id": where, "reference": str(ref), "candidate": str(cand)}
        if not self.lossy_ok:
            self.mismatch(where, f"{path}: {ref} != {cand} (precision lost by {side})")


class Comparer:
    def __init__(self, report: Report, set_paths: Optional[Set[str]], where: str) -> None:
        self.r = report
        self.set_paths = set_paths
        self.where = where

    def value(self, a: Any, b: Any, path: str) -> bool:
        ta, tb = type(a), type(b)
        if ta is dict and tb is dict:
            ok = True
            for k in a:
                if k not in b:
                    self.r.mismatch(self.where, f"{path}.{k}: missing in candidate")
                    ok = False
                else:
                    ok &= self.value(a[k], b[k], f"{path}.{k}")
            for k in b:
                if k not in a:
                    self.r.mismatch(self.where, f"{path}.{k}: extra in candidate")
                    ok = False
            return ok
        if ta is list and tb is list:
            return self.array(a, b, path)
        if ta is Decimal and tb is Decimal:
            return self.number(a, b, path)
        if ta is str and tb is str:
            if a == b:
                return True
            return self.strings(a, b, path)
        if ta is tb and a == b:  # bool, None
            return True
        self.r.mismatch(self.where, f"{path}: {_short(a)} != {_short(b)}")
        return False

    def number(self, a: Decimal, b: Decimal, path: str) -> bool:
        if a == b:
            return True
        try:
            same_double = float(a) == float(b)
        except (OverflowError, ValueError):
            same_double = False
        if same_double:
            self.r.precision(self.where, path, a, b)
            return self.r.lossy_ok
        self.r.mismatch(self.where, f"{path}: number {a} != {b}")
        return False

    def strings(self, a: str, b: str, path: str) -> bool:
        if NUMBER_RE.match(a) and NUMBER_RE.match(b):
            da, db = Decimal(a), Decimal(b)
            if da == db:
                g = _generic(path)
                self.r.number_text[g] = self.r.number_text.get(g, 0) + 1
                return True
            return self.number(da, db, path)
        if a[:1] == "{" and b[:1] == "{":
            try:
                oa, ob = normalize(_loads(a)), normalize(_loads(b))
            except ValueError:
                oa = ob = None
            if oa is not None:
                return self.value(oa, ob, path + "<json>")
        self.r.mismatch(self.where, f"{path}: {_short(a)} != {_short(b)}")
        return False

    def array(self, a: list, b: list, path: str) -> bool:
        if len(a) != len(b):
            self.r.mismatch(self.where, f"{path}: {len(a)} elements != {len(b)}")
            return False
        # Try in order silently first when a set reorder is possible.
        may_reorder = self.r.set_order_ok and (
            path in self.set_paths if self.set_paths is not None
            else all(not isinstance(x, (dict, list)) for x in a))
        if may_reorder:
            probe = Comparer(Report(self.r.lossy_ok, False, 0), self.set_paths, self.where)
            if all(probe.value(x, y, f"{path}[{i}]") for i, (x, y) in enumerate(zip(a, b))):
                return self.array_in_order(a, b, path)
            sa, sb = sorted(a, key=_scalar_key), sorted(b, key=_scalar_key)
            probe = Comparer(Report(self.r.lossy_ok, False, 0), self.set_paths, self.where)
            if all(probe.value(x, y, f"{path}[]") for x, y in zip(sa, sb)):
                g = _generic(path)
                self.r.set_reorders[g] = self.r.set_reorders.get(g, 0) + 1
                return self.array_in_order(sa, sb, path + "{set}")
        return self.array_in_order(a, b, path)

    def array_in_order(self, a: list, b: list, path: str) -> bool:
        ok = True
        for i, (x, y) in enumerate(zip(a, b)):
            ok &= self.value(x, y, f"{path}[{i}]")
        return ok


def _scalar_key(v: Any):
    if isinstance(v, bool):
        return (1, int(v), "")
    if isinstance(v, Decimal):
        return (0, float(v), str(v))
    if isinstance(v, str):
        if NUMBER_RE.match(v):
            return (0, float(v), v)
        return (2, 0, v)
    return (3, 0, repr(v))


def _short(v: Any) -> str:
    s = _dump(v)
    return s if len(s) <= 80 else s[:77] + "..."


def compare(reference: bytes, candidate: bytes, event: Optional[Dict[str, Any]] = None, lossy: bool = False,
            set_order_lost: bool = False, strict_order: bool = False, max_examples: int = 20) -> Dict[str, Any]:
    """Compare two bulk outputs. Returns a JSON-able report with ``ok``."""
    report = Report(lossy, set_order_lost, max_examples)
    try:
        ref, ref_actions, ref_sup = parse_bulk(reference)
    except Malformed as e:
        return {"ok": False, "error": f"reference: {e}"}
    try:
        cand, cand_actions, cand_sup = parse_bulk(candidate)
    except Malformed as e:
        return {"ok": False, "error": f"candidate: {e}"}
    set_paths = set_paths_from_event(event) if event is not None else None
    missing = [k for k in ref if k not in cand]
    extra = [k for k in cand if k not in ref]
    for k in missing[:max_examples]:
        report.mismatch(f"{k[0]}/{k[1]}", "action missing in candidate")
    for k in extra[:max_examples]:
        report.mismatch(f"{k[0]}/{k[1]}", "extra action in candidate")
    report.mismatch_count += max(0, len(missing) - max_examples) + max(0, len(extra) - max_examples)
    for key, (op, doc, _) in ref.items():
        if key not in cand:
            continue
        where = f"{key[0]}/{key[1]}"
        cop, cdoc, _ = cand[key]
        if op != cop:
            report.mismatch(where, f"op {op} != {cop}")
            continue
        if doc is not None or cdoc is not None:
            paths = set_paths.get(key, set()) if set_paths is not None else None
            Comparer(report, paths, where).value(normalize(doc), normalize(cdoc), "")
    common_ref = [k for k in ref if k in cand]
    common_cand = [k for k in cand if k in ref]
    same_order = common_ref == common_cand
    if strict_order and not same_order:
        report.mismatch("order", "surviving actions are in a different order")
    ok = report.mismatch_count == 0
    return {
        "ok": ok,
        "reference": {"actions": ref_actions, "superseded": ref_sup, "final": len(ref)},
        "candidate": {"actions": cand_actions, "superseded": cand_sup, "final": len(cand)},
        "same_order": same_order,
        "mismatches": report.mismatch_count,
        "mismatch_examples": report.mismatches,
        "precision_lost": {"values": report.lossy_count, "fields": report.lossy},
        "set_reorders": report.set_reorders,
        "number_text_differences": report.number_text,
    }


def summary(rep: Dict[str, Any]) -> str:
    if "error" in rep:
        return f"FAIL: {rep['error']}"
    lines = [("OK" if rep["ok"] else "FAIL") +
             f": {rep['reference']['final']} final actions (reference {rep['reference']['actions']} actions,"
             f" {rep['reference']['superseded']} superseded; candidate {rep['candidate']['actions']},"
             f" {rep['candidate']['superseded']} superseded); order {'same' if rep['same_order'] else 'differs'}"]
    for m in rep["mismatch_examples"]:
        lines.append(f"  mismatch {m}")
    if rep["mismatches"] > len(rep["mismatch_examples"]):
        lines.append(f"  ... {rep['mismatches']} mismatches in all")
    pl = rep["precision_lost"]
    if pl["values"]:
        lines.append(f"  precision lost in {pl['values']} values, {len(pl['fields'])} fields:")
        for path, e in sorted(pl["fields"].items(), key=lambda kv: -kv[1]["count"]):
            ex = e["example"]
            lines.append(f"    {path or '.'}: {e['count']}x lost by {e['lost_by']}, e.g. {ex['reference']} -> "
                         f"{ex['candidate']}")
    if rep["set_reorders"]:
        lines.append(f"  sets matched order-free: {sum(rep['set_reorders'].values())} "
                     f"({', '.join(sorted(rep['set_reorders']))})")
    if rep["number_text_differences"]:
        lines.append(f"  number texts equal by value only (in stringified lists): "
                     f"{sum(rep['number_text_differences'].values())}")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="Compare two _bulk NDJSON outputs semantically.")
    ap.add_argument("reference")
    ap.add_argument("candidate")
    ap.add_argument("--event", help="the input event: tells which document paths are DynamoDB sets")
    ap.add_argument("--lossy", action="store_true", help="allow numbers that differ only by double rounding")
    ap.add_argument("--set-order-lost", action="store_true", help="allow sets in another order")
    ap.add_argument("--strict-order", action="store_true", help="surviving actions must come in the same order")
    ap.add_argument("--max-examples", type=int, default=20)
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    args = ap.parse_args(argv)
    try:
        with open(args.reference, "rb") as f:
            ref = f.read()
        with open(args.candidate, "rb") as f:
            cand = f.read()
        event = None
        if args.event:
            with open(args.event, "rb") as f:
                event = json.loads(f.read())
    except OSError as e:
        print(e, file=sys.stderr)
        return 2
    rep = compare(ref, cand, event, args.lossy, args.set_order_lost, args.strict_order, args.max_examples)
    print(json.dumps(rep, indent=1, ensure_ascii=False) if args.json else summary(rep))
    return 0 if rep["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
