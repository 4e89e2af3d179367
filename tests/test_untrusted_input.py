"""Nothing read from a file may run code: no pickle, no torch.load without weights_only, no eval/exec, YAML
only through safe_load.  A static scan of the package, so a new module is checked the day it is added."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "mvcodec"
SOURCES = sorted(PACKAGE.rglob("*.py"))

FORBIDDEN = {
    "pickle": re.compile(r"^\s*(import|from)\s+(c?pickle|dill|joblib|shelve)\b", re.M),
    "torch.load without weights_only=True": re.compile(r"torch\.load\((?![^)]*weights_only\s*=\s*True)"),
    "eval/exec of text": re.compile(r"(?<![\w.])(eval|exec)\("),
    "yaml.load (not safe_load)": re.compile(r"yaml\.(load|unsafe_load|full_load)\("),
    "numpy allow_pickle": re.compile(r"allow_pickle\s*=\s*True"),
}


def test_the_scan_sees_the_package():
    assert len(SOURCES) > 30


@pytest.mark.parametrize("rule", sorted(FORBIDDEN))
def test_no_code_runs_from_data(rule):
    pattern = FORBIDDEN[rule]
    hits = [f"{p.relative_to(PACKAGE)}:{text[:m.start()].count(chr(10)) + 1}"
            for p in SOURCES for text in [p.read_text()] for m in pattern.finditer(text)]
    assert not hits, f"{rule}: {hits}"
