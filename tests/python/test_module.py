"""The Python module: `import ddb2os`, the same core as the C++ library and CLI."""
import base64
import datetime
import decimal
import json
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ddb2os
from boto3.dynamodb.types import Binary, TypeDeserializer

DESERIALIZER = TypeDeserializer()
ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/Books/stream/2024-01-01T00:00:00.000"

# ---------------------------------------------------------------- generated DynamoDB values
# Each strategy yields a pair: (the value as a stream event carries it, B as base64 text;
#                                the value as boto3 returns it, B as bytes).

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)


@st.composite
def number_text(draw):
    coef = draw(st.one_of(st.integers(0, 999), st.integers(0, 10**38 - 1)))
    if coef == 0:
        exp = draw(st.integers(-100, 100))
    else:
        digits = len(str(coef))
        exp = draw(st.integers(-130 - (digits - 1), 125 - (digits - 1)))
    sign = draw(st.sampled_from(["", "-"]))
    form = draw(st.sampled_from(["sci", "plain"]))
    d = decimal.Decimal(f"{sign}{coef}E{exp}")
    plain = format(d, "f")
    # boto3 (and DynamoDB) keep at most 38 digits of coefficient: no plain form past that.
    if form == "plain" and sum(c.isdigit() for c in plain.lstrip("-0.")) <= 38 and len(plain) < 60:
        return plain
    return f"{sign}{coef}E{exp}"


scalar = st.one_of(
    text.map(lambda s: ({"S": s}, {"S": s})),
    number_text().map(lambda n: ({"N": n}, {"N": n})),
    st.binary(max_size=12).map(lambda b: ({"B": base64.b64encode(b).decode()}, {"B": b})),
    st.booleans().map(lambda b: ({"BOOL": b}, {"BOOL": b})),
    st.just(({"NULL": True}, {"NULL": True})),
    st.sets(text, min_size=1, max_size=4).map(lambda s: ({"SS": sorted(s)}, {"SS": sorted(s)})),
    st.lists(number_text(), min_size=1, max_size=4, unique_by=decimal.Decimal).map(lambda s: ({"NS": s}, {"NS": s})),
    st.sets(st.binary(max_size=6), min_size=1, max_size=4).map(
        lambda s: ({"BS": [base64.b64encode(b).decode() for b in sorted(s)]}, {"BS": sorted(s)})),
)


def containers(children):
    lists = st.lists(children, max_size=4).map(
        lambda xs: ({"L": [a for a, _ in xs]}, {"L": [b for _, b in xs]}))
    maps = st.dictionaries(text, children, max_size=4).map(
        lambda d: ({"M": {k: a for k, (a, _) in d.items()}}, {"M": {k: b for k, (_, b) in d.items()}}))
    return st.one_of(lists, maps)


attribute = st.recursive(scalar, containers, max_leaves=20)
images = st.dictionaries(text.filter(bool), attribute, max_size=6).map(
    lambda d: ({k: a for k, (a, _) in d.items()}, {k: b for k, (_, b) in d.items()}))


