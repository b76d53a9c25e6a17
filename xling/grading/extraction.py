"""Extraction: the final answer of a completion, as written, in any of the 11 languages.

The grader (`xling.grading.answers`) checks what this module finds. First that applies:

1. **An explicit final statement after the last box**: a localized "the answer is" cue
   (`Language.answer_cues`) after the last box, with its answer right after it, wins over an earlier
   intermediate box.
2. **Boxes** (``\\boxed{...}`` with nested braces, ``\\fbox{...}``, ``\\boxed x``, found by
   `xling.grading.boxes`): the last group of boxes. Boxes joined only by commas, "and", part labels
   ("(b)") or assignments ("y =") are the parts of one answer, compared as a whole; boxes joined by "or" (`Language.or_words`) that name
   different answers are a hedge (the grader compares it as a whole too: right only where the gold
   has those parts, "x = 2 or x = 5"). Boxes with words between them are separate statements: the
   last one is the answer (a revision).
3. **The answer after the last cue**: a LaTeX expression, a clause of plain math (``x = 5``,
   ``(2, 3)``, ``12:00``, ``\\frac13``), a time or a number — "X or Y" is a hedge.
4. **The last answer-like thing** (not for ``choice``): the last LaTeX expression (``$...$``,
   ``\\(...\\)``, ``\\[...\\]``, or LaTeX written without delimiters such as ``2\\sqrt{3}``), time or
   number, whichever comes last. Digits are never read out of LaTeX: ``\\frac{1}{3}`` is 1/3, not 3,
   and the 3 of ``\\sqrt{3}`` is not a number.

For ``choice`` (option letters A–J) a cue is followed by "(C)", "C.", "**C**", "\\textbf{C}" or a
bare letter that is not a word ("I think", "A total"); with no box and no cue, a last line that is
only an option letter counts. Two letters joined by "or"/"and"/"/" are a hedge.
"""

from __future__ import annotations

import heapq
import itertools
import re
from dataclasses import dataclass

from xling.data.languages import LANGUAGES
from xling.grading.boxes import boxes, last_boxed
from xling.grading.numbers import (
    _NUMBER, NEUTRAL_COMMANDS, _UNIT_POWER, _readings, format_value, normalize_digits, number_in_answer, number_ok,
    prepare, time_matches,
)

HEDGE = "hedge"


@dataclass(frozen=True)
class Extraction:
    text: str | None  # the final answer as written (a box's content, or the text after a cue)
    source: str | None  # "boxed", "cue", "latex", "last_number", "hedge" or None (no answer)
    parts: tuple[str, ...] = ()  # the answers of a multi-part answer or of a hedge, in order


# ------------------------------------------------------------------------- joining words

def _words(attr: str) -> frozenset[str]:
    return frozenset(w.lower() for row in LANGUAGES.values() for w in getattr(row, attr))


_OR_WORDS = _words("or_words")
_AND_WORDS = _words("and_words")
_GAP_TEXT_CMD = re.compile(r"\\(?:text|textbf|textrm|mathrm|mbox)\s*\{([^{}]*)\}")
_GAP_NOISE = re.compile(
    r"\\(?:quad|qquad|[,;: !]|\\|\(|\)|\[|\])|\$|~|\*\*|[,;，；、]"
    r"|(?<![^\s(])(?:part|teil|partie|parte)\s*\(?\w{1,3}\)?\s*:?"  # "Part (b):"
    r"|(?<![^\s(])\(?(?:[a-h]|i{1,3}|iv|vi{0,3})\)(?=\s|$)|(?<!\S)(?:[a-h]|\d{1,2})[.)](?=\s|$)"  # "(b)", "b)", "2."
    r"|(?<!\S)[-•]\s"  # list items
    r"|(?:(?<![A-Za-z\\])[A-Za-z]|\\[A-Za-z]+)(?:_\{?\w{1,3}\}?)?\s*=",  # "y =", "x_2 =", "\theta ="
    re.IGNORECASE,
)
_MAX_GAP = 100


