#!/usr/bin/env node
// Node competitor for the ddb2os transform benchmark: @aws-sdk/util-dynamodb `unmarshall` + JSON.stringify +
// the same bulk-line building as the boto3 reference (benchmarks/competitors/boto3_ref.py).
//
//   node transform.js EVENT.json ITERATIONS [--warmup N] [--numbers exact|double] [--out PATH] [--parse-only]
//
// Times itself in-process (start-up and JIT warm-up excluded): each iteration goes from the file's raw bytes
// (already in memory) to the bulk NDJSON: utf-8 decode, JSON.parse, unmarshall, normalize, stringify.
// Prints one JSON line: records/s and input MB/s (1 MB = 1e6 bytes) from the median iteration (wall clock),
// the wall and CPU seconds of every iteration, and the SHA-256 of the output (all bodies concatenated);
// --out writes that output for check.py.
//
// Numbers: plain `unmarshall(image)` cannot do the job: a number beyond 2^53 becomes a BigInt, which
// JSON.stringify refuses, and 9.99E+125 throws ("can't be converted to BigInt"). So:
//   --numbers exact  (default) `wrapNumbers` keeps every N as its text; a toJSON sentinel splices the text back
//                    in as a JSON number: exact, like ddb2os (a string attribute containing U+E000 would clash).
//   --numbers double `wrapNumbers: Number`: every N becomes a JS double. LOSSY beyond 15-17 significant digits
//                    (38-digit integers, 2^53+1, long decimals): check.py reports those fields.
// Sets (SS/NS/BS) come back as JS Sets, which JSON.stringify writes as {}: they are turned into arrays, in the
// given order. B/BS stay base64 text (unmarshall passes them through). Map keys that look like array indexes
// ("0", "42") are reordered by JS objects; check.py compares objects by key.
"use strict";
const fs = require("fs");
const crypto = require("crypto");
const { unmarshall } = require("@aws-sdk/util-dynamodb");

const KEY_SCHEMA = { Orders: ["pk", "sk"], Customers: ["pk", "sk"] };
const MAX_ID_BYTES = 512;

// ---- numbers ----------------------------------------------------------------------------------------------
const OPEN = "\uE000", CLOSE = "\uE001";
const SPLICE = /"\uE000([^"\uE001]*)\uE001"/g;
class Num {
  constructor(text) { this.text = text; }
  toJSON() { return OPEN + this.text + CLOSE; }
}
const wrapExact = (s) => new Num(s);

function makeStringify(exact) {
  if (!exact) return (v) => JSON.stringify(v);
  return (v) => {
    const s = JSON.stringify(v);
    return s.indexOf(OPEN) < 0 ? s : s.replace(SPLICE, "$1");
  };
}

// ---- mixed-type lists (issue 2's `stringify` policy) ---------------------------------------------------
function kinds(arr, acc) {
  for (const v of arr) {
    if (v === null || v === undefined) continue;
    if (Array.isArray(v) || v instanceof Set) kinds(v, acc);
    else if (v instanceof Num || typeof v === "number" || typeof v === "bigint") acc.add("number");
    else if (typeof v === "string") acc.add("string");
    else if (typeof v === "boolean") acc.add("boolean");
    else acc.add("object");
  }
  return acc;
}

function makeNormalizer(stringify) {
  function scalarText(v) {
    if (v === null || v === undefined) return null;
    if (Array.isArray(v) || v instanceof Set) return Array.from(v, scalarText);
    if (typeof v === "string") return v;
    if (v instanceof Num) return v.text;
    if (typeof v === "boolean") return v ? "true" : "false";
    if (typeof v === "number" || typeof v === "bigint") return String(v);
    return stringify(normalize(v));
  }
  // Returns the normalized value: Sets become arrays, mixed arrays become strings; objects are updated in place.
  function normalize(v) {
    if (v === null || typeof v !== "object" || v instanceof Num) return v;
    if (v instanceof Set) return Array.from(v);  // SS/NS/BS: one kind by construction
    if (Array.isArray(v)) {
      if (kinds(v, new Set()).size > 1) return v.map(scalarText);
      for (let i = 0; i < v.length; i++) {
        const x = v[i];
        if (x !== null && typeof x === "object" && !(x instanceof Num)) v[i] = normalize(x);
      }
      return v;
    }
    for (const k in v) {
      const x = v[k];
      if (x !== null && typeof x === "object" && !(x instanceof Num)) v[k] = normalize(x);
    }
    return v;
  }
  return normalize;
}

// ---- ids and bulk lines ------------------------------------------------------------------------------------
function keyText(av) {
  if (av.S !== undefined) return av.S;
  if (av.N !== undefined) return av.N;
  if (av.B !== undefined) return av.B;
  throw new Error("key attribute value must be S, N or B: " + JSON.stringify(av));
}
const escapePart = (p) => p.replace(/\\/g, "\\\\").replace(/\|/g, "\\|");