def boto3_plain(v):
    """boto3's result with Binary compared by its bytes."""
    if isinstance(v, Binary):
        return v.value
    if isinstance(v, dict):
        return {k: boto3_plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [boto3_plain(x) for x in v]
    if isinstance(v, set):
        return {boto3_plain(x) for x in v}
    return v


class ExactDeserializer(TypeDeserializer):
    """boto3's deserializer with a plain Decimal for N: boto3's DYNAMODB_CONTEXT (Emin -128,
    precision 38) traps on some numbers DynamoDB stores, such as 37 digits at 1E-130."""

    def _deserialize_n(self, value):
        return decimal.Decimal(value)


def boto3_unmarshal(image):
    try:
        return {k: boto3_plain(DESERIALIZER.deserialize(v)) for k, v in image.items()}
    except decimal.DecimalException:
        return {k: boto3_plain(ExactDeserializer().deserialize(v)) for k, v in image.items()}


# ---------------------------------------------------------------- unmarshal vs boto3


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(images)
def test_unmarshal_equals_boto3(pair):
    stream_image, boto_image = pair
    expected = boto3_unmarshal(boto_image)
    assert ddb2os.unmarshal(stream_image) == expected
    assert ddb2os.unmarshal(boto_image) == expected  # bytes for B, as boto3's clients return
    # Numbers are exact Decimals, digit for digit.
    for k, v in expected.items():
        if isinstance(v, decimal.Decimal):
            assert ddb2os.unmarshal(stream_image)[k].as_tuple() == v.as_tuple()


@pytest.mark.parametrize("kind", ["M", "L"])
def test_unmarshal_32_levels_equals_boto3_and_33_is_refused(kind):
    # Levels count the item: 31 nested M/L is DynamoDB's deepest (DynamoDB Local agrees).
    def nest(levels):
        v = {"S": "deep"}
        for _ in range(levels):
            v = {"M": {"x": v}} if kind == "M" else {"L": [v]}
        return {"v": v}

    assert ddb2os.unmarshal(nest(31)) == boto3_unmarshal(nest(31))
    with pytest.raises(ddb2os.UnmarshalError) as e:
        ddb2os.unmarshal(nest(32))
    assert e.value.id == "nesting.too_deep"
    assert e.value.message == "nesting is deeper than DynamoDB's 32 levels"


def test_a_python_object_no_json_holds_is_named_in_errors():
    """A set, a datetime or an int subclass reads as a number (the adapter's stand-in kind): said as a
    number, the message misled ("NS holds a number; it must hold an array" for a set)."""
    import datetime
    import enum

    class Level(enum.IntEnum):
        HIGH = 1

    wrong = "attribute.wrong_json_type"
    for image, error in (
            ({"tags": {"NS": {1, 2}}}, (wrong, "tags", "NS holds a Python set object; it must hold an array")),
            ({"tags": {"SS": ["a", frozenset("b")]}}, (wrong, "tags.SS[1]", "SS elements must be strings, not a Python frozenset object")),
            ({"tags": {"SS": ["a", 1]}}, (wrong, "tags.SS[1]", "SS elements must be strings, not a number")),
            ({"t": datetime.date(2024, 1, 1)}, ("attribute.not_object", "t",
                                                "an attribute value must be an object with one type key, not a Python datetime.date object")),
            ({"n": {"NULL": Level.HIGH}}, (wrong, "n", "NULL holds a Python Level object; it must hold true")),
            ({"n": {"N": 5}}, (wrong, "n", "N holds a number; it must hold a string"))):  # a real number is still a number
        for convert in (ddb2os.unmarshal, ddb2os.to_json):  # to Python values, and to the document: the same words
            with pytest.raises(ddb2os.UnmarshalError) as e:
                convert(image)
            assert (e.value.id, e.value.path, e.value.message) == error
    with pytest.raises(ddb2os.UnmarshalError) as e:
        ddb2os.document_id({"id": {"S": {"x"}}}, ["id"])
    assert (e.value.path, e.value.message) == ("id", "S holds a Python set object; it must hold a string")
    # The record's own fields too (bulk_bodies reports them per record).
    arn = "arn:aws:dynamodb:us-east-1:1:table/T/stream/x"
    for records, index, path, message in (
            ([{"a"}], "t", "", "a record must be an object, not a Python set object"),
            ([{"eventName": "REMOVE", "eventSourceARN": Level.HIGH, "dynamodb": {"Keys": {"id": {"S": "a"}}}}], None,
             "eventSourceARN", "eventSourceARN must be a string (a DynamoDB stream's ARN), not a Python Level object"),
            ([{"eventName": "REMOVE", "eventSourceARN": arn, "dynamodb": {"Keys": frozenset()}}], "t",
             "dynamodb.Keys", "Keys must be an object, not a Python frozenset object")):
        errors = ddb2os.bulk_bodies(records, index=index).errors  # the ARN is read only for an index named after its table
        assert [(e.path, e.message) for e in errors] == [(path, message)]


def test_unmarshal_extremes():
    image = {"max": {"N": "9.9999999999999999999999999999999999999E+125"}, "min": {"N": "-1E-130"},
             "d38": {"N": "12345678901234567890123456789012345678"}, "emoji": {"S": "😀\u2028\x00"}}
    assert ddb2os.unmarshal(image) == boto3_unmarshal(image)


def test_unmarshal_refuses_an_empty_set_of_each_type():
    """DynamoDB has no empty set: unmarshal refuses one as to_json and bulk_bodies do, with its path."""
    for t in ("SS", "NS", "BS"):
        with pytest.raises(ddb2os.UnmarshalError) as e:
            ddb2os.unmarshal({"tags": {t: []}})
        assert (e.value.id, e.value.path, e.value.message) == (
            "set.empty", f"tags.{t}", f"{t} is an empty set; a DynamoDB set holds at least one element")


def test_unmarshal_gives_bytes_for_a_bytearray_binary():
    """A B or BS value given as a bytearray (a client's own buffer) comes back as bytes, as boto3's bytes do: a
    bytearray would compare equal, but could not go into a set and could change under the caller."""
    out = ddb2os.unmarshal({"b": {"B": bytearray(b"\x00x")}, "bs": {"BS": [bytearray(b"\x01"), b"\x02"]}})
    assert out == {"b": b"\x00x", "bs": {b"\x01", b"\x02"}}
    assert type(out["b"]) is bytes and all(type(v) is bytes for v in out["bs"])


def test_unmarshal_tells_a_number_out_of_range_from_one_that_is_no_number():
    """A number past DynamoDB's range or precision is number.out_of_range, as to_json says; only text that is
    no number at all is number.invalid."""
    cases = [("1E+126", "number.out_of_range", '"1E+126" is outside DynamoDB\'s number range (magnitude 1E-130 to '
              "9.9999999999999999999999999999999999999E+125)"),
             ("1234567890123456789012345678901234567890", "number.out_of_range",
              '"1234567890123456789012345678901234567890" has more than 38 significant digits, the most a DynamoDB '
              "number holds"),
             ("x", "number.invalid", '"x" is not a number')]
    for text, id_, message in cases:
        with pytest.raises(ddb2os.UnmarshalError) as e:
            ddb2os.unmarshal({"big": {"L": [{"N": text}]}})
        assert (e.value.id, e.value.path, e.value.message) == (id_, "big.L[0].N", message)
        with pytest.raises(ddb2os.UnmarshalError) as e:
            ddb2os.to_json({"big": {"L": [{"N": text}]}})
        assert (e.value.id, e.value.path, e.value.message) == (id_, "big.L[0].N", message)


# ---------------------------------------------------------------- to_json / bulk_bodies vs the CLI


def record(seq, image, name="INSERT"):
    ddb = {"Keys": {"id": {"S": str(seq)}}, "SequenceNumber": str(seq), "StreamViewType": "NEW_AND_OLD_IMAGES"}
    if name != "REMOVE":
        ddb["NewImage"] = image
    return {"eventID": f"e{seq}", "eventName": name, "eventSourceARN": ARN, "dynamodb": ddb}


def cli_convert(cli, event_bytes, *args):
    p = subprocess.run([str(cli), "convert", *args], input=event_bytes, capture_output=True, timeout=60)
    assert p.returncode in (0, 1), p.stderr
    return p.stdout, [json.loads(line) for line in p.stderr.decode().splitlines()]


def test_bulk_bodies_and_the_cli_cut_at_1000_actions_by_default(cli, tmp_path):
    """README: bodies of at most 5 MiB and 1000 actions unless told otherwise, from Python and the CLI alike."""
    event = {"Records": [record(i, {"id": {"S": str(i)}}) for i in range(1001)]}
    raw = json.dumps(event).encode()
    for got in (ddb2os.bulk_bodies(event), ddb2os.bulk_bodies(raw)):
        assert [body.count(b"\n") for body in got.bodies] == [2000, 2]
    out, errors = cli_convert(cli, raw, "--out", str(tmp_path / "b"))  # --out: each body its own file
    assert errors == [] and out.decode().splitlines() == [str(tmp_path / f"b-{i}.ndjson") for i in (1, 2)]
    assert [p.read_bytes() for p in sorted(tmp_path.glob("b-*.ndjson"))] == ddb2os.bulk_bodies(raw).bodies
    sized = {"Records": [record(i, {"id": {"S": str(i)}, "p": {"S": "x" * 6000}}) for i in range(1000)]}
    bodies = ddb2os.bulk_bodies(sized).bodies
    assert len(bodies) == 2 and 5 * 2**20 - 7000 < len(bodies[0]) <= 5 * 2**20


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(images, min_size=1, max_size=8), st.sampled_from(["exact", "string", "double"]),
       st.sampled_from(["stringify", "keep"]))
def test_bulk_bodies_and_to_json_agree_with_the_cli(cli, pairs, numbers, lists):
    event = {"Records": [record(i, img) for i, (img, _) in enumerate(pairs)]}
    raw = json.dumps(event).encode()
    out, errors = cli_convert(cli, raw, "--numbers", numbers, "--lists", lists)
    from_dict = ddb2os.bulk_bodies(event, numbers=numbers, lists=lists)
    from_bytes = ddb2os.bulk_bodies(raw, numbers=numbers, lists=lists)
    assert b"".join(from_dict.bodies) == out
    assert b"".join(from_bytes.bodies) == out
    assert errors == [] and from_dict.errors == []
    expected = b"".join(b'{"index":{"_index":"books","_id":"%d"}}\n' % i + ddb2os.to_json(img, numbers=numbers, lists=lists) + b"\n"
                        for i, (img, _) in enumerate(pairs))
    assert out == expected


# Any JSON where an attribute value goes, and type keys right and wrong: the dict path (the Python adapter)
# and the bytes path (the raw reader) must give the same bodies, errors (id, path, message) and counts, or
# the same exception, for every event json.loads makes of the same bytes.
_type_key = st.sampled_from(["S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS", "X", "", "s"])
_json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
                         st.floats(allow_nan=False, allow_infinity=False), text,
                         st.sampled_from(["1", "-0", "1e5", "01", "1.", "AAA=", "AQ==", "1E126", "0.0000"]))
_any_json = st.recursive(_json_scalar, lambda ch: st.one_of(
    st.lists(ch, max_size=3), st.dictionaries(st.one_of(_type_key, text), ch, max_size=3)), max_leaves=8)