def gap_kind(gap: str) -> str | None:
    """How two answers are joined by `gap`: "or" (a hedge), "and" (parts of one answer) or None
    (other words between them: separate statements)."""
    if len(gap) > _MAX_GAP:
        return None
    rest = _GAP_NOISE.sub(" ", _GAP_TEXT_CMD.sub(r" \1 ", gap)).lower().split()
    if not all(w in _OR_WORDS or w in _AND_WORDS for w in rest):
        return None
    return "or" if any(w in _OR_WORDS for w in rest) else "and"


# ------------------------------------------------------------------------------------- cues

def _cue_pattern() -> str:
    cues = sorted({c.lower() for row in LANGUAGES.values() for c in row.answer_cues}, key=len, reverse=True)
    parts = []
    for cue in cues:
        body = re.escape(cue.rstrip(":： ").strip())
        body = body.replace(r"\ ", r"[\s\u00a0\u202f]+")
        parts.append(body + (r"[\s\u00a0\u202f]*[:：]" if cue.rstrip().endswith((":", "：")) else ""))
    return "|".join(parts)


def _cue_anchors() -> tuple[str, ...]:
    """One word of every cue (its longest), fewest possible: every cue contains one of them."""
    words = set()
    for row in LANGUAGES.values():
        for cue in row.answer_cues:
            tokens = [t.strip(":：—-") for t in cue.lower().split()]
            words.add(max((t for t in tokens if t), key=len))
    return tuple(sorted(w for w in words if not any(o != w and o in w for o in words)))


# Cues are found in the lower-cased text (a case-sensitive search is ten times faster); where
# lower-casing changes the length of a text, in the text itself, ignoring case. The search starts
# at the last occurrences of the cues' anchor words (`str.rfind` is far faster than a regex scan).
_CUES = re.compile(_cue_pattern())
_CUES_ANY_CASE = re.compile(_cue_pattern(), re.IGNORECASE)
_ANCHORS = _cue_anchors()
_ANCHOR_REACH = max(len(c) for row in LANGUAGES.values() for c in row.answer_cues) + 8


def _cues_backwards(lowered: str):
    """The cue matches of a lower-cased text, last first (each once)."""
    heap = [(-pos, anchor) for anchor in _ANCHORS if (pos := lowered.rfind(anchor)) >= 0]
    heapq.heapify(heap)
    seen: set[int] = set()
    while heap:
        neg, anchor = heapq.heappop(heap)
        pos = -neg
        before = lowered.rfind(anchor, 0, pos + len(anchor) - 1) if pos > 0 else -1
        if before >= 0:
            heapq.heappush(heap, (-before, anchor))
        found = [m for m in _CUES.finditer(lowered, max(0, pos - _ANCHOR_REACH), pos + _ANCHOR_REACH)
                 if m.start() <= pos < m.end() and m.start() not in seen]
        for m in reversed(found):
            seen.add(m.start())
            yield m


_CUE_WINDOW = 80
_NEAR = 25  # after a box, a cue's answer must start this close to it
_MAX_CUES = 64  # the last cues looked at: a text that repeats "the answer is" stays cheap
_LETTER = re.compile(r"(?<![A-Za-z])\(?([A-J])\)?(?![A-Za-z])")
_MARKED_LETTER = re.compile(r"\(([A-J])\)|\*\*\(?([A-J])\)?\*\*|\\text(?:bf)?\{\(?([A-J])\)?\}")
_LETTER_AS_WORD = re.compile(r"\s+([a-z]+)")  # "I think", "A total": the letter is a word, not an option
_OPTION_WORD = re.compile(r"(?:option|choice|opción|opcion|variante|вариант|選択肢|选项)\s*", re.IGNORECASE)
_SECOND_LETTER = re.compile(r"\)?\s*(?:,\s*)?([^\s()/,]+|/|,)\s*\(?([A-J])\)?(?![A-Za-z])")
_LAST_LINE_LETTER = re.compile(
    r"(?:^|\n)[ \t>#*_-]*(?:(?i:option|choice|answer)\s*:?\s*)?\(?([A-J])\)?[.)]?[ \t*_]*\s*$")

