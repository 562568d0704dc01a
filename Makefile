# ddb2os — the Quick start targets. Every target installs what is missing first.
BUILD      ?= build
CLANG_BUILD ?= build/clang-asan
PYTHON     ?= python3
JOBS       ?= $(shell nproc)

.PHONY: all deps configure build python test test-cpp test-clang test-python test-python-versions test-debian-testing test-fuzz fuzz test-conan demo demo-cli bench clean

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/build.ninja: | deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=g++ -DDDB2OS_WERROR=ON

configure: deps $(BUILD)/build.ninja

build: configure
	cmake --build $(BUILD) -j $(JOBS)

# g++ -O2 build: unit tests, header self-containment, consumer projects.
test-cpp: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# clang 14 with AddressSanitizer and UndefinedBehaviorSanitizer: warnings and memory errors.
$(CLANG_BUILD)/build.ninja: | deps
	cmake -S . -B $(CLANG_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++-14 -DDDB2OS_WERROR=ON \
	  -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"

test-clang: deps $(CLANG_BUILD)/build.ninja
	cmake --build $(CLANG_BUILD) -j $(JOBS)
	$(CLANG_BUILD)/tests/ddb2os_tests --no-intro=true

# The Python module, installed the documented way (build tree reused: see pyproject.toml).
python: deps
	$(PYTHON) -m pip install -q --disable-pip-version-check --config-settings=cmake.define.DDB2OS_WERROR=ON .

# pytest-xdist's processes for every pytest run, each taking whole test files (a file's servers are its own).
# One process keeps under one core busy (waiting on servers and timeouts): 3.11's run took 155 s of CPU in 190 s.
# PYTEST_PROCESSES=0 runs every file in pytest's own process (for a debugger).
PYTEST_PROCESSES ?= 2
export PYTEST_PROCESSES

test-python: build python
	DDB2OS_BUILD_DIR=$(abspath $(BUILD)) $(PYTHON) -m pytest -q -p no:cacheprovider \
	  -n $(PYTEST_PROCESSES) --dist loadfile tests/python

# The module on Lambda's other Python versions (3.9, 3.10, 3.12, 3.13) where this machine has them
# (pyenv's, or python3.N on PATH): the tests that need no server, in a virtual environment each.
test-python-versions: build
	JOBS=$(JOBS) bash scripts/test-python-versions.sh $(abspath $(BUILD))

# Lambda's newest Python (3.14) and the newest g++, clang, CMake, libcurl and OpenSSL, which this machine lacks:
# Debian testing, made by debootstrap in the build tree; in it (chroot), ctest (g++), the unit tests
# (clang) and the module's tests that need no server. Needs root.
test-debian-testing: deps
	JOBS=$(JOBS) bash scripts/test-debian-testing.sh $(abspath $(BUILD))

# libFuzzer targets (tests/fuzz/) with ASan and UBSan: a fixed number of inputs each from the seeds
# (make test), or FUZZ_SECONDS each from a random seed (make fuzz).
test-fuzz: deps
	JOBS=$(JOBS) bash scripts/test-fuzz.sh $(abspath $(BUILD))/fuzz

FUZZ_SECONDS ?= 600
fuzz: deps
	JOBS=$(JOBS) FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/test-fuzz.sh $(abspath $(BUILD))/fuzz

# The Conan package (conanfile.py, test_package/): created and its test_package run against the
# system's libraries (tests/conan/system stand in for ConanCenter's), with no remote. Conan's home
# is kept in the build tree.
CONAN := CONAN_HOME=$(abspath $(BUILD))/conan-home conan
test-conan: deps
	$(CONAN) profile detect --exist-ok >/dev/null
	for lib in nlohmann_json openssl libcurl zlib; do \
	  $(CONAN) export tests/conan/system --name $$lib --version system >/dev/null || exit 1; done
	$(CONAN) create . -pr:a tests/conan/system.profile --build=missing -nr

# The README's test command: everything, on a fresh machine.
test: deps
	$(MAKE) test-cpp
	$(MAKE) test-clang
	$(MAKE) test-fuzz
	$(MAKE) test-python
	$(MAKE) test-python-versions
	$(MAKE) test-debian-testing
	$(MAKE) test-conan

# The README's main job: a DynamoDB table's changes synced into a local OpenSearch.
demo: python
	$(PYTHON) scripts/demo.py

# The CLI on a sample event (no servers).
demo-cli: build
	@bash scripts/demo.sh $(BUILD)

# Benchmarks against the alternatives, side by side (not tests): build/bench/results.json.
BENCH_BUILD ?= build/bench-build
bench: python
	cmake -S . -B $(BENCH_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=g++ \
	  -DDDB2OS_BUILD_BENCHMARKS=ON -DDDB2OS_BUILD_TESTS=OFF
	cmake --build $(BENCH_BUILD) -j $(JOBS)
	$(PYTHON) benchmarks/run_all.py --build $(BENCH_BUILD)

clean:
	rm -rf $(BUILD)