_any_attribute = st.recursive(
    st.one_of(st.dictionaries(_type_key, _any_json, max_size=2), _any_json),
    lambda ch: st.one_of(st.fixed_dictionaries({"M": st.dictionaries(text, ch, max_size=3)}),
                         st.fixed_dictionaries({"L": st.lists(ch, max_size=3)})),
    max_leaves=10)


@st.composite
def _any_record(draw, i):
    keys = draw(st.one_of(st.fixed_dictionaries({"id": _any_attribute}), st.dictionaries(text, _any_attribute, max_size=3)))
    return {"eventID": f"e{i}", "eventName": draw(st.sampled_from(["INSERT", "MODIFY", "REMOVE", "X"])),
            "eventSource": "aws:dynamodb", "eventSourceARN": draw(st.sampled_from([ARN, ARN.replace("Books", "Other")])),
            "dynamodb": {"Keys": keys, "SequenceNumber": draw(st.one_of(st.just(str(i)), _any_json)),
                         "NewImage": draw(st.dictionaries(text, _any_attribute, max_size=4))}}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 5).flatmap(lambda n: st.tuples(*[_any_record(i) for i in range(n)])),
       st.sampled_from(["exact", "string", "double"]), st.sampled_from(["stringify", "keep"]),
       st.sampled_from([None, {"Books": ["id"]}, {"Books": ["id", "sk"]}]))
def test_the_dict_and_the_bytes_of_one_event_give_the_same_result(records, numbers, lists, key_schemas):
    raw = json.dumps({"Records": list(records)}).encode()

    def outcome(event):
        try:
            r = ddb2os.bulk_bodies(event, numbers=numbers, lists=lists, key_schemas=key_schemas)
        except ddb2os.Error as e:
            return ("raised", e.id, e.path, e.message)
        return (b"".join(r.bodies), [(e.record, e.id, e.path, e.message) for e in r.errors], r.actions, r.superseded)

    assert outcome(json.loads(raw)) == outcome(raw), raw


def test_bad_records_agree_with_the_cli(cli):
    event = {"Records": [
        record(1, {"ok": {"S": "fine"}}),
        record(2, {"n": {"N": "1.2.3"}}),
        record(3, {"l": {"L": [{"S": "a"}, {"SS": []}]}}),
        {"eventID": "e4", "eventName": "MODIFY", "eventSourceARN": ARN,
         "dynamodb": {"Keys": {"id": {"S": "4"}}, "SequenceNumber": "4", "StreamViewType": "KEYS_ONLY"}},
        record(5, {}, name="REMOVE"),
    ]}
    out, cli_errors = cli_convert(cli, json.dumps(event).encode())
    r = ddb2os.bulk_bodies(event)
    assert b"".join(r.bodies) == out
    assert [(e.record, e.sequence_number, e.event_id, e.id, e.path, e.message) for e in r.errors] == [
        (x["record"], x["sequence_number"], x["event_id"], x["error"], x["path"], x["message"]) for x in cli_errors]
    assert [(e.sequence_number, e.id, e.path) for e in r.errors] == [
        ("2", "number.invalid", "dynamodb.NewImage.n.N"),
        ("3", "set.empty", "dynamodb.NewImage.l.L[1].SS"),
        ("4", "record.no_new_image", "dynamodb.NewImage"),
    ]
    assert r.actions == 2  # records 1 and 5: nothing good was lost
    assert [[r.sequence_numbers[i] for i in body] for body in r.body_records] == [["1", "5"]]


def test_large_batch_from_dict_equals_bytes_and_cli(cli):
    """3,000 records, ids repeated (collapse), composite keys with | and \\, a body larger than the dict path's
    first output buffer and cut at max_bytes: the dict and the bytes paths and the CLI agree byte for byte."""
    recs = []
    for i in range(3000):
        k = i % 1100
        ddb = {"Keys": {"pk": {"S": f"user|{k % 7}\\"}, "sk": {"N": str(k)}}, "SequenceNumber": str(i)}
        name = "REMOVE" if i % 11 == 0 else ("INSERT" if i < 1100 else "MODIFY")
        if name != "REMOVE":
            ddb["NewImage"] = {"pk": ddb["Keys"]["pk"], "sk": ddb["Keys"]["sk"], "n": {"N": f"{i}.5"},
                               "text": {"S": "caf\u00e9 \"quoted\" " * (i % 5)}, "tags": {"SS": ["a", str(i)]}}
        recs.append({"eventID": f"e{i}", "eventName": name, "eventSourceARN": ARN, "dynamodb": ddb})
    event = {"Records": recs}
    raw = json.dumps(event).encode()
    keys = {"Books": ["pk", "sk"]}
    out, errors = cli_convert(cli, raw, "--keys", "Books=pk,sk")
    from_dict = ddb2os.bulk_bodies(event, key_schemas=keys)
    from_bytes = ddb2os.bulk_bodies(raw, key_schemas=keys)
    assert errors == [] and from_dict.errors == [] and from_bytes.errors == []
    assert len(out) > 100_000  # more than the 64 KiB the dict path starts with
    assert b"".join(from_dict.bodies) == out == b"".join(from_bytes.bodies)
    assert from_dict.superseded == from_bytes.superseded == 3000 - 1100
    assert from_dict.actions == 1100
    ids = [json.loads(line)[next(iter(json.loads(line)))]["_id"] for line in out.splitlines() if b'"_index"' in line]
    assert len(ids) == len(set(ids)) == 1100 and "user\\|3\\\\|3" in ids
    cut = ddb2os.bulk_bodies(event, key_schemas=keys, max_bytes=50_000)
    assert len(cut.bodies) >= 3 and all(len(b) <= 50_000 for b in cut.bodies)
    assert b"".join(cut.bodies) == out


class NoisyKey(str):
    """A key whose comparison and hash are Python code, which would run inside a hashed dict lookup."""
    calls = 0

    def __eq__(self, other):
        NoisyKey.calls += 1
        return str.__eq__(self, other)

    def __hash__(self):
        NoisyKey.calls += 1
        return str.__hash__(self)


def test_reading_an_event_runs_no_python_code():
    """Keys are found by their text: a str subclass's __eq__ or __hash__ (Python code that could change or
    free the event under the reader) is never called. The Records key, the key attributes and userIdentity's
    members (a TTL delete) are all looked up by name."""
    ttl = record(2, None, name="REMOVE")
    ttl["dynamodb"]["Keys"] = {"pk": {"S": "r"}, "sk": {"N": "2"}}
    ttl["userIdentity"] = {NoisyKey("type"): "Service", NoisyKey("principalId"): "dynamodb.amazonaws.com"}
    first = record(1, {"a": {"S": "x"}})
    first["dynamodb"]["Keys"] = {NoisyKey("sk"): {"N": "7"}, NoisyKey("pk"): {"S": "p|q"}}
    event = {NoisyKey("Records"): [first, ttl]}
    NoisyKey.calls = 0
    r = ddb2os.bulk_bodies(event, key_schemas={"Books": ["pk", "sk"]}, skip_ttl_deletes=True)
    assert NoisyKey.calls == 0
    assert r.errors == [] and r.skipped_ttl == 1 and r.ttl_deletes == 1
    assert r.bodies == [b'{"index":{"_index":"books","_id":"p\\\\|q|7"}}\n{"a":"x"}\n']
    keys = {NoisyKey("id"): {"S": "v"}}
    NoisyKey.calls = 0
    assert ddb2os.document_id(keys, ["id"]) == "v" and NoisyKey.calls == 0


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="Python 3.12+ collects garbage only between bytecodes, "
                    "never inside an allocation made by C code, so no callback can run within unmarshal")
