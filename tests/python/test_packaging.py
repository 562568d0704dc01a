"""The source distribution `pip install ddb2os-<version>.tar.gz` builds from: it holds every tracked file the
module's build reads, and nothing a developer's checkout may hold beside them that must not be published
(scikit-build-core takes every file .gitignore does not name, untracked ones too)."""
from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
import re
import tarfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]

# Untracked files a checkout may hold: credentials for the backfill or the demo, Conan's preset.
STRAYS = [".env", ".env.local", "prod.env", "CMakeUserPresets.json", "test_package/CMakeUserPresets.json"]


def _tracked() -> list:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout (an unpacked sdist?): which files are tracked is not known")
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, stdout=subprocess.PIPE).stdout
    return [p for p in out.decode().split("\0") if p]


def test_the_sdist_holds_the_build_and_no_stray_file(tmp_path):
    tracked = _tracked()
    tree = tmp_path / "tree"
    for rel in tracked:
        dest = tree / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest)
    for rel in STRAYS:
        (tree / rel).write_text("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\n")
    dist = tmp_path / "dist"
    dist.mkdir()
    # The PEP 517 hook pip calls (scikit-build-core is a test requirement; no compiler runs for an sdist).
    hook = "import sys; from scikit_build_core.build import build_sdist; print(build_sdist(sys.argv[1]))"
    name = subprocess.run([sys.executable, "-c", hook, str(dist)], cwd=tree, check=True,
                          stdout=subprocess.PIPE).stdout.decode().split()[-1]
    with tarfile.open(dist / name) as tar:
        top = name[: -len(".tar.gz")] + "/"
        members = {m.name[len(top):] for m in tar.getmembers() if m.isfile()}
    for rel in STRAYS:
        assert rel not in members
    assert not [m for m in members if m.startswith((".ci/", "benchmarks/"))]
    needed = [r for r in tracked if r.startswith(("include/", "bindings/python/", "cmake/"))]
    needed += ["CMakeLists.txt", "pyproject.toml", "README.md", "LICENSE"]
    assert [r for r in needed if r not in members] == []


def _names(requirements) -> set:
    return {re.split(r"[<>=!~;\[ ]", r.strip(), maxsplit=1)[0].lower() for r in requirements
            if r.strip() and not r.lstrip().startswith("#")}


def test_the_test_extra_names_what_the_tests_import():
    """`pip install 'ddb2os[test]'` then pytest: the extra has what tests/requirements.txt has but the tools that
    build the module (scikit-build-core, pybind11) and make test-conan's conan."""
    tomllib = pytest.importorskip("tomllib")  # 3.11+; the tests' own interpreter in CI is 3.11
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    lines = [line.split("#", 1)[0] for line in (ROOT / "tests/requirements.txt").read_text().splitlines()]
    assert _names(extra) == _names(lines) - {"scikit-build-core", "pybind11", "conan"}
