"""The README's demo output is what `python run.py demo` prints: every table and line of the README's
verbatim block appears, block by block and in order, in what the default demo prints now. A change that
alters the demo's numbers fails here until the README is regenerated.

It runs the whole default demo (about 10 minutes on 2 cores, pretraining the toy unless $XLING_CACHE
holds it), so it is skipped unless XLING_DEMO_CHECK=1:

    XLING_DEMO_CHECK=1 python -m pytest -q -m demo tests/test_demo_readme.py

The toy's numbers come from float32 training on the CPU: a CPU with another vector instruction set
(or another thread count) may round differently and end with other numbers. The demo prints what
computed its numbers (`numbers computed with: ...`) and the README says what its output was recorded
with; on another kind of machine the comparison is skipped, saying so, instead of failing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

demo_check = pytest.mark.skipif(os.environ.get("XLING_DEMO_CHECK") != "1",
                                reason="runs the whole demo (minutes): set XLING_DEMO_CHECK=1")


def demo_section(readme: str) -> str:
    """The README's section on the classroom demo (up to the next top-level section)."""
    return readme.split("## The classroom demo", 1)[1].split("\n## ", 1)[0]


def readme_blocks(readme: str) -> list[list[str]]:
    """The README's demo output (the code block after "Its tables, then what to look at"), split into
    blocks at blank lines; lines right-stripped."""
    section = demo_section(readme)
    match = re.search(r"Its tables, then what to look at.*?\n```\n(.*?)\n```", section, re.S)
    assert match, "the README's demo section has no verbatim output block"
    blocks, block = [], []
    for line in match.group(1).splitlines():
        if line.strip():
            block.append(line.rstrip())
        elif block:
            blocks.append(block)
            block = []
    return blocks + ([block] if block else [])


COMPUTED = re.compile(r"numbers computed with: (.+?) \(a machine")


def recorded_with(readme: str) -> str:
    """The machine line the README's demo output was recorded with (`numbers computed with: ...`)."""
    section = demo_section(readme)
    match = re.search(r"recorded with `([^`]+)`", section)
    assert match, "the README's demo section does not say what machine its output was recorded with"
    return match.group(1)


def missing_blocks(blocks: list[list[str]], printed: list[str]) -> list[list[str]]:
    """The blocks that do not appear, each as consecutive non-blank lines, in order, in `printed`."""
    lines = [line.rstrip() for line in printed if line.strip()]
    at, missing = 0, []
    for block in blocks:
        found = next((i for i in range(at, len(lines) - len(block) + 1) if lines[i:i + len(block)] == block), None)
        if found is None:
            missing.append(block)
        else:
            at = found + len(block)
    return missing


def test_the_block_matcher_finds_blocks_in_order_only():
    printed = ["x", "a", "b", "", "y", "c", "  "]
    assert missing_blocks([["a", "b"], ["c"]], printed) == []
    assert missing_blocks([["c"], ["a", "b"]], printed) == [["a", "b"]]  # out of order
    assert missing_blocks([["a", "c"]], printed) == [["a", "c"]]  # not consecutive


def test_the_readme_holds_the_demo_output_in_blocks():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert COMPUTED.search(f"numbers computed with: {recorded_with(readme)} (a machine")
    blocks = readme_blocks(readme)
    assert blocks[0][0] == "synth: accuracy % [95% CI]" and len(blocks) >= 4
    assert any(line.startswith("What these numbers show:") for line in blocks[-1])


@pytest.mark.demo
@demo_check
def test_the_readme_shows_what_the_default_demo_prints(tmp_path):
    blocks = readme_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    env = {**os.environ, "XLING_CACHE": os.environ.get("XLING_CACHE") or str(tmp_path / "cache"),
           "COLUMNS": "160", "PYTHONUNBUFFERED": "1"}
    done = subprocess.run([sys.executable, "run.py", "demo", f"out={tmp_path / 'demo'}"], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=3600)
    assert done.returncode == 0, done.stdout[-3000:]
    (tmp_path / "demo.log").write_text(done.stdout, encoding="utf-8")
    here = COMPUTED.search(done.stdout)
    assert here, "the demo did not print what computed its numbers"
    recorded = recorded_with((ROOT / "README.md").read_text(encoding="utf-8"))
    if here.group(1) != recorded:
        pytest.skip(f"this machine computes with {here.group(1)}; the README's output was recorded with {recorded}: "
                    "float results may differ, so only a machine of that kind can compare them")
    missing = missing_blocks(blocks, done.stdout.splitlines())
    assert not missing, (f"{len(missing)} of the README's {len(blocks)} demo output blocks differ from what the demo "
                         f"prints now ({tmp_path / 'demo.log'}); regenerate them. The first:\n" + "\n".join(missing[0]))