def test_unmarshal_holds_what_it_reads_while_collected_garbage_runs_code():
    """unmarshal creates objects (dicts, Decimals), and any allocation can start the garbage collector
    (before Python 3.12), which runs Python code (here a gc callback). That code empties the image and
    reuses the freed memory: the value being read stays the one read, so the result is the members read
    before."""
    import gc

    # Each member makes a set (sets come from no free list, so every one counts toward a collection).
    image = {f"a{i}": {"M": {"x": {"N": str(i)}, "t": {"SS": ["s", "t"]}, "y": {"L": [{"S": "s"}, {"N": "1.5"}]}}}
             for i in range(40)}
    expected = ddb2os.unmarshal(json.loads(json.dumps(image)))
    junk, collections = [], [0]

    def meddle(phase, info):
        collections[0] += 1
        if phase == "start" and collections[0] == 11:  # the 6th collection, well into the image
            image.clear()  # the last references to the attribute values being read
            junk.extend({"S": "junk"} for _ in range(5000))  # their memory reused

    thresholds = gc.get_threshold()
    gc.callbacks.append(meddle)
    gc.set_threshold(1)
    try:
        got = ddb2os.unmarshal(image)
    finally:
        gc.set_threshold(*thresholds)
        gc.callbacks.remove(meddle)
    assert image == {} and junk  # the callback ran during the call
    assert 0 < len(got) < len(expected)
    assert got == {k: expected[k] for k in got}


def test_unmarshal_survives_a_list_changed_while_it_is_read():
    """Storing a key in the result can run a str subclass's __hash__, and allocating can run the garbage
    collector's callbacks: Python code that grows or empties the list being read. The result is built by
    appending (it was sized from the list before, and written past its end), and holds no str subclass."""

    class Growing(str):
        armed = False

        def __hash__(self):
            if Growing.armed:
                victim.extend({"S": "more"} for _ in range(100))
            return str.__hash__(self)

    victim = [{"M": {Growing("a"): {"S": "x"}}}, {"S": "y"}]
    Growing.armed = True
    got = ddb2os.unmarshal({"l": {"L": victim}})["l"]
    assert got[0] == {"a": "x"} and got[1] == "y" and len(got) == len(victim)
    assert all(v is not None for v in got)
    assert [type(k) for k in got[0]] == [str]  # an exact str: stored without its __hash__
    import gc

    shrink = [{"SS": [str(i)]} for i in range(200)]  # sets: each counts toward a collection
    calls = [0]

    def meddle(phase, info):
        calls[0] += 1
        if phase == "start" and calls[0] == 3:
            del shrink[5:]

    thresholds = gc.get_threshold()
    gc.callbacks.append(meddle)
    gc.set_threshold(1)
    try:
        got = ddb2os.unmarshal({"l": {"L": shrink}})["l"]
    finally:
        gc.set_threshold(*thresholds)
        gc.callbacks.remove(meddle)
    assert calls[0] >= 3 and len(shrink) == 5
    assert got == [{str(i)} for i in range(len(got))] and len(got) >= 5


def test_key_schemas_must_be_ordered():
    """A set has no order: the _id's parts would change with PYTHONHASHSEED, so it is refused."""
    import collections

    keys = {"author": {"S": "Dan Brown"}, "bookTitle": {"S": "Inferno"}}
    for ordered in (("author", "bookTitle"), collections.UserList(["author", "bookTitle"]),
                    collections.deque(["author", "bookTitle"])):
        assert ddb2os.document_id(keys, ordered) == "Dan Brown|Inferno"
    names = {"author", "bookTitle"}
    for bad in (names, frozenset(["author"]), {"author": 1}, iter(names), (n for n in names)):
        with pytest.raises(ddb2os.OptionError) as e:
            ddb2os.document_id(keys, bad)
        assert e.value.message == (f"key_schema must be a sequence (a list, a tuple) of attribute names, in order, "
                                   f"not {type(bad).__name__}")
        with pytest.raises(ddb2os.OptionError) as e:
            ddb2os.bulk_bodies({"Records": []}, key_schemas={"books": bad})
        assert e.value.message.startswith("the key schema of table 'books' must be a sequence (a list, a tuple)")
    with pytest.raises(ddb2os.OptionError, match="must hold str attribute names, not int"):
        ddb2os.bulk_bodies({"Records": []}, key_schemas={"books": ["author", 7]})


def test_bad_options_name_the_option_and_never_quote_the_event():
    """pybind11's own TypeError for a wrong type quotes every argument: here, the whole event."""
    event = {"Records": [record(1, {"ssn": {"S": "123-45-6789"}})]}
    cases = [(dict(max_bytes=2**64), "max_bytes must be from 0 to 2**64-1, not 18446744073709551616"),
             (dict(max_bytes=-1), "max_bytes must be from 0 to 2**64-1, not -1"),
             (dict(max_actions="10"), "max_actions must be an int, not str"),
             (dict(numbers=None), "numbers must be a str, not NoneType"),
             (dict(lists=1), "lists must be a str, not int"),
             (dict(index=3), "index must be a str, not int"),
             (dict(max_bytes=True), "max_bytes must be an int, not bool"),
             (dict(max_bytes=1e6), "max_bytes must be an int, not float"),
             (dict(skip_ttl_deletes=None), "skip_ttl_deletes must be True or False, not NoneType"),
             (dict(skip_ttl_deletes=2), "skip_ttl_deletes must be True or False, not 2")]
    for kwargs, message in cases:
        with pytest.raises(ddb2os.OptionError) as e:
            ddb2os.bulk_bodies(event, **kwargs)
        assert e.value.message == message and "123-45-6789" not in str(e.value)
    with pytest.raises(ddb2os.OptionError) as e:
        ddb2os.to_json({"ssn": {"S": "123-45-6789"}}, numbers=None)
    assert e.value.message == "numbers must be a str, not NoneType"

    class Index:  # an integer type of another library (numpy's int64): read through __index__
        def __index__(self):
            return 1 << 20

    assert ddb2os.bulk_bodies(event, max_bytes=Index(), skip_ttl_deletes=0).actions == 1
    # A byte order mark before raw JSON is skipped, as the CLI skips it.
    raw = json.dumps(event).encode()
    assert ddb2os.bulk_bodies(b"\xef\xbb\xbf" + raw).bodies == ddb2os.bulk_bodies(raw).bodies


