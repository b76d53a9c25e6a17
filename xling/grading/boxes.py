"""Boxes in a completion: every complete ``\\boxed{...}`` / ``\\fbox{...}`` / ``\\boxed x``, found in one pass.

In: a completion's text. Out: each box as (start, end, content) in order (`boxes`; unclosed boxes left
out, nested braces and escaped ones handled, linear time even on thousands of boxes) and the content of
the last non-empty one (`last_boxed`). The extraction of the final answer (`xling.grading.extraction`),
SFT targets and language identification (which leaves boxes out) read boxes through here.
"""

from __future__ import annotations

import re

_BOX_TOKENS = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])[ \t]*(\{)?|\\.|[{}]", re.DOTALL)
_BARE_BOX = re.compile(r"[^\s$\\{}]+")


def boxes(text: str) -> list[tuple[int, int, str]]:
    """Every complete box as (start, end, content), in order of start; unclosed boxes are left out.

    One pass over the braces (escaped ones skipped), so even thousands of nested or unclosed boxes
    cost linear time.
    """
    out: list[tuple[int, int, str]] = []
    opened: list[tuple[int, int, int]] = []  # (start, content start, depth outside its brace)
    depth = 0
    for m in _BOX_TOKENS.finditer(text):
        token = m.group(0)
        if token == "{":
            depth += 1
        elif token == "}":
            depth = max(0, depth - 1)
            if opened and opened[-1][2] == depth:
                start, content, _ = opened.pop()
                out.append((start, m.end(), text[content:m.start()].strip()))
        elif m.group(1):  # \boxed{
            opened.append((m.start(), m.end(), depth))
            depth += 1
        elif token.startswith(("\\boxed", "\\fbox")):  # \boxed x
            bare = _BARE_BOX.match(text, m.end())
            if bare:
                out.append((m.start(), bare.end(), bare.group(0).rstrip(".,;")))
    out.sort()
    return out


def last_boxed(text: str) -> str | None:
    """The content of the last complete, non-empty `\\boxed{...}` / `\\fbox{...}` / `\\boxed x`."""
    for _, _, content in reversed(boxes(text)):
        if content:
            return content
    return None

