#!/usr/bin/env bash
# Lambda's newest Python (python3.14) and the newest toolchain, which a Debian 12 machine has neither
# of: a Debian testing system, made by debootstrap from Debian's archive into the build tree, and in
# it (chroot) what a user there would build:
#   - the C++ library, its unit tests, tools and consumer projects with its g++, CMake, libcurl and
#     OpenSSL, with -Werror, and ctest; the unit tests again built with its clang, with -Werror;
#   - the Python module with -Werror for its python3.14, in a virtual environment, and the tests that
#     need no server but the Lambda Runtime Interface Emulator (test-python-versions.sh's, less
#     test_proxies.py, whose OpenSearch needs Java); the emulator is this machine's build of it (a
#     static Go program), copied in.
# The sources are copied in (tracked and untracked files, not the build tree), never mounted, so that
# nothing outside the build tree can be reached through the system's directories. Needs root (chroot,
# mount). Debian testing moves: the versions it gave are printed first, for a failure to name them.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
root=$build/debian-testing
mirror=${DDB2OS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
jobs=${JOBS:-$(nproc)}
packages=(ca-certificates g++ clang make cmake ninja-build pkg-config nlohmann-json3-dev doctest-dev libssl-dev openssl
          libcurl4-openssl-dev zlib1g-dev python3.14-dev python3.14-venv)
tests=(tests/python/test_module.py tests/python/test_handler.py tests/python/test_sign.py
       tests/python/test_sigv4_botocore.py tests/python/test_backfill.py tests/python/test_cli.py
       tests/python/test_lambda_runtime.py)

if [ "$(id -u)" != 0 ]; then
  echo "error: $0 needs root (debootstrap, chroot, mount)" >&2
  exit 1
fi
command -v debootstrap >/dev/null || { echo "error: debootstrap is missing (scripts/install-deps.sh installs it)" >&2; exit 1; }

mounts_under() { awk -v r="$1" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/self/mounts | sort -r; }
unmount_all() {
  local m
  for m in $(mounts_under "$root"); do umount "$m" 2>/dev/null || umount -l "$m"; done
}
unmount_all  # a run that was killed may have left them
trap unmount_all EXIT

# The system, once per build tree (again when the package list changes).
if [ "$(cat "$root/.ddb2os-packages" 2>/dev/null)" != "${packages[*]}" ]; then
  [ -z "$(mounts_under "$root")" ] || { echo "error: still mounted under $root" >&2; exit 1; }
  rm -rf "$root"
  echo "== debootstrap: Debian testing from $mirror into $root"
  packages_csv=$(IFS=,; echo "${packages[*]}")
  if ! debootstrap --variant=minbase --include="$packages_csv" testing "$root" "$mirror" > "$build/debian-testing.log" 2>&1; then
    tail -n 30 "$build/debian-testing.log" >&2
    echo "error: debootstrap of Debian testing failed (log: $build/debian-testing.log)" >&2
    exit 1
  fi
  echo "${packages[*]}" > "$root/.ddb2os-packages"
fi

# The network as this machine has it: its resolver, and its CA bundle for pip (an egress proxy's CA
# is in this machine's bundle, not in Debian's).
cp /etc/resolv.conf "$root/etc/resolv.conf"
host_ca=${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}
cp "$host_ca" "$root/etc/ssl/host-ca.crt"
# The system's root a mount point of its own, private: the emulator's Lambda Managed Instances mode
# (stack.py) makes a mount namespace with unshare, which sets / private there and cannot unless / is
# a mount point; and nothing mounted in that namespace reaches this one's.
mount --bind "$root" "$root" && mount --make-private "$root"
mount -t proc proc "$root/proc"
for d in null zero full random urandom; do  # device files, bound one by one: no directory of the host's
  touch "$root/dev/$d" && mount --bind "/dev/$d" "$root/dev/$d"
done
mkdir -p "$root/dev/shm" && mount -t tmpfs -o size=256m tmpfs "$root/dev/shm"

# The sources, as they are now; the SigV4 suite where the tests look for it (../shared beside them).
rm -rf "$root/src" && mkdir -p "$root/src/ddb2os" "$root/src/shared"
(cd "$here" && git ls-files -co --exclude-standard -z | tar --null --no-recursion --ignore-failed-read -T - -cf -) |
  tar -xf - -C "$root/src/ddb2os"
[ ! -d "$here/../shared/conformance" ] || cp -r "$here/../shared/conformance" "$root/src/shared/"
grep -v -e '^conan' -e '^mypy' "$here/tests/requirements.txt" > "$root/src/requirements.txt"
# The emulator where stack.py looks for it (built here when missing: Go is not in that system).
rie=$(cd "$here" && python3 -c 'import sys; sys.path.insert(0, "scripts"); import stack; print(stack.fetch_lambda_rie())')
rie_dir=$root/src/ddb2os/.cache/stack/$(basename "$(dirname "$rie")")
mkdir -p "$rie_dir" && cp "$rie" "$rie_dir/"

env_in=(PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 JOBS="$jobs" PYTHONDONTWRITEBYTECODE=1
        PYTEST_PROCESSES="${PYTEST_PROCESSES:-2}"
        PIP_CERT=/etc/ssl/host-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
        CMAKE_BUILD_PARALLEL_LEVEL="$jobs")
for v in HTTP_PROXY HTTPS_PROXY NO_PROXY http_proxy https_proxy no_proxy PIP_INDEX_URL PIP_EXTRA_INDEX_URL; do
  [ -z "${!v:-}" ] || env_in+=("$v=${!v}")
done
chroot "$root" env -i "${env_in[@]}" bash -euo pipefail -c '
  cd /src/ddb2os
  echo "== Debian testing: $(g++ --version | head -n 1); $(cmake --version | head -n 1); $(python3.14 --version)"
  echo "   $(dpkg-query -W -f "libcurl \${Version}, " libcurl4-openssl-dev)$(openssl version)"
  cmake -S . -B /build/cpp -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=g++ -DDDB2OS_WERROR=ON >/dev/null
  cmake --build /build/cpp -j "$JOBS"
  (cd /build/cpp && ctest --output-on-failure -j "$JOBS")
  echo "== Debian testing: $(clang++ --version | head -n 1)"
  cmake -S . -B /build/clang -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++ -DDDB2OS_WERROR=ON >/dev/null
  cmake --build /build/clang -j "$JOBS" --target ddb2os_tests
  /build/clang/tests/ddb2os_tests --no-intro=true
  [ -x /build/venv/bin/python ] || python3.14 -m venv /build/venv
  /build/venv/bin/python -m pip install -q "pip>=23.1"
  /build/venv/bin/python -m pip install -q -r /src/requirements.txt
  /build/venv/bin/python -m pip install -q -C cmake.define.DDB2OS_WERROR=ON -C build-dir=/build/python .
  DDB2OS_BUILD_DIR=/build/cpp /build/venv/bin/python -m pytest -q -p no:cacheprovider -rs \
    -n "$PYTEST_PROCESSES" --dist loadfile '"${tests[*]}"'
'
echo "== Debian testing: passed"