def test_errors_pickle_and_copy():
    import copy
    import pickle

    with pytest.raises(ddb2os.UnmarshalError) as e:
        ddb2os.to_json({"n": {"N": "x"}})
    e.value.__notes__ = ["while reading batch 7"]  # what add_note (Python 3.11+) does
    for again in (pickle.loads(pickle.dumps(e.value)), copy.copy(e.value)):
        assert type(again) is ddb2os.UnmarshalError
        assert again.__notes__ == ["while reading batch 7"]
        assert (again.id, again.path, again.message, str(again)) == (e.value.id, e.value.path, e.value.message,
                                                                      str(e.value))


def test_many_key_names_in_one_process():
    """Key attributes are found by their own name, whatever was looked up before."""
    for i in range(2000):
        name = f"attr{i}"
        assert ddb2os.document_id({name: {"S": str(i)}}, [name]) == str(i)
        with pytest.raises(ddb2os.DocumentIdError):
            ddb2os.document_id({name: {"S": "x"}}, [f"attr{i + 1}"])


# ---------------------------------------------------------------- the API surface


def test_bulk_result_fields():
    event = {"Records": [record(1, {"a": {"S": "x"}}), record(1, {"a": {"S": "y"}}, name="MODIFY")]}
    r = ddb2os.bulk_bodies(event, index="search-{table}", max_actions=10)
    assert r.bodies == [b'{"index":{"_index":"search-books","_id":"1"}}\n{"a":"y"}\n']
    assert (r.superseded, r.actions, r.errors) == (1, 1, [])
    assert repr(r) == "BulkResult(bodies=1, actions=1, errors=0, superseded=1)"
    r = ddb2os.bulk_bodies(event["Records"], key_schemas={"Books": ["id"]})  # a bare list of records
    assert r.actions == 1
    assert ddb2os.bulk_bodies(event, key_schemas={"Books": "id"}).bodies == r.bodies  # "pk[,sk]" text too
    with pytest.raises(ddb2os.OptionError, match=r"the key schema of table 'Books' must name 1 or 2 attributes"):
        ddb2os.bulk_bodies(event, key_schemas={"Books": "a,,b"})


def test_an_argument_that_is_not_a_mapping_is_named():
    """dict()'s own errors said neither what nor which ("dictionary update sequence element #0 ...")."""
    import types
    for call, name, bad in ((lambda v: ddb2os.document_id(v, ["id"]), "keys", "pk"),
                            (lambda v: ddb2os.unmarshal(v), "image", 5),
                            (lambda v: ddb2os.to_json(v), "image", [("id", {"S": "a"})])):
        with pytest.raises(TypeError) as e:
            call(bad)
        assert str(e.value) == f"{name} must be a mapping (a dict), not {type(bad).__name__}"
    # Any mapping is still taken, registered or not (what dict() takes: keys() and [] are enough).
    assert ddb2os.document_id(types.MappingProxyType({"id": {"S": "a"}}), ["id"]) == "a"
    assert ddb2os.unmarshal(types.MappingProxyType({"n": {"N": "1"}})) == {"n": 1}

    class Duck:
        def keys(self):
            return ["n"]

        def __getitem__(self, key):
            return {"N": "1"}

    assert ddb2os.unmarshal(Duck()) == {"n": 1} and ddb2os.to_json(Duck()) == b'{"n":1}'


def test_document_id():
    assert ddb2os.document_id({"bookTitle": {"S": "b|c"}, "author": {"S": "a\\"}}, ["author", "bookTitle"]) == "a\\\\|b\\|c"
    assert ddb2os.document_id({"id": {"N": "101"}}, []) == "101"
    assert ddb2os.document_id({"id": {"B": b"\x00\x01"}}, ["id"]) == "AAE="
    long = ddb2os.document_id({"id": {"S": "x" * 600}}, ["id"])
    assert long.startswith("sha256-") and len(long) == 71
    with pytest.raises(ddb2os.DocumentIdError) as e:
        ddb2os.document_id({"author": {"S": "a"}}, ["author", "bookTitle"])
    assert str(e.value) == "[ddb2os.key.missing] bookTitle: the table: key attribute 'bookTitle' is missing from Keys"
    # A str is "partition[,sort]", as in bulk_bodies' key_schemas (document_id refused it, and the core's
    # str path named no table: "must name 1 or 2 attributes, not \"pk,sk\"", a review found).
    assert ddb2os.document_id({"id": {"S": "a"}}, "id") == "a"
    assert ddb2os.document_id({"bookTitle": {"S": "b"}, "author": {"S": "a"}}, " author , bookTitle ") == "a|b"
    assert ddb2os.bulk_bodies({"Records": []}, key_schemas={"books": "author,bookTitle"}).actions == 0
    # Checked by the rules, and in the words, of the list form.
    for text, problem in (("h,h", "names 'h' twice"), (" h , h", "names 'h' twice"),
                          ("h,r,z", "must name 1 or 2 attributes"),
                          (",h", "names an empty attribute"), ("", "names an empty attribute")):
        with pytest.raises(ddb2os.OptionError) as e:
            ddb2os.document_id({"h": {"S": "a"}, "r": {"S": "b"}, "z": {"S": "c"}}, text)
        assert e.value.message == f"key_schema {problem}"
        with pytest.raises(ddb2os.OptionError) as e:
            ddb2os.bulk_bodies({"Records": []}, key_schemas={"books": text})
        assert e.value.message == f"the key schema of table 'books' {problem}"
    # The schema rules bulk_bodies applies (document_id took these: "a|a", "a|b|c", a missing '').
    three = {"h": {"S": "a"}, "r": {"S": "b"}, "z": {"S": "c"}}
    for schema, problem in ((["h", "h"], "names 'h' twice"), (["h", "r", "z"], "must name 1 or 2 attributes"),
                            (["", "h"], "names an empty attribute")):
        with pytest.raises(ddb2os.OptionError) as e:
            ddb2os.document_id(three, schema)
        assert e.value.message == f"key_schema {problem}"
    # A name with a lone surrogate: refused by name (it was Python's UnicodeEncodeError).
    for schema in (["h\ud800"], ("r", "h\ud800")):
        with pytest.raises(ddb2os.OptionError) as e:
            ddb2os.document_id(three, schema)
        assert e.value.message == "key_schema is not valid Unicode (it holds a lone surrogate)"


def test_excluded_attributes_from_the_dict_and_from_bytes():
    import json
    image = {"id": {"S": "a"}, "ssn": {"S": "123-45-6789"}, "card": {"N": "not read"}, "_id": {"S": "x"},
             "m": {"M": {"ssn": {"S": "kept"}}}}
    event = {"Records": [{"eventID": "e", "eventName": "INSERT", "eventSourceARN": "arn:aws:dynamodb:us-east-1:1:table/T/stream/x",
                          "dynamodb": {"SequenceNumber": "1", "Keys": {"id": {"S": "a"}}, "NewImage": image}}]}
    want = [b'{"index":{"_index":"t","_id":"a"}}\n{"id":"a","m":{"ssn":"kept"}}\n']
    for names in (["ssn", "card", "_id"], ("ssn", "card", "_id")):
        assert ddb2os.bulk_bodies(event, exclude=names).bodies == want
        assert ddb2os.bulk_bodies(json.dumps(event).encode(), exclude=names).bodies == want
    (e,) = ddb2os.bulk_bodies(event, exclude=["ssn"]).errors
    assert (e.id, e.path) == ("number.invalid", "dynamodb.NewImage.card.N")
    # include: the only ones kept; exclude still applies.
    assert ddb2os.bulk_bodies(event, include=["id", "m", "ssn"], exclude=["ssn"]).bodies == want
    assert ddb2os.bulk_bodies(json.dumps(event).encode(), include=("id", "m")).bodies == want
    for bad, message in (("ssn", "exclude must be a sequence (a list, a tuple) of attribute names, not str"),
                         ({"ssn"}, "exclude must be a sequence (a list, a tuple) of attribute names, not set"),
                         ([1], "exclude must hold str attribute names, not int"), ([""], "an excluded attribute name is empty"),
                         ({"ssn": 1}, "exclude must be a sequence (a list, a tuple) of attribute names, not dict"),
                         (["a\ud800"], "exclude is not valid Unicode (it holds a lone surrogate)")):
        with pytest.raises(ddb2os.OptionError) as err:
            ddb2os.bulk_bodies(event, exclude=bad)
        assert err.value.message == message


