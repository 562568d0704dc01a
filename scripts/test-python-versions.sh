#!/usr/bin/env bash
# The Python module on the other CPython versions Lambda runs (python3.9 to python3.13), beside the
# main interpreter's full run (make test-python): for each version found (pyenv's, or python3.N on
# PATH), a virtual environment in the build tree, the test requirements, the module built with
# -Werror, and the tests that need no server but the ones they start themselves (the module, the
# handler, signing, the backfill, the test proxies, the CLI, and the Lambda runtime under AWS's
# emulator, compared with awslambdaric from 3.10 on, as tests/requirements.txt has it). Versions not
# found are named at the end; DDB2OS_REQUIRE_PYTHONS="3.9 3.12" makes those fatal.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
versions=(3.9 3.10 3.12 3.13)
tests=(tests/python/test_module.py tests/python/test_handler.py tests/python/test_sign.py
       tests/python/test_sigv4_botocore.py tests/python/test_backfill.py tests/python/test_proxies.py
       tests/python/test_cli.py tests/python/test_lambda_runtime.py)

find_python() {  # the newest pyenv release of version $1 (3.13.1, not 3.13t), else python$1 on PATH
  local root found
  root=$( (command -v pyenv >/dev/null && pyenv root) || echo "${PYENV_ROOT:-$HOME/.pyenv}")
  found=$(ls -d "$root"/versions/"$1".* 2>/dev/null | grep -E "/$1\.[0-9]+\$" | sort -V | tail -n 1 || true)
  if [ -n "$found" ] && [ -x "$found/bin/python$1" ]; then echo "$found/bin/python$1"; return; fi
  command -v "python$1" || true
}

cd "$here"
missing=()
tested=()
for v in "${versions[@]}"; do
  py=$(find_python "$v")
  if [ -z "$py" ]; then missing+=("$v"); continue; fi
  venv=$build/pyenv-$v
  echo "== Python $v ($py): $venv"
  # An interpreter without venv or ensurepip (Debian's python3.N without python3.N-venv) is not usable
  # here: named at the end with the ones not found, not an error of the project's. pip older than 23.1
  # has no -C (--config-settings' short form); Python 3.9's and 3.10's venvs come with one.
  if ! { [ -x "$venv/bin/python" ] || "$py" -m venv "$venv"; } ||
     ! PIP_ROOT_USER_ACTION=ignore "$venv/bin/python" -m pip install -q --disable-pip-version-check 'pip>=23.1'; then
    rm -rf "$venv"; missing+=("$v (no venv or pip)"); continue
  fi
  # The Conan test and the stub's type check (test_docs) run on python3 only.
  grep -v -e '^conan' -e '^mypy' tests/requirements.txt > "$venv/requirements.txt"
  PIP_ROOT_USER_ACTION=ignore "$venv/bin/python" -m pip install -q --disable-pip-version-check \
    -r "$venv/requirements.txt"
  CMAKE_BUILD_PARALLEL_LEVEL=${JOBS:-$(nproc)} PIP_ROOT_USER_ACTION=ignore "$venv/bin/python" -m pip install -q \
    --disable-pip-version-check -C cmake.define.DDB2OS_WERROR=ON .
  DDB2OS_BUILD_DIR=$build "$venv/bin/python" -m pytest -q -p no:cacheprovider -rs \
    -n "${PYTEST_PROCESSES:-2}" --dist loadfile "${tests[@]}"
  tested+=("$v")
done

echo "== Python versions tested: ${tested[*]:-none}; not found: ${missing[*]:-none}"
for v in ${DDB2OS_REQUIRE_PYTHONS:-}; do
  for m in "${missing[@]}"; do
    if [ "${m%% *}" = "$v" ]; then echo "error: Python $v is required (DDB2OS_REQUIRE_PYTHONS): $m" >&2; exit 1; fi
  done
done