# ------------------------------------------------------------------------ LaTeX and answers

_SPAN = re.compile(
    r"\$\$(?P<a>.{1,400}?)\$\$|(?<![\\$])\$(?!\$)(?P<b>[^$\n]{1,200}?)(?<!\\)\$"
    r"|\\\((?P<c>.{1,400}?)\\\)|\\\[(?P<d>.{1,400}?)\\\]", re.DOTALL)
_WORD = re.compile(r"(?<![\\A-Za-z])[^\W\d_]{3,}")  # a word of text, not a LaTeX command
_BARE_LATEX_CORE = re.compile(r"\\[A-Za-z]+|\d\s*\^|\^\s*\{")
_RUN_REACH = 60  # a LaTeX expression written without delimiters: at most this far around its command
_COMMAND = re.compile(r"\\([A-Za-z]+)")
_NEGATION = re.compile(r"(?:not|nicht|kein|no|не|pas|si)(?![^\W\d_])", re.IGNORECASE)  # "the answer is not A"
_MATH_CLAUSE = re.compile(r"[-+]?[\w\\(\[{.][\w\s\\+\-*/^()\[\]{}=<>.,:√π≤≥×÷·']*")
_CLAUSE_END = re.compile(r"\.(?:\s|$)|[\n。！？!?;]|,\s+(?=[^\W\d_]{2})")
_LONG_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}|[^\x00-\x7f]")


class _Candidate:
    """An answer-like thing: its text, kind ("span", "latex", "time", "number"), the text between
    the previous candidate (or the start) and it, and, computed only when asked, its key: what two
    candidates must share to name the same answer."""

    __slots__ = ("text", "kind", "gap", "_match", "_answer_kind", "_decimal_comma")

    def __init__(self, text: str, kind: str, gap: str, match: re.Match | None, answer_kind: str, decimal_comma: bool):
        self.text, self.kind, self.gap = text, kind, gap
        self._match, self._answer_kind, self._decimal_comma = match, answer_kind, decimal_comma

    @property
    def key(self) -> str:
        if self._match is not None:
            values = _readings(self._match, self._decimal_comma)
            return format_value(values[0]) if values else self.text
        return _key(self.text, self._answer_kind, self._decimal_comma)


_NAMED_ARGUMENT = re.compile(r"\\[A-Za-z]+\s*\{[A-Za-z* ]*\}")  # \begin{pmatrix}, \text{ cm}, \operatorname{lcm}


def _latex_content_ok(content: str) -> bool:
    """A `$...$` whose content is LaTeX, not prose between two dollar amounts ("$5 and $6")."""
    return bool(content.strip()) and not _WORD.search(_NAMED_ARGUMENT.sub(" ", content))


def _in_run(ch: str) -> bool:
    return (ch.isascii() and not ch.isspace() and ch != "$") or ch.isdigit()


def _run_around(text: str, start: int, end: int) -> tuple[int, int]:
    """The expression around a LaTeX command: the characters next to it that are ASCII (or digits),
    not spaces and not '$', at most `_RUN_REACH` each way. Linear, unlike a regex that would try
    every start in a long run without spaces."""
    low = max(0, start - _RUN_REACH)
    while start > low and _in_run(text[start - 1]):
        start -= 1
    high = min(len(text), end + _RUN_REACH)
    while end < high and _in_run(text[end]):
        end += 1
    return start, end


def _bare_is_latex(run: str) -> bool:
    core = _UNIT_POWER.sub("", run)  # "m^2" is a unit, not LaTeX
    return "^" in core or any(c not in NEUTRAL_COMMANDS for c in _COMMAND.findall(core))