def test_a_name_written_twice_in_raw_json_reads_as_json_loads_reads_it():
    """Raw JSON only (DynamoDB never writes it): a repeated key attribute counts once, with its last value, as
    Python's json.loads gives the dict path (the bytes path named a composite key, or "Keys holds ''"). A
    repeated type key is refused by the bytes path, as the README says (checking for it cost the transform 10%)."""
    import json
    raw = (b'{"Records":[{"eventID":"e1","eventName":"INSERT","eventSourceARN":"arn:aws:dynamodb:us-east-1:1:table/T/stream/x",'
           b'"dynamodb":{"ApproximateCreationDateTime":1700000000,"SequenceNumber":"1","Keys":{"id":{"S":"a"},"id":{"S":"b"}},'
           b'"NewImage":{"id":{"S":"b"},"t":{"S":"q"}}}}]}')
    for ks in (None, {"T": ["id"]}):
        from_bytes, from_dict = ddb2os.bulk_bodies(raw, key_schemas=ks), ddb2os.bulk_bodies(json.loads(raw), key_schemas=ks)
        assert from_bytes.errors == [] and from_dict.errors == []
        assert from_bytes.bodies == from_dict.bodies == [b'{"index":{"_index":"t","_id":"b"}}\n{"id":"b","t":"q"}\n']
    twice = raw.replace(b'"t":{"S":"q"}', b'"t":{"S":"p","S":"q"}')
    assert ddb2os.bulk_bodies(json.loads(twice)).bodies == ddb2os.bulk_bodies(raw).bodies
    (e,) = ddb2os.bulk_bodies(twice).errors
    assert (e.id, e.path) == ("attribute.multiple_types", "dynamodb.NewImage.t")


def test_errors_carry_ids_paths_and_messages():
    with pytest.raises(ddb2os.UnmarshalError) as e:
        ddb2os.to_json({"tags": {"L": [{"S": "a"}, {"N": "x"}]}})
    assert (e.value.id, e.value.path, e.value.message) == ("number.invalid", "tags.L[1].N", '"x" is not a number')
    assert str(e.value) == '[ddb2os.number.invalid] tags.L[1].N: "x" is not a number'
    assert isinstance(e.value, ddb2os.Error) and isinstance(e.value, ValueError)
    with pytest.raises(ddb2os.UnmarshalError, match=r"\[ddb2os.utf8.invalid\] s.S"):
        ddb2os.unmarshal({"s": {"S": "\ud800"}})
    with pytest.raises(ddb2os.UnmarshalError, match=r"\[ddb2os.attribute.multiple_types\] v"):
        ddb2os.unmarshal({"v": {"S": "a", "N": "1"}})
    # A str with a lone surrogate, in the words the bytes path uses for it (the dict path said "not valid
    # UTF-8 (byte 0)", a byte the string does not have).
    import json
    event = {"Records": [{"eventID": "e", "eventName": "INSERT", "eventSourceARN": "arn:aws:dynamodb:us-east-1:1:table/T/stream/x",
                          "dynamodb": {"ApproximateCreationDateTime": 1, "SequenceNumber": "1", "Keys": {"id": {"S": "a"}},
                                       "NewImage": {"id": {"S": "a"}, "s": {"S": "ab\ud800cd"}}}}]}
    (from_dict,), (from_bytes,) = ddb2os.bulk_bodies(event).errors, ddb2os.bulk_bodies(json.dumps(event).encode()).errors
    assert (from_dict.id, from_dict.path, from_dict.message) == (from_bytes.id, from_bytes.path, from_bytes.message) == (
        "utf8.invalid", "dynamodb.NewImage.s.S", "string is not valid Unicode (an unpaired UTF-16 surrogate or invalid UTF-8)")
    with pytest.raises(ddb2os.EventError) as e:
        ddb2os.bulk_bodies(b"{oops")
    assert str(e.value) == "[ddb2os.json.syntax] byte 1: expected a string key in an object"
    with pytest.raises(ddb2os.EventError, match=r"\[ddb2os.event.shape\]"):
        ddb2os.bulk_bodies(42)
    with pytest.raises(ddb2os.OptionError) as e:
        ddb2os.bulk_bodies({"Records": []}, numbers="float")
    assert str(e.value) == "[ddb2os.option.invalid] numbers must be 'exact', 'string' or 'double', not 'float'"
    with pytest.raises(ddb2os.OptionError, match="max_actions must be at least 1"):
        ddb2os.bulk_bodies({"Records": []}, max_actions=0)


def test_the_type_stub_exports_what_the_module_does():
    """A stub's __all__ without a value hides every name from `from ddb2os import *` in type checkers."""
    import ast
    import pathlib

    stub = pathlib.Path(ddb2os.__file__).with_name("__init__.pyi")
    tree = ast.parse(stub.read_text())
    values = [n.value for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "__all__"]
    assert len(values) == 1 and ast.literal_eval(values[0]) == ddb2os.__all__


def test_no_builtin_names_shadowed_and_explicit_all():
    import builtins
    for name in ddb2os.__all__:
        assert hasattr(ddb2os, name)
        assert not hasattr(builtins, name), name


def test_import_is_light():
    code = "import sys, ddb2os; print(any(m.split('.')[0] in ('boto3', 'botocore', 'json') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("cls, use", [
    ("BulkResult", lambda o: o.bodies),
    ("BulkResult", repr),
    ("BulkRecordError", lambda o: o.message),
    ("BulkRecordError", str),
    ("Signer", lambda o: o.region),
    ("Signer", repr),
    ("Signer", lambda o: o.sign("GET", "https://h/")),
    ("SyncEngine", lambda o: o.process({"Records": [{}]}, 1.0)),
])
def test_an_object_made_without_init_is_a_type_error_not_a_crash(cls, use):
    """T.__new__(T) gives an object with no C++ value; pybind11 handed its methods uninitialized memory (a
    segmentation fault, or garbage)."""
    from ddb2os import _core
    t = getattr(ddb2os, cls, None) or getattr(_core, cls)
    with pytest.raises(TypeError, match=f"{t.__name__} object that __init__ did not make"):
        use(t.__new__(t))


