#!/usr/bin/env bash
# Installs what ddb2os needs to build and test on a fresh Debian machine, and only what is missing.
# Used by `make`, `make test`, `make demo` and `make bench`.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

need_apt=()
have_file() { [ -e "$1" ]; }
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_cmd g++ || need_apt+=(g++)
have_cmd cmake || need_apt+=(cmake)
have_cmd ninja || need_apt+=(ninja-build)
have_cmd clang++-14 || need_apt+=(clang-14)
# The sanitizer runtimes are a separate package that clang-14 does not pull in.
compgen -G "/usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.asan-$(uname -m).a" >/dev/null || need_apt+=(libclang-rt-14-dev)
have_file /usr/include/nlohmann/json.hpp || need_apt+=(nlohmann-json3-dev)
have_file /usr/include/doctest/doctest.h || need_apt+=(doctest-dev)
have_file /usr/include/openssl/evp.h || need_apt+=(libssl-dev)
have_file /usr/include/x86_64-linux-gnu/curl/curl.h || have_file /usr/include/curl/curl.h || need_apt+=(libcurl4-openssl-dev)
have_file /usr/include/zlib.h || need_apt+=(zlib1g-dev)
have_cmd openssl || need_apt+=(openssl)
# OpenSearch and DynamoDB Local: Java 17 or later.
java_version=$(java -version 2>&1 || true)
[[ "$java_version" =~ version\ \"(1[7-9]|[2-9][0-9]) ]] || need_apt+=(openjdk-17-jre-headless)
have_cmd mvn || need_apt+=(maven)                      # fetches them from Maven Central
have_cmd go || need_apt+=(golang-go)                   # builds the Lambda Runtime Interface Emulator (its Go module)
have_cmd debootstrap || need_apt+=(debootstrap)      # Debian testing for Python 3.14 (scripts/test-debian-testing.sh)
have_file /usr/include/pybind11/pybind11.h || need_apt+=(pybind11-dev)
have_file /usr/include/simdjson.h || need_apt+=(libsimdjson-dev)
# The module's build needs the running Python's headers, and the tests its pip: Debian's packages when
# they are Debian's to give (its python3, or a virtual environment made from it, whose headers are the
# system's); another Python, such as pyenv's, brings its own.
py=${PYTHON:-python3}
include=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])' 2>/dev/null || true)
if [[ "$include" == /usr/include/* ]] && [ ! -e "$include/Python.h" ]; then need_apt+=(python3-dev); fi
if [[ "$(command -v "$py")" == /usr/bin/* ]] && ! "$py" -m pip --version >/dev/null 2>&1; then need_apt+=(python3-pip); fi

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# Python packages for the tests (and later the module and benchmarks), at the versions
# tests/requirements.txt allows; pip runs only when one is missing or out of range (Debian's own
# python3 refuses pip installs, PEP 668: a C++-only `make build` must not depend on pip).
if ! "$py" - "$here/tests/requirements.txt" <<'PY' >/dev/null 2>&1
import sys, importlib.metadata as md
from pip._vendor.packaging.requirements import Requirement
for line in open(sys.argv[1]):
    line = line.split('#')[0].strip()
    if line:
        r = Requirement(line)
        if r.marker is not None and not r.marker.evaluate():
            continue  # not for this Python
        if not r.specifier.contains(md.version(r.name), prereleases=True):
            sys.exit(1)
PY
then
  echo "install-deps: pip install -r tests/requirements.txt"
  PIP_ROOT_USER_ACTION=ignore "$py" -m pip install -q --disable-pip-version-check -r "$here/tests/requirements.txt"
fi
