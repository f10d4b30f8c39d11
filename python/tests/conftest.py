"""Fixtures: the repository's examples and the `seg` binary to compare with.

`SEG_BIN` names the binary (tests/it/python.rs sets it to the one cargo
built); otherwise target/debug/seg, then `seg` on PATH.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
DATA = EXAMPLES / "data"
AS_OF = "2026-11-01"


@pytest.fixture(scope="session")
def seg_bin():
    for candidate in (os.environ.get("SEG_BIN"), ROOT / "target/debug/seg", shutil.which("seg")):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    pytest.fail("no seg binary: build it (cargo build) or set SEG_BIN")


@pytest.fixture(scope="session")
def seg(seg_bin):
    """Runs `seg ARGS…` and returns its standard output; fails on a non-zero exit."""

    def run(*args):
        out = subprocess.run([seg_bin, *args], capture_output=True, text=True)
        assert out.returncode == 0, f"seg {' '.join(args)}: {out.stderr}"
        return out.stdout

    return run


@pytest.fixture(scope="session")
def engine():
    import seglang

    return seglang.Engine(DATA)


@pytest.fixture(scope="session")
def cli_results(seg):
    """Every example script's segments as `seg run --all --format json` gives them."""
    results = {}
    for script in sorted(EXAMPLES.glob("*.seg")):
        out = seg("run", str(script), "--data", str(DATA), "--all", "--format", "json", "--as-of", AS_OF)
        results[script.name] = {s["segment"]: s["profile_ids"] for s in json.loads(out)}
    assert len(results) > 20
    return results


@pytest.fixture(scope="session")
def big_data(tmp_path_factory, seg):
    """A generated data set large enough that a query takes a while."""
    out = tmp_path_factory.mktemp("big") / "data"
    seg("gen", "--out", str(out), "--profiles", "200000", "--events", "2000000")
    return out
