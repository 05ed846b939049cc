"""Fixtures the tests share: a tiny slice of scikit-learn's digits, a tiny conv SNN for it, and the strict
build of the real site (built once per session: tests/test_site.py reads it, tests/test_browser.py drives it)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from snncomp import data, models
from snncomp.data import encoding


@pytest.fixture(scope="module")
def tiny_split() -> data.Split:
    """256 training and 64 test images of the 8x8 digits."""
    s = data.digits()
    return data.Split(s.train_x[:256], s.train_y[:256], s.test_x[:64], s.test_y[:64], "digits-tiny")


@pytest.fixture(scope="module")
def tiny(tiny_split):
    """(a fresh conv SNN with 4 and 8 channels, `tiny_split`, `Direct(2)`), once per test module."""
    return models.conv_snn((1, 8, 8), channels=(4, 8), seed=0), tiny_split, encoding.Direct(2)


@pytest.fixture(scope="session")
def site_build(tmp_path_factory):
    """The strict build of the real site: its folder and the notebooks the build itself executed
    (the hook logs "snncomp: executing NAME" at INFO, so the build runs without -q)."""
    out = tmp_path_factory.mktemp("site")
    res = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
                         cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    return out, set(re.findall(r"snncomp: executing (\S+)", res.stdout + res.stderr))