def test_an_attribute_read_on_another_object_is_a_type_error():
    with pytest.raises(TypeError, match="a BulkResult object is needed, not object"):
        ddb2os.BulkResult.bodies.__get__(object())


def test_a_subclass_of_two_bound_classes_reads_each_value_as_its_own():
    """A Python class with two bound bases holds a value per base: each method reads its own class's (the
    first base's was read as any class's: garbage, a crash or a hang), and one not made is a TypeError."""
    from ddb2os import _core

    from ddb2os._handler import config_from_environment
    env = {"OPENSEARCH_ENDPOINT": "http://127.0.0.1:9", "OPENSEARCH_AUTH": "none"}

    class Both(_core.SyncEngine, ddb2os.Signer):  # the engine first: its value was read as the Signer's
        def __init__(self):
            _core.SyncEngine.__init__(self, config_from_environment(env), env)
            ddb2os.Signer.__init__(self, region="us-east-1", service="es", access_key="AK", secret_key="SK")

    both = Both()
    assert (both.region, both.service, both.access_key) == ("us-east-1", "es", "AK")
    when = datetime.datetime(2024, 1, 2, tzinfo=datetime.timezone.utc)
    assert both.sign("GET", "https://h/", timestamp=when)["Authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AK/20240102/us-east-1/es/aws4_request")
    assert both.process({"Records": []}, 1.0)["failures"] == []

    class Unmade(ddb2os.Signer, ddb2os.BulkResult):
        pass

    unmade = Unmade.__new__(Unmade)
    for use in (repr, lambda o: o.bodies, lambda o: o.region, lambda o: o.sign("GET", "https://h/")):
        with pytest.raises(TypeError, match="object that __init__ did not make"):
            use(unmade)


def test_an_object_claiming_a_bound_class_is_not_read_as_one():
    """isinstance trusts __class__, which Mock(spec=...) sets: the real type is what counts."""
    from unittest import mock
    with pytest.raises(TypeError, match="a BulkResult object is needed, not Mock"):
        ddb2os.BulkResult.actions.__get__(mock.Mock(spec=ddb2os.BulkResult))

    class Fake:
        __class__ = ddb2os.Signer

    with pytest.raises(TypeError, match="a Signer object is needed, not Fake"):
        ddb2os.Signer.region.__get__(Fake())


@pytest.mark.parametrize("protocol", [0, 1, 2, 5])
def test_the_bound_objects_refuse_pickling_at_every_protocol(protocol):
    """Protocols 0 and 1 ended the process (pybind11: 'instance allocation failed')."""
    import pickle
    result = ddb2os.bulk_bodies({"Records": []})
    signer = ddb2os.Signer(region="us-east-1", service="es", access_key="AK", secret_key="SK")
    for obj, name in ((result, "BulkResult"), (signer, "Signer")):
        with pytest.raises(TypeError, match=f"cannot pickle 'ddb2os.{name}' object"):
            pickle.dumps(obj, protocol)


def test_lone_surrogates_are_found_where_the_dict_path_trusts_strs():
    """The dict path takes a str's text as valid UTF-8 without checking it (CPython's encoding): a str
    with a lone surrogate must still fail each field as the bytes path fails it."""
    import copy
    import json

    base = {"eventID": "e", "eventName": "MODIFY", "eventSourceARN": "arn:aws:dynamodb:us-east-1:1:table/T/stream/x",
            "dynamodb": {"ApproximateCreationDateTime": 1, "SequenceNumber": "1", "Keys": {"id": {"S": "a"}},
                         "NewImage": {"id": {"S": "a"}}}}
    places = [lambda r: r["dynamodb"]["Keys"].update(id={"S": "a\ud800"}),
              lambda r: r["dynamodb"]["Keys"].update(id={"N": "1\udfff"}),
              lambda r: r["dynamodb"]["Keys"].update(id={"B": "QQ==\ud800"}),
              lambda r: r.update(eventName="MOD\ud800"),
              lambda r: r.update(eventSourceARN="arn:aws:dynamodb:us-east-1:1:table/T\ud800/stream/x")]
    for i, change in enumerate(places):
        record = copy.deepcopy(base)
        change(record)
        event = {"Records": [record]}
        raw = json.dumps(event).encode()  # \ud800 escapes: the bytes path decodes and refuses them
        from_dict, from_bytes = ddb2os.bulk_bodies(event), ddb2os.bulk_bodies(raw)
        assert len(from_dict.errors) == len(from_bytes.errors) == 1, (i, from_dict.errors, from_bytes.errors)
        d, b = from_dict.errors[0], from_bytes.errors[0]
        assert (d.id, d.path, d.message) == (b.id, b.path, b.message), i
        assert d.id in ("utf8.invalid", "number.invalid", "base64.invalid", "record.bad_field"), (i, d)
        # Its own name: ddb2os.RecordError is the handler's exception, not this.
        assert type(d) is ddb2os.BulkRecordError and repr(d).startswith("BulkRecordError(record=0, "), repr(d)


def test_an_event_str_with_a_lone_surrogate_is_refused_never_quoted():
    """A str event with no UTF-8 raised Python's UnicodeEncodeError, whose args and repr hold the whole event."""
    with pytest.raises(ddb2os.EventError) as e:
        ddb2os.bulk_bodies('{"Records": [], "x": "hunter2\ud800"}')
    assert str(e.value) == "[ddb2os.json.syntax] the event (a str of JSON) is not valid Unicode (it holds a lone surrogate)"
    assert "hunter2" not in repr(e.value) and "hunter2" not in repr(e.value.args)


def test_key_schemas_that_are_not_a_mapping_are_refused_by_name():
    """dict() of a str failed naming nothing, and of a list of two-letter strs read it as a mapping."""
    for bad, kind in (("books=author,title", "str"), (5, "int"), (["id"], "list")):
        with pytest.raises(ddb2os.OptionError) as e:
            ddb2os.bulk_bodies({"Records": []}, key_schemas=bad)
        assert str(e.value) == ("[ddb2os.option.invalid] key_schemas must be a dict of table name -> key attribute "
                                f"names, not {kind}")
    import types
    assert ddb2os.bulk_bodies({"Records": []}, key_schemas=types.MappingProxyType({"T": ["id"]})).errors == []


def test_a_keys_name_that_is_not_a_str_is_refused_without_a_key_schema():
    """With no key schema the one key's name is not read for the _id; a name that is not a str was taken."""
    record = {"eventID": "e", "eventName": "REMOVE", "eventSourceARN": "arn:aws:dynamodb:us-east-1:1:table/T/stream/x",
              "dynamodb": {"SequenceNumber": "1", "Keys": {1: {"S": "a"}}}}
    (e,) = ddb2os.bulk_bodies({"Records": [record]}).errors
    assert (e.id, e.path) == ("utf8.invalid", "dynamodb.Keys"), e
    assert e.message.startswith("a key attribute's name: "), e