def _items(window: str, kind: str) -> list[tuple[int, int, str, str]]:
    """LaTeX expressions and times in `window`, as (start, end, text, kind), in order."""
    items: list[tuple[int, int, str, str]] = []
    if "$" in window or "\\(" in window or "\\[" in window:
        pos = 0
        while True:
            m = _SPAN.search(window, pos)
            if not m:
                break
            content = next(g for g in m.group("a", "b", "c", "d") if g is not None).strip()
            if not _latex_content_ok(content):
                pos = m.start() + 1  # prose between two dollar signs: the second may open a span
                continue
            if kind != "number" or any(c.isdigit() for c in normalize_digits(content)):
                items.append((m.start(), m.end(), content, "span"))
            pos = m.end()
    taken = [(s, e) for s, e, _, _ in items]

    def free(s: int, e: int) -> bool:
        return not any(s < te and ts < e for ts, te in taken)

    if "\\" in window or "^" in window:
        reached = 0
        for m in _BARE_LATEX_CORE.finditer(window):
            if m.start() < reached:
                continue  # inside the run found last
            start, end = _run_around(window, m.start(), m.end())
            reached = end
            run = window[start:end].rstrip(".,;:!?")
            if run.count(")") > run.count("("):
                run = run.rstrip(")")
            if run and _bare_is_latex(run) and free(start, start + len(run)):
                items.append((start, start + len(run), run, "latex"))
    if ":" in window or "：" in window:
        for m in time_matches(normalize_digits(window)):
            if free(m.start(), m.end()):
                items.append((m.start(), m.end(), window[m.start():m.end()].rstrip("."), "time"))
    items.sort()
    return items


def _key(text: str, kind: str, decimal_comma: bool) -> str:
    if kind == "number":
        found = number_in_answer(text, decimal_comma)
        if found:
            return format_value(found[1][0])
    return re.sub(r"\s+", "", normalize_digits(text))


def _candidates(window: str, kind: str, decimal_comma: bool) -> list[_Candidate]:
    """Every answer-like thing in `window` in order: LaTeX expressions, times and numbers."""
    out: list[_Candidate] = []
    pos = 0
    items = _items(window, kind)
    for item in items + [(len(window), len(window), "", "")]:
        start, end, text, kind_ = item
        segment = window[pos:start]
        if "^" in segment:
            segment = _UNIT_POWER.sub(lambda m: " " * len(m.group(0)), segment)
        segment = prepare(segment)
        last = 0
        for m in _NUMBER.finditer(segment):
            if number_ok(m):
                out.append(_Candidate(m.group(0).strip(), "number", segment[last:m.start()], m, kind, decimal_comma))
                last = m.end()
        if not kind_:
            break
        out.append(_Candidate(text, kind_, segment[last:], None, kind, decimal_comma))
        pos = end
    return out


def _group(cands: list[_Candidate], joined_parts: bool, source: str) -> Extraction:
    """One answer from candidates joined by connectors (`gap_kind`): the first is the answer, a
    differing one joined by "or" makes a hedge, and with `joined_parts` "and" makes parts."""
    chosen, hedged = [cands[0]], False
    for cand in cands[1:]:
        how = gap_kind(cand.gap)
        if how is None or (how == "and" and not joined_parts):
            break
        chosen.append(cand)
        hedged = hedged or how == "or"
    return _answer([c.text for c in chosen], [c.key for c in chosen], hedged, source)


def _answer(texts: list[str], keys: list[str], hedged: bool, source: str) -> Extraction:
    distinct = list(dict.fromkeys(keys))
    if len(distinct) == 1:
        return Extraction(texts[-1], source)
    parts = tuple(texts[keys.index(k)] for k in distinct)
    if hedged:
        return Extraction(" or ".join(parts), HEDGE, parts)
    return Extraction(", ".join(parts), source, parts)


def _math_clause(segment: str) -> str | None:
    """A cue's answer written as plain math: ``x = 5``, ``(2, 3)``, ``2x+1``, ``12:00``, ``\\frac13``."""
    end = _CLAUSE_END.search(segment, 0, 120)
    clause = segment[:end.start() if end else 120].strip().rstrip(".,:;").strip()
    if not clause or len(clause) > 80 or clause.startswith("$") or not _MATH_CLAUSE.fullmatch(clause):
        return None
    if _LONG_WORD.search(_COMMAND.sub(" ", clause)) or not any(c.isalnum() for c in clause):
        return None
    return clause


