#!/usr/bin/env bash
# The libFuzzer targets (tests/fuzz/), built with clang 14, AddressSanitizer and UBSan, each run from its
# seeds (tests/fuzz/seeds/<name>; bulk_adapters, which reads bulk's inputs, from bulk's) with the JSON dictionary:
#   scripts/test-fuzz.sh BUILD_DIR            a fixed number of inputs each, seed 1 (make test: about 70 s on 2 cores)
#   FUZZ_SECONDS=600 scripts/test-fuzz.sh ... that long each, from a random seed (make fuzz)
# A failing input is written to BUILD_DIR/fuzz/crash-<sha1>; rerun it with BUILD_DIR/fuzz/fuzz_<name> FILE.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build/fuzz}
cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 \
  -DDDB2OS_BUILD_FUZZERS=ON -DDDB2OS_BUILD_TESTS=OFF -DDDB2OS_BUILD_CLI=OFF -DDDB2OS_INSTALL=OFF -DDDB2OS_WERROR=ON >/dev/null
cmake --build "$build" -j "${JOBS:-$(nproc)}"
# Inputs per target for make test: about 20 s each on this project's machines.
declare -A runs=([bulk]=300000 [bulk_adapters]=150000 [unmarshal]=200000 [sigv4]=200000 [sync_answer]=10000)
declare -A seeds=([bulk_adapters]=bulk)
# Each target is one process on one core: JOBS of them at a time, each reported whole when it ends.
run_one() {
  local name=$1 corpus=$build/fuzz/corpus/$1 limit
  rm -rf "$corpus" && mkdir -p "$corpus" && cp "$here"/tests/fuzz/seeds/"${seeds[$name]:-$name}"/* "$corpus"/
  if [ -n "${FUZZ_SECONDS:-}" ]; then limit=(-max_total_time="$FUZZ_SECONDS"); else limit=(-seed=1 -runs="${runs[$name]}"); fi
  local log=$build/fuzz/fuzz_$name.log
  if "$build"/fuzz/fuzz_"$name" "${limit[@]}" -dict="$here"/tests/fuzz/json.dict -artifact_prefix="$build"/fuzz/ \
       -print_final_stats=1 "$corpus" 2>"$log"; then
    printf '== fuzz_%s %s\n%s\n' "$name" "${limit[*]}" \
      "$(grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)|^#[0-9]+ +DONE' "$log")"
  else
    printf '== fuzz_%s %s\n%s\nfuzz_%s failed: see %s\n' "$name" "${limit[*]}" "$(tail -n 40 "$log")" "$name" "$log" >&2
    return 1
  fi
}
failed=0
running=0
for name in bulk bulk_adapters unmarshal sigv4 sync_answer; do
  if [ "$running" -ge "${JOBS:-$(nproc)}" ]; then wait -n || failed=1; running=$((running - 1)); fi
  run_one "$name" &
  running=$((running + 1))
done
while [ "$running" -gt 0 ]; do wait -n || failed=1; running=$((running - 1)); done
exit "$failed"
