"""Shared pytest fixtures: where the C++ build put its programs."""
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]

# The servers the tests start are on loopback: never reached through a proxy this machine's environment
# names (requests and libcurl both read no_proxy; the tests' subprocesses inherit it).
for _name in ("no_proxy", "NO_PROXY"):
    os.environ[_name] = ",".join(filter(None, [os.environ.get(_name, ""), "127.0.0.1", "localhost"]))


@pytest.fixture(scope="session")
def build_dir() -> pathlib.Path:
    d = pathlib.Path(os.environ.get("DDB2OS_BUILD_DIR", ROOT / "build"))
    if not (d / "ddb2os").exists():
        pytest.fail(f"no C++ build at {d}: run `make build` (or `make test`) first")
    return d


@pytest.fixture(scope="session")
def cli(build_dir) -> pathlib.Path:
    return build_dir / "ddb2os"