def _after_cue(segment: str, kind: str, decimal_comma: bool, near: bool) -> Extraction | None:
    stripped = segment.lstrip(" \t\n:：*_—–=")
    offset = len(segment) - len(stripped)
    if near and offset > _NEAR:
        return None
    if kind == "choice":
        return _letter_after_cue(stripped[:30], near)
    if kind == "math":
        clause = _math_clause(stripped)
        if clause is not None:
            return Extraction(clause, "cue")
    cands = _candidates(stripped[:(4 if kind == "math" else 1) * _CUE_WINDOW], kind, decimal_comma)
    if not cands or len(cands[0].gap) > (_NEAR if near else _CUE_WINDOW):
        return None
    return _group(cands, kind == "math" and cands[0].kind == "span", "cue")


def _letter_after_cue(window: str, near: bool) -> Extraction | None:
    window = _OPTION_WORD.sub("", window, count=1) if _OPTION_WORD.match(window) else window
    m = _MARKED_LETTER.search(window)  # "(B)", "**B**", "\\textbf{B}" first: "I believe (B)" is B
    if m is None:
        letters = list(_LETTER.finditer(window))
        for cand in letters:
            word = _LETTER_AS_WORD.match(window, cand.end()) if cand.group(0) in ("A", "I") else None
            if not word or word.group(1) in _OR_WORDS or word.group(1) in _AND_WORDS:
                m = cand  # a bare letter, unless it is a word ("I think", "A total", "A partir")
                break
        else:
            m = letters[0] if letters else None  # "A since ...": no other letter, so A
    if m is None or (near and m.start() > _NEAR):
        return None
    letter = next(g for g in m.groups() if g)
    second = _SECOND_LETTER.match(window, m.end())
    if second and second.group(2) != letter:
        joint = second.group(1).lower()
        if joint in ("/", ",") or joint in _OR_WORDS or joint in _AND_WORDS:
            return Extraction(f"{letter} or {second.group(2)}", HEDGE, (letter, second.group(2)))
    return Extraction(letter, "cue")


def _last_cue(plain: str, kind: str, decimal_comma: bool, start: int, near: bool,
              negated: list[tuple[int, int]] | None = None) -> Extraction | None:
    """The answer after the last cue (from `start` on) that has one. A negated cue ("the answer is
    not 5") has none; its clause is added to `negated`, so that no later rule reads that 5 either."""
    tail = plain[start:] if start else plain
    lowered = tail.lower()
    cues = _cues_backwards(lowered) if len(lowered) == len(tail) else reversed(list(_CUES_ANY_CASE.finditer(tail)))
    for m in itertools.islice(cues, _MAX_CUES):
        segment = tail[m.end():m.end() + 4 * _CUE_WINDOW]
        if _NEGATION.match(segment.lstrip(" \t\n:：*_—–=")):
            if negated is not None:
                end = _CLAUSE_END.search(segment)
                negated.append((start + m.start(), start + m.end() + (end.end() if end else len(segment))))
            continue
        found = _after_cue(segment, kind, decimal_comma, near)
        if found is not None:
            return found
    return None


def _last_box_group(plain: str, kind: str, decimal_comma: bool) -> tuple[Extraction, int] | None:
    found = [b for b in boxes(plain) if b[2]]
    if not found:
        return None
    # a box that holds another box is not an answer of its own: \boxed{\boxed{5}} is 5
    found = [b for i, b in enumerate(found) if not (i + 1 < len(found) and found[i + 1][0] < b[1])]
    if len(found) == 1:
        return Extraction(found[0][2], "boxed"), found[0][1]
    group, hedged = [found[-1]], False
    for prev in reversed(found[:-1]):
        how = gap_kind(plain[prev[1]:group[0][0]])
        if how is None:
            break
        group.insert(0, prev)
        hedged = hedged or how == "or"
    if len(group) == 1:
        return Extraction(group[0][2], "boxed"), group[0][1]
    texts = [content for _, _, content in group]
    keys = [(parse_choice(t) or t) if kind == "choice" else _key(t, kind, decimal_comma) for t in texts]
    return _answer(texts, keys, hedged, "boxed"), group[-1][1]