function documentId(keys, table) {
  const names = KEY_SCHEMA[table];
  if (!names) throw new Error(`no key schema for table ${table}`);
  const parts = names.map((n) => {
    const av = keys[n];
    if (!av) throw new Error(`table ${table}: key attribute ${n} missing from Keys`);
    return keyText(av);
  });
  let id = parts.length === 1 ? parts[0] : parts.map(escapePart).join("|");
  if (Buffer.byteLength(id, "utf8") > MAX_ID_BYTES)
    id = "sha256-" + crypto.createHash("sha256").update(id, "utf8").digest("hex");
  return id;
}

const tableOf = (arn) => arn.split(":").slice(5).join(":").split("/")[1];

function makeTransform(exact) {
  const stringify = makeStringify(exact);
  const normalize = makeNormalizer(stringify);
  const options = { wrapNumbers: exact ? wrapExact : Number };
  return function transform(event) {
    const out = [];
    for (const rec of event.Records) {
      const ddb = rec.dynamodb;
      const table = tableOf(rec.eventSourceARN);
      const meta = { _index: table.toLowerCase(), _id: documentId(ddb.Keys, table) };
      if (rec.eventName === "REMOVE") {
        out.push(JSON.stringify({ delete: meta }));
      } else {
        if (!ddb.NewImage) throw new Error(`${rec.eventName} record without NewImage`);
        out.push(JSON.stringify({ index: meta }));
        out.push(stringify(normalize(unmarshall(ddb.NewImage, options))));
      }
    }
    return out.join("\n") + "\n";
  };
}

// ---- driver ------------------------------------------------------------------------------------------------
function parseArgs(argv) {
  const a = { file: null, iterations: 10, warmup: 2, numbers: "exact", out: null, parseOnly: false };
  const pos = [];
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i];
    if (x === "--warmup") a.warmup = parseInt(argv[++i], 10);
    else if (x === "--numbers") a.numbers = argv[++i];
    else if (x === "--out") a.out = argv[++i];
    else if (x === "--parse-only") a.parseOnly = true;
    else pos.push(x);
  }
  if (pos.length < 1 || !["exact", "double"].includes(a.numbers)) {
    process.stderr.write("usage: node transform.js EVENT.json ITERATIONS [--warmup N] " +
      "[--numbers exact|double] [--out PATH] [--parse-only]\n");
    process.exit(2);
  }
  a.file = pos[0];
  if (pos.length > 1) a.iterations = parseInt(pos[1], 10);
  return a;
}

function main() {
  const a = parseArgs(process.argv.slice(2));
  const buf = fs.readFileSync(a.file);
  const transform = makeTransform(a.numbers === "exact");
  let records = 0;
  const once = a.parseOnly
    ? () => { const ev = JSON.parse(buf.toString("utf8")); records = ev.Records.length; return ""; }
    : () => { const ev = JSON.parse(buf.toString("utf8")); records = ev.Records.length; return transform(ev); };
  let out = "";
  for (let i = 0; i < a.warmup; i++) out = once();
  const times = [], cpuTimes = [];
  for (let i = 0; i < a.iterations; i++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    out = once();
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
    const c = process.cpuUsage(c0);
    cpuTimes.push((c.user + c.system) / 1e6);  // all threads of the process (JIT, GC included)
  }
  const med = (xs) => xs.slice().sort((x, y) => x - y)[Math.floor((xs.length - 1) / 2)];
  const sorted = times.slice().sort((x, y) => x - y);
  const median = sorted[Math.floor((sorted.length - 1) / 2)];
  const outBuf = Buffer.from(out, "utf8");
  if (a.out) fs.writeFileSync(a.out, outBuf);
  let sdkVersion = null;
  try { sdkVersion = require("@aws-sdk/util-dynamodb/package.json").version; } catch (e) { /* optional */ }
  const result = {
    competitor: a.parseOnly ? "node JSON.parse only" : `node util-dynamodb (${a.numbers})`,
    file: a.file,
    records,
    input_bytes: buf.length,
    output_bytes: outBuf.length,
    iterations: a.iterations,
    seconds_median: median,
    seconds_min: sorted[0],
    seconds: times,
    cpu_seconds_median: med(cpuTimes),
    cpu_seconds_min: Math.min(...cpuTimes),
    cpu_seconds: cpuTimes,
    records_per_s: records / median,
    mb_per_s: buf.length / 1e6 / median,
    sha256: crypto.createHash("sha256").update(outBuf).digest("hex"),
    versions: { node: process.version, "@aws-sdk/util-dynamodb": sdkVersion },
  };
  process.stdout.write(JSON.stringify(result) + "\n");
}

main();
