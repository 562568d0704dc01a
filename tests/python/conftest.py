"""Shared pytest fixtures: where the C++ build put its programs."""
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def build_dir() -> pathlib.Path:
    d = pathlib.Path(os.environ.get("DDB2OS_BUILD_DIR", ROOT / "build"))
    if not (d / "ddb2os").exists():
        pytest.fail(f"no C++ build at {d}: run `make build` (or `make test`) first")
    return d


@pytest.fixture(scope="session")
def cli(build_dir) -> pathlib.Path:
    return build_dir / "ddb2os"