def _tail_window(text: str, size: int = 160) -> str:
    """The last `size` characters or so, starting where no `$...$`, `\\(...\\)` or `\\[...\\]` is cut."""
    if len(text) <= size:
        return text
    start = len(text) - size
    dollars = text.count("$", 0, start) - text.count("\\$", 0, start)
    if dollars % 2:
        start = text.rfind("$", 0, start)
    for opener, closer in (("\\[", "\\]"), ("\\(", "\\)")):
        opened = text.rfind(opener, 0, start)
        if opened > text.rfind(closer, 0, start):
            start = opened
    stop = max(0, start - 40)
    while start > stop and not text[start - 1].isspace():
        start -= 1
    return text[start:]


def _last_answer(plain: str, kind: str, decimal_comma: bool) -> Extraction:
    window = _tail_window(plain)
    cands = _candidates(window, kind, decimal_comma)
    if not cands and len(window) < len(plain):
        cands = _candidates(plain, kind, decimal_comma)
    if not cands:
        return Extraction(None, None)
    last = cands[-1]
    source = "last_number" if last.kind == "number" else "latex"
    chosen, hedged = [last], False
    for prev, cur in zip(reversed(cands[:-1]), reversed(cands)):
        how = gap_kind(cur.gap)
        if how is None or (how == "and" and not (kind == "math" and cur.kind == prev.kind == "span")):
            break
        chosen.insert(0, prev)
        hedged = hedged or how == "or"
    if len(chosen) > 1:
        return _answer([c.text for c in chosen], [c.key for c in chosen], hedged, source)
    return Extraction(last.text, source)


def _decimal_comma(lang: str | None) -> bool:
    row = LANGUAGES.get(lang) if lang else None
    return bool(row and row.decimal_comma)


def extract(completion: str, kind: str = "math", lang: str | None = None) -> Extraction:
    """The final answer of a completion (see the module docstring for the rules, in order)."""
    text = str(completion or "")
    plain = text.replace("**", "") if "**" in text else text
    decimal_comma = _decimal_comma(lang)
    boxed = _last_box_group(plain, kind, decimal_comma)
    if boxed is not None:
        cue = _last_cue(plain, kind, decimal_comma, boxed[1], near=True) if boxed[1] < len(plain) else None
        return cue if cue is not None else boxed[0]
    negated: list[tuple[int, int]] = []
    cue = _last_cue(plain, kind, decimal_comma, 0, near=False, negated=negated)
    if cue is not None:
        return cue
    for s, e in negated:  # "the answer is not 5": that 5 is not the answer
        plain = plain[:s] + " " * (e - s) + plain[e:]
    if kind == "choice":
        m = _LAST_LINE_LETTER.search(plain[-80:])
        return Extraction(m.group(1), "last_line") if m else Extraction(None, None)
    return _last_answer(plain, kind, decimal_comma)


def parse_choice(text: str) -> str | None:
    """The option letter of '(C)', 'C', '\\text{C}', 'C) 42', '\\textbf{(c)}'; None otherwise."""
    text = re.sub(r"\\(?:text|textbf|mathrm|mathbf)\s*\{([^{}]*)\}", r"\1", str(text)).strip()
    text = text.strip("$*. ")
    m = re.fullmatch(r"\(?([A-Ja-j])\)?(?:[\s).:].*)?", text, re.DOTALL)
    return m.group(1).upper() if m else None


__all__ = ["Extraction", "HEDGE", "boxes", "last_boxed", "extract", "parse_choice", "gap_kind"]
