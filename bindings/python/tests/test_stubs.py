"""The shipped type stubs match the extension (mypy's stubtest), and the
package and example type-check under mypy --strict: a stub that drifts
from the Rust code fails here."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))

mypy = pytest.importorskip("mypy", reason="mypy is not installed")


def run(tmp_path, *args):
    # Not from the repository root, whose Rust crate directory `dkv/`
    # would pass for a namespace package.
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, timeout=300, cwd=str(tmp_path)
    )


def test_stubs_match_the_extension(tmp_path):
    done = run(tmp_path, "mypy.stubtest", "dkv._dkv")
    assert done.returncode == 0, done.stdout + done.stderr


def test_package_and_example_type_check(tmp_path):
    example = os.path.join(ROOT, "examples", "python", "cluster.py")
    for target in (["-p", "dkv"], [example]):
        done = run(tmp_path, "mypy", "--strict", "--no-incremental", *target)
        assert done.returncode == 0, done.stdout + done.stderr