def test_sequence_numbers_are_every_records_in_order_read_as_often_as_asked():
    """Kept in C++ and made into strs at each read (a str per record at every call cost a tenth of a batch)."""
    import json
    arn = "arn:aws:dynamodb:us-east-1:1:table/T/stream/x"
    records = [{"eventID": "a", "eventName": "REMOVE", "eventSourceARN": arn,
                "dynamodb": {"SequenceNumber": "100000000000000000000001", "Keys": {"id": {"S": "1"}}}},
               {"eventID": "b", "eventName": "UPSERT", "dynamodb": {"SequenceNumber": "7"}},
               {"eventID": "c", "eventName": "REMOVE", "eventSourceARN": arn, "dynamodb": {"Keys": {"id": {"S": "2"}}}}]
    for event in ({"Records": records}, json.dumps(records).encode()):
        r = ddb2os.bulk_bodies(event)
        first = r.sequence_numbers
        assert first == ["100000000000000000000001", "7", ""] == r.sequence_numbers and first is not r.sequence_numbers
        first.append("x")  # a list of the caller's own
        assert len(r.sequence_numbers) == 3


def test_records_keys_in_any_order_and_of_any_making_are_read_by_their_text():
    """The dict path remembers which name each key object at each position was (json.loads shares key objects
    between records): records whose keys come in another order, are other objects of the same text, a str
    subclass, or missing, must read exactly as the same records from bytes."""
    import json

    class Name(str):
        pass

    arn = "arn:aws:dynamodb:us-east-1:1:table/T/stream/x"

    def rec(i, name="REMOVE"):
        return {"eventID": f"e{i}", "eventName": name, "eventSourceARN": arn,
                "dynamodb": {"SequenceNumber": str(i), "Keys": {"id": {"S": f"k{i % 4}"}},
                             "NewImage": {"id": {"S": f"k{i % 4}"}, "n": {"N": str(i)}}}}

    records = [rec(i, "INSERT" if i % 3 else "REMOVE") for i in range(6)]
    records.append(dict(reversed(list(rec(6, "MODIFY").items()))))  # the same key objects, other positions
    made = {"".join(["event", "Name"]): "MODIFY", "".join(["event", "ID"]): "e7", "eventSourceARN": arn,
            "".join(["dyna", "modb"]): rec(7)["dynamodb"]}  # other objects, the same text
    records.append(made)
    records.append({Name("eventID"): "e8", Name("eventName"): "REMOVE", Name("eventSourceARN"): arn,
                    Name("dynamodb"): rec(8)["dynamodb"]})
    records.append({"eventID": "e9", "eventSourceARN": arn, "dynamodb": rec(9)["dynamodb"]})  # no eventName
    records.append({"eventID": "e10", "eventName": "INSERT", "dynamodb": rec(10)["dynamodb"]})  # no ARN
    records.append({"x": 1, "eventName": "REMOVE", "eventID": "e11", "dynamodb": rec(11)["dynamodb"], 7: "a",
                    "eventSourceARN": arn})
    records += [rec(i, "INSERT") for i in range(12, 40)]  # the memo's keys again, after all that
    event = {"Records": records}
    raw = json.dumps({"Records": [{str(k): v for k, v in r.items()} for r in records]}).encode()
    import sys
    keys = [k for r in records[6:9] for k in r]  # the memo holds keys while it lives, then lets them go
    counts = [sys.getrefcount(k) for k in keys]
    from_dict, from_bytes = ddb2os.bulk_bodies(event), ddb2os.bulk_bodies(raw)
    assert [sys.getrefcount(k) for k in keys] == counts
    assert from_dict.bodies == from_bytes.bodies
    assert [(e.record, e.id, e.path) for e in from_dict.errors] == [(e.record, e.id, e.path) for e in from_bytes.errors]
    assert [e.record for e in from_dict.errors] == [9, 10]
    assert from_dict.sequence_numbers == from_bytes.sequence_numbers
    assert from_dict.actions == from_bytes.actions > 0 and from_dict.superseded == from_bytes.superseded > 0


def test_an_image_of_many_attributes_is_read_whole():
    """Members are read in batches of 16 from a dict: every attribute of a larger image is in its document, from
    the dict as from its bytes."""
    image = {f"a{i:02}": {"N": str(i)} for i in range(40)}
    assert json.loads(ddb2os.to_json(image)) == {f"a{i:02}": i for i in range(40)}
    for size in (16, 17, 33):
        event = {"Records": [record(1, {k: image[k] for k in list(image)[:size]})]}
        body = ddb2os.bulk_bodies(event).bodies
        assert body == ddb2os.bulk_bodies(json.dumps(event).encode()).bodies
        assert len(json.loads(body[0].splitlines()[1])) == size


def test_a_tuple_of_records_is_an_event_as_a_list_is():
    """A tuple of records is read as a list of them (the event's array form), from the module's check on."""
    event = {"Records": [record(1, {"a": {"S": "x"}}), record(2, {"a": {"S": "y"}})]}
    r = ddb2os.bulk_bodies(tuple(event["Records"]))
    assert r.bodies == ddb2os.bulk_bodies(event).bodies and r.actions == 2


def test_the_largest_sizes_are_taken_or_refused_by_their_own_limits():
    """2**64-1 is in range for an option read as a size: max_actions takes it, max_bytes names its own limit."""
    event = {"Records": [record(1, {"a": {"S": "x"}})]}
    assert ddb2os.bulk_bodies(event, max_actions=2**64 - 1).actions == 1
    with pytest.raises(ddb2os.OptionError) as e:
        ddb2os.bulk_bodies(event, max_bytes=2**64 - 1)
    assert e.value.message == "max_bytes must be at most 2147483647"


def test_a_mapping_is_no_key_schema_even_with_item_access():
    """A mapping class that is not a dict (UserDict) passes Python's sequence check (it has __getitem__): it
    is refused as a dict is, not read as a tuple of its keys."""
    import collections

    keys = {"author": {"S": "Dan Brown"}, "bookTitle": {"S": "Inferno"}}
    bad = collections.UserDict({"author": 1, "bookTitle": 2})
    with pytest.raises(ddb2os.OptionError) as e:
        ddb2os.document_id(keys, bad)
    assert e.value.message == ("key_schema must be a sequence (a list, a tuple) of attribute names, in order, "
                               "not UserDict")
    with pytest.raises(ddb2os.OptionError) as e:
        ddb2os.bulk_bodies({"Records": []}, key_schemas={"books": bad})
    assert e.value.message == ("the key schema of table 'books' must be a sequence (a list, a tuple) of attribute "
                               "names, in order, not UserDict")
    with pytest.raises(ddb2os.OptionError) as e:
        ddb2os.bulk_bodies({"Records": []}, exclude=collections.UserDict({"ssn": 1}))
    assert e.value.message == "exclude must be a sequence (a list, a tuple) of attribute names, not UserDict"


def test_a_record_error_reads_as_its_exception_would():
    """str() of a BulkRecordError is the exception's text: the path and ': ' only when there is a path."""
    r = ddb2os.bulk_bodies([5, {"eventName": "X"}])
    assert [str(e) for e in r.errors] == [
        "[ddb2os.record.not_object] a record must be an object, not a number",
        "[ddb2os.record.missing_field] dynamodb: the record has no dynamodb object"]
    assert repr(r.errors[0]) == "BulkRecordError(record=0, sequence_number='', id='record.not_object', path='')"
