"""The one grader: find the final answer of a completion and check it against the gold answer.

Training rewards (`xling.rewards`) and evaluation scores call the same code, so an answer counts
the same in both. Gold answers come in three kinds:

- ``number`` (MGSM, MSVAMP): numeric equality after normalising how people write numbers in the 11
  languages. Pure Python and fast.
- ``math`` (MATH500, AIME): math-verify, ``verify(gold, prediction)`` with the gold first, run in
  worker processes with a hard timeout (its own `signal.alarm` timeouts fail off the main thread, and
  inputs such as ``10^{10^{10}}`` hang it). Where gold and prediction are both plain numbers the
  number comparison decides without math-verify.
- ``choice`` (GPQA, MMLU-ProX): the option letter A–J.

Extraction, first that applies: the last complete, non-empty ``\\boxed{...}`` (nested braces; also
``\\fbox{...}`` and ``\\boxed x``); else the answer after the last "the answer is" cue of any of the
11 languages (`Language.answer_cues`); else the last number in the text (not for ``choice``).

Numbers as people write them: thousands separators (``70,000``, ``70.000``, ``70 000``, no-break
and narrow no-break spaces, ``70'000``, LaTeX ``70{,}000`` and ``70\\,000``), decimal commas,
full-width digits, the native digits of bn, th and te, minus signs (``-``, ``−``), ``%``, currency
symbols, ``7万`` (zh/ja). One separator followed by exactly three digits (``1,234``, ``70.000``) is
ambiguous: it is read both ways, the language's `decimal_comma` flag says which reading is shown,
and the answer is right when either reading equals the gold. Gold numbers are read the English way
(``2,125`` is 2125).

A gold answer that cannot be parsed is an error in the data set: the result has
``error="unparseable gold"`` and is never correct. A verification that runs past the timeout is
wrong, with ``error="timeout"``; the worker is killed and replaced, the run goes on.

Use `grade()` / `grade_batch()` (a shared default `Grader`), or a `Grader` of your own to choose
the timeout and the number of worker processes; keep it for the whole run, its pool is reused.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import signal
import sys
import threading
import time
import types
from collections import Counter, deque
from dataclasses import asdict, dataclass
from fractions import Fraction
from functools import lru_cache
from multiprocessing.connection import wait as wait_connections
from typing import Any, Callable, Literal, Sequence

from .errors import XlingError
from .languages import LANGUAGES

Kind = Literal["math", "number", "choice"]
KINDS: tuple[str, ...] = ("math", "number", "choice")
UNPARSEABLE_GOLD = "unparseable gold"
TIMEOUT = "timeout"
DEFAULT_TIMEOUT = 5.0

# ----------------------------------------------------------------------------------- numbers

_DIGITS: dict[int, str] = {}
for _zero in (0xFF10, 0x0966, 0x0660, 0x06F0):  # full-width, Devanagari, Arabic-Indic (two forms)
    _DIGITS.update({_zero + i: str(i) for i in range(10)})
for _row in LANGUAGES.values():
    if _row.digits:
        _DIGITS.update({ord(ch): str(i) for i, ch in enumerate(_row.digits)})
_DIGITS.update({ord("．"): ".", ord("－"): "-", ord("−"): "-", ord("％"): "%", ord("＄"): "$"})

_LATEX_NUMBER_FIXES = (
    (re.compile(r"\{,\}"), ","), (re.compile(r"\{\.\}"), "."), (re.compile(r"\\[,;:]"), "\u2009"),
    (re.compile(r"\\!"), ""), (re.compile(r"\\ |~"), " "), (re.compile(r"\\%"), "%"),
    (re.compile(r"\\\$"), "$"),
)
_GROUP = "[,.'\u00a0\u202f\u2009 ]"
_NUMBER = re.compile(
    r"(?P<sign>(?<![0-9A-Za-z)\]}])-\s?)?"
    r"(?<![0-9A-Za-z_.,])"
    r"(?P<body>\d{1,3}(?P<g>" + _GROUP + r")\d{3}(?!\d)(?:(?P=g)\d{3}(?!\d))*(?:(?!(?P=g))[.,]\d+)?"
    r"|\d+(?:[.,]\d+)?)"
    r"(?P<mult>[万萬亿億])?"
    r"(?:/(?P<den>\d+)(?![\d/.,]))?"
    r"(?P<pct>\s?%)?"
)
MAX_NUMBER_CHARS = 200  # longer digit runs are degenerate output, not an answer
_MULTIPLIERS = {"万": 10**4, "萬": 10**4, "亿": 10**8, "億": 10**8}
_CURRENCY = "$€£¥₹৳฿₽₦₩"
_FRAC = re.compile(r"\\[dt]?frac\s*\{\s*(-?[\d.,]+)\s*\}\s*\{\s*(-?[\d.,]+)\s*\}")
_TEXT_CMD = re.compile(r"\\(?:text|textbf|textrm|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}")
_UNIT_POWER = re.compile(r"(?<=[A-Za-z}])\^\s*(?:\{\s*\d+\s*\}|\d)")
_DEGREE = re.compile(r"\^\s*\{?\\circ\}?|°")


_TO_NORMALIZE = re.compile("[" + re.escape("".join(map(chr, _DIGITS))) + "]")


def normalize_digits(text: str) -> str:
    """Native, full-width and other decimal digits to ASCII; full-width '.', '-', '%'; '−' to '-'."""
    return text.translate(_DIGITS) if _TO_NORMALIZE.search(text) else text


def _latex_numbers(text: str) -> str:
    for pattern, repl in _LATEX_NUMBER_FIXES:
        text = pattern.sub(repl, text)
    return text


def _readings(match: re.Match, decimal_comma: bool) -> list[Fraction]:
    """Values a number token can mean, the preferred reading first."""
    body = match["body"]
    if len(body) > MAX_NUMBER_CHARS:  # a degenerate run of digits: no answer (and beyond int() limits)
        return []
    for ch in "'\u00a0\u202f\u2009 ":
        body = body.replace(ch, "")
    commas, dots = body.count(","), body.count(".")
    if commas and dots:
        dec = "," if body.rfind(",") > body.rfind(".") else "."
        values = [Fraction(body.replace("." if dec == "," else ",", "").replace(dec, "."))]
    elif not commas and not dots:
        values = [Fraction(int(body))]
    else:
        sep = "," if commas else "."
        if body.count(sep) > 1:
            values = [Fraction(int(body.replace(sep, "")))]
        else:
            head, tail = body.split(sep)
            as_decimal = Fraction(f"{head}.{tail}")
            if len(tail) == 3 and len(head) <= 3 and not head.startswith("0"):
                as_group = Fraction(int(head + tail))
                if not decimal_comma:  # en, zh, ja, th, bn, te, sw: ',' groups, '.' is a decimal point
                    values = [as_group] if sep == "," else [as_decimal]
                else:  # es, ru, de, fr: '.' groups and ',' is decimal, but English habits are common
                    values = [as_decimal, as_group] if sep == "," else [as_group, as_decimal]
            else:
                values = [as_decimal]
    if match["mult"]:
        values = [v * _MULTIPLIERS[match["mult"]] for v in values]
    if match["den"]:
        den = int(match["den"])
        values = [v / den for v in values] if den else []
    if match["sign"]:
        values = [-v for v in values]
    if match["pct"]:
        values = values + [v / 100 for v in values]
    return values


def format_value(value: Fraction) -> str:
    """A number as canonical text: 70000, 2.5, -0.125, 1/3."""
    if value.denominator == 1:
        return str(value.numerator)
    den = value.denominator
    twos = fives = 0
    while den % 2 == 0:
        den //= 2
        twos += 1
    while den % 5 == 0:
        den //= 5
        fives += 1
    if den != 1:
        return f"{value.numerator}/{value.denominator}"
    places = max(twos, fives)
    scaled = abs(value.numerator) * 10**places // value.denominator
    digits = str(scaled).rjust(places + 1, "0")
    sign = "-" if value < 0 else ""
    return f"{sign}{digits[:-places]}.{digits[-places:]}"


def number_tokens(text: str, decimal_comma: bool = False) -> list[tuple[str, list[Fraction]]]:
    """Every number in `text` as (the text as written, its readings), in order."""
    text = _latex_numbers(normalize_digits(text))
    out = []
    for m in _NUMBER.finditer(text):
        values = _readings(m, decimal_comma)
        if values:
            out.append((m.group(0).strip(), values))
    return out


def _clean_math_number(text: str) -> str:
    text = _latex_numbers(normalize_digits(text))
    text = _UNIT_POWER.sub(" ", text)  # before \text{m} goes, so that \text{ m}^2 loses its ^2
    text = _TEXT_CMD.sub(lambda m: m[1] if any(c.isdigit() for c in m[1]) else " ", text)
    text = _FRAC.sub(lambda m: f"{m[1]}/{m[2]}", text)
    text = _DEGREE.sub(" ", text)
    text = re.sub(r"\\(?:left|right|displaystyle|quad|qquad)\b", " ", text)
    return text


def parse_number(text: str, decimal_comma: bool = False) -> list[Fraction] | None:
    """The readings of a text that is one number and nothing else (signs, currency, % allowed).

    Accepts LaTeX dressing: ``\\$18``, ``70{,}000``, ``\\frac{3}{4}``, ``25\\%``. None if the text is
    not a single number.
    """
    text = _clean_math_number(str(text)).strip().strip("{}$ ")
    text = text.rstrip(".").strip()
    for sym in _CURRENCY:
        text = text.replace(sym, "")
    text = re.sub(r"^(-)\s+", r"\1", text.strip())
    m = _NUMBER.fullmatch(text)
    if not m:
        return None
    return _readings(m, decimal_comma) or None


def last_number(text: str, decimal_comma: bool = False) -> tuple[str, list[Fraction]] | None:
    """The last number of a text (as `number_tokens(text)[-1]`, found without reading all of it)."""
    text = _latex_numbers(normalize_digits(text))
    last_digit = max(text.rfind(d) for d in "0123456789")
    if last_digit < 0:
        return None
    start = max(0, last_digit - 120)
    for m in reversed(list(_NUMBER.finditer(text, start, last_digit + 20))):
        if start and m.start() < start + 60:
            break  # it may be cut by the window, or the last number is further back: read it all
        values = _readings(m, decimal_comma)
        if values:
            return m.group(0).strip(), values
    tokens = number_tokens(text, decimal_comma)
    return tokens[-1] if tokens else None


def number_in_answer(text: str, decimal_comma: bool = False) -> tuple[str, list[Fraction]] | None:
    """The number an extracted answer (e.g. a box's content) states: after the last '=', the last one."""
    cleaned = _clean_math_number(text)
    if "=" in cleaned:
        cleaned = cleaned.rsplit("=", 1)[1]
    tokens = number_tokens(cleaned, decimal_comma)
    return tokens[-1] if tokens else None


def numbers_equal(a: Fraction, b: Fraction) -> bool:
    return a == b or abs(a - b) <= Fraction(1, 10**6) * max(1, abs(b))


# ------------------------------------------------------------------------------- extraction

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


def _cue_pattern() -> str:
    cues = sorted({c.lower() for row in LANGUAGES.values() for c in row.answer_cues}, key=len, reverse=True)
    parts = []
    for cue in cues:
        body = re.escape(cue.rstrip(":： ").strip())
        body = body.replace(r"\ ", r"[\s\u00a0\u202f]+")
        parts.append(body + (r"[\s\u00a0\u202f]*[:：]" if cue.rstrip().endswith((":", "：")) else ""))
    return "|".join(parts)


# Cues are found in the lower-cased text (a case-sensitive search is ten times faster); where
# lower-casing changes the length of a text, in the text itself, ignoring case.
_CUES = re.compile(_cue_pattern())
_CUES_ANY_CASE = re.compile(_cue_pattern(), re.IGNORECASE)
_CUE_WINDOW = 80
_LETTER = re.compile(r"(?<![A-Za-z])\(?([A-J])\)?(?![A-Za-z])")
_MARKED_LETTER = re.compile(r"\(([A-J])\)|\*\*\(?([A-J])\)?\*\*|\\text(?:bf)?\{\(?([A-J])\)?\}")
_LETTER_AS_WORD = re.compile(r"\s+[a-z]")  # "I think", "A total": the letter is a word, not an option
_LATEX_SPAN = re.compile(r"\s*(?:\$\$(.{1,200}?)\$\$|\$([^$\n]{1,100}?)\$|\\\((.{1,200}?)\\\)|\\\[(.{1,200}?)\\\])", re.DOTALL)
_WORD = re.compile(r"(?<![\\A-Za-z])[^\W\d_]{3,}")  # a word of text, not a LaTeX command


@dataclass(frozen=True)
class Extraction:
    text: str | None  # the final answer as written (a box's content, or the text after a cue)
    source: str | None  # "boxed", "cue", "last_number" or None (no answer)


def _after_cue(segment: str, kind: str, decimal_comma: bool) -> str | None:
    segment = segment.lstrip(" \t\n:：*_—–=")
    if kind == "choice":
        window = segment[:30]
        m = _MARKED_LETTER.search(window)  # "(B)", "**B**", "\\textbf{B}" first: "I believe (B)" is B
        if m:
            return next(g for g in m.groups() if g)
        letters = list(_LETTER.finditer(window))
        for m in letters:
            if not (m.group(0) in ("A", "I") and _LETTER_AS_WORD.match(window, m.end())):
                return m.group(1)  # a bare letter, unless it is a word ("I think", "A total", "A partir")
        return letters[0].group(1) if letters else None  # "A since ...": no other letter, so A
    if kind == "math":
        m = _LATEX_SPAN.match(segment)
        if m:
            content = next(g for g in m.groups() if g is not None).strip()
            if content and not _WORD.search(content):
                return content
    tokens = number_tokens(segment[:_CUE_WINDOW], decimal_comma)
    return tokens[0][0] if tokens else None


def extract(completion: str, kind: str = "math", lang: str | None = None) -> Extraction:
    """The final answer of a completion: last box, else a localized cue, else the last number."""
    text = str(completion or "")
    boxed = last_boxed(text)
    if boxed is not None:
        return Extraction(boxed, "boxed")
    decimal_comma = _decimal_comma(lang)
    plain = text.replace("**", "")
    lowered = plain.lower()
    cues = _CUES.finditer(lowered) if len(lowered) == len(plain) else _CUES_ANY_CASE.finditer(plain)
    for m in reversed(list(cues)):
        found = _after_cue(plain[m.end():m.end() + 4 * _CUE_WINDOW], kind, decimal_comma)
        if found is not None:
            return Extraction(found, "cue")
    if kind != "choice":
        last = last_number(text, decimal_comma)
        if last:
            return Extraction(last[0], "last_number")
    return Extraction(None, None)


def _decimal_comma(lang: str | None) -> bool:
    row = LANGUAGES.get(lang) if lang else None
    return bool(row and row.decimal_comma)


def parse_choice(text: str) -> str | None:
    """The option letter of '(C)', 'C', '\\text{C}', 'C) 42', '\\textbf{(c)}'; None otherwise."""
    text = re.sub(r"\\(?:text|textbf|mathrm|mathbf)\s*\{([^{}]*)\}", r"\1", str(text)).strip()
    text = text.strip("$*. ")
    m = re.fullmatch(r"\(?([A-Ja-j])\)?(?:[\s).:].*)?", text, re.DOTALL)
    return m.group(1).upper() if m else None


# ------------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class GradeResult:
    extracted: str | None  # the final answer as written in the completion, None if there is none
    correct: bool
    error: str | None = None  # "unparseable gold", "timeout", "verifier error: ..." or None
    source: str | None = None  # where the answer was found: "boxed", "cue", "last_number"
    value: str | None = None  # normalised answer: canonical number or option letter

    def as_dict(self) -> dict:
        return asdict(self)


def _grade_number(ext: Extraction, gold: Any, lang: str | None) -> GradeResult:
    gold_values = parse_number(str(gold)) if gold is not None else None
    if not gold_values:
        return GradeResult(ext.text, False, UNPARSEABLE_GOLD, ext.source)
    if ext.text is None:
        return GradeResult(None, False, None, None)
    found = number_in_answer(ext.text, _decimal_comma(lang))
    if found is None:
        return GradeResult(ext.text, False, None, ext.source)
    values = found[1]
    correct = any(numbers_equal(v, gold_values[0]) for v in values)
    return GradeResult(ext.text, correct, None, ext.source, format_value(values[0]))


def _grade_choice(ext: Extraction, gold: Any) -> GradeResult:
    gold_letter = parse_choice(gold) if gold is not None else None
    if gold_letter is None:
        return GradeResult(ext.text, False, UNPARSEABLE_GOLD, ext.source)
    letter = parse_choice(ext.text) if ext.text is not None else None
    return GradeResult(ext.text, letter == gold_letter, None, ext.source, letter)


_GROUPED_GOLD = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")


def _plain_number(text: str, decimal_comma: bool = False) -> list[Fraction] | None:
    if "%" in text:
        return None
    return parse_number(text, decimal_comma)


def _grade_math_fast(ext: Extraction, gold: str, lang: str | None) -> GradeResult | None:
    """Number-vs-number math answers, decided without math-verify; None where it is needed."""
    if not gold:
        return GradeResult(ext.text, False, UNPARSEABLE_GOLD, ext.source)
    if "," in gold and not _GROUPED_GOLD.fullmatch(gold):
        return None  # "1,2" is a list to math-verify, not a decimal
    gold_values = _plain_number(gold)
    if gold_values is None or ext.text is None:
        return None
    decimal_comma = _decimal_comma(lang)
    pred_values = _plain_number(ext.text, decimal_comma) if ext.source == "boxed" else None
    if pred_values is None and ext.source != "boxed":
        found = number_tokens(ext.text, decimal_comma)
        pred_values = found[0][1] if len(found) == 1 and found[0][0] == ext.text.strip() else None
    if pred_values is None:
        return None
    correct = any(numbers_equal(v, gold_values[0]) for v in pred_values)
    return GradeResult(ext.text, correct, None, ext.source, format_value(pred_values[0]))


Pending = tuple[str, str | None]  # (gold, prediction) that math-verify must judge


def _first_pass(completions: Sequence[str], answers: Sequence[Any], langs: Sequence[str | None],
                kinds: Sequence[str]) -> list[tuple[Extraction, GradeResult | None, Pending | None]]:
    """Extraction, and every verdict that needs no math-verify (pure Python; runs in workers too)."""
    out: list[tuple[Extraction, GradeResult | None, Pending | None]] = []
    for completion, gold, lang, kind in zip(completions, answers, langs, kinds):
        ext = extract(completion, kind, lang)
        if kind == "number":
            out.append((ext, _grade_number(ext, gold, lang), None))
        elif kind == "choice":
            out.append((ext, _grade_choice(ext, gold), None))
        else:
            gold_text = "" if gold is None else str(gold).strip()
            done = _grade_math_fast(ext, gold_text, lang)
            pred = normalize_digits(ext.text) if ext.text is not None else None
            out.append((ext, done, None if done else (gold_text, pred)))
    return out


# ------------------------------------------------------------------------- math-verify (workers)


def _quiet_math_verify() -> None:
    logging.getLogger("math_verify").setLevel(logging.ERROR)


def _wrap(text: str) -> list[str]:
    if "\\boxed" in text or "$" in text:
        return [text]
    return [f"\\boxed{{{text}}}", f"${text}$"]


@lru_cache(maxsize=1)
def _latex_only() -> list:
    """math-verify's default LaTeX extraction alone: enough for a `\\boxed{}` form, and faster."""
    from math_verify import LatexExtractionConfig
    from math_verify.parser import NormalizationConfig

    norm = NormalizationConfig(basic_latex=True, units=True, malformed_operators=True, nits=True,
                               boxed="all", equations=False)
    return [LatexExtractionConfig(try_extract_without_anchor=True, boxed_match_priority=50,
                                  normalization_config=norm)]


def _parse(text: str) -> list:
    """math-verify's parse of an answer: its boxed form (LaTeX only), else `$...$` (LaTeX or plain)."""
    from math_verify import parse

    for form in _wrap(text):
        config = _latex_only() if form.startswith("\\boxed{") else None
        parsed = parse(form, extraction_config=config, parsing_timeout=None) if config else parse(form, parsing_timeout=None)
        if parsed:
            return parsed
    return []


@lru_cache(maxsize=4096)
def _parse_gold(gold: str) -> list:
    _quiet_math_verify()
    return _parse(gold)


def verify_math(gold: str, prediction: str | None) -> tuple[bool, str | None]:
    """math-verify's verdict on one (gold, prediction) pair: (correct, error). No timeout of its own.

    Runs inside a worker process (see `WorkerPool`); a prediction of None only checks the gold.
    """
    from math_verify import verify

    _quiet_math_verify()
    gold_parsed = _parse_gold(gold) if gold.strip() else []
    if not any(not isinstance(g, str) for g in gold_parsed):  # only math-verify's raw-string fallback
        return False, UNPARSEABLE_GOLD
    if prediction is None:
        return False, None
    pred_parsed = _parse(prediction)
    if not pred_parsed:
        return False, None
    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=None)), None


def _serve(conn) -> None:
    """Worker loop: receive (function, chunk of argument tuples), send back [(value, error), ...]."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        func, chunk = message
        out = []
        for args in chunk:
            try:
                out.append((func(*args), None))
            except Exception as e:  # a bad input must not kill the worker
                out.append((None, f"verifier error: {type(e).__name__}: {e}"[:200]))
        conn.send(out)


class WorkerPool:
    """Long-lived worker processes that run a function per task with a hard per-task timeout.

    A task that runs past its timeout gets the error "timeout": its worker is killed and replaced,
    the other tasks go on. Workers start on first use and live until `close()`. Functions and
    arguments must be picklable (module-level functions). Thread-safe; one map at a time.
    """

    def __init__(self, workers: int, start_method: str | None = None):
        if workers < 1:
            raise XlingError(f"a worker pool needs at least 1 worker, not {workers}")
        self.workers = workers
        methods = multiprocessing.get_all_start_methods()
        self.start_method = start_method or ("forkserver" if "forkserver" in methods else "spawn")
        self._ctx = multiprocessing.get_context(self.start_method)
        if self.start_method == "forkserver":
            self._ctx.set_forkserver_preload(["xling.answers", "math_verify"])
        self._procs: list[tuple[Any, Any]] = []  # (process, connection)
        self._lock = threading.Lock()
        self.timeouts = 0
        self.restarts = 0

    def _start(self) -> tuple[Any, Any]:
        parent, child = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(target=_serve, args=(child,), daemon=True, name="xling-grader")
        # A worker must not re-run the caller's script (spawn and forkserver re-import __main__ unless
        # it is hidden while the process starts); tasks run module-level functions of importable modules.
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            proc.start()
        finally:
            if main is not None:
                sys.modules["__main__"] = main
        child.close()
        return proc, parent

    def _kill(self, proc, conn) -> None:
        try:
            proc.kill()
            proc.join(timeout=5)
        except Exception:
            pass
        conn.close()

    def map(self, func: Callable, tasks: Sequence[tuple], timeout: float, chunksize: int = 1) -> list[tuple[Any, str | None]]:
        """[(func(*args), None) or (None, error)] for each argument tuple, in order.

        `timeout` is per task; a chunk of tasks may take `timeout * len(chunk)` and all of them get
        "timeout" when it runs past that.
        """
        results: list[tuple[Any, str | None]] = [(None, None)] * len(tasks)
        chunks = deque((i, list(tasks[i:i + chunksize])) for i in range(0, len(tasks), max(1, chunksize)))
        with self._lock:
            while len(self._procs) < min(self.workers, len(chunks)):
                self._procs.append(self._start())
            idle = list(range(len(self._procs)))
            busy: dict[int, tuple[int, int, float]] = {}  # slot -> (first index, size, deadline)
            while chunks or busy:
                while idle and chunks:
                    slot = idle.pop()
                    first, chunk = chunks.popleft()
                    proc, conn = self._procs[slot]
                    try:
                        if not proc.is_alive():
                            raise BrokenPipeError
                        conn.send((func, chunk))
                    except OSError:  # the worker is gone: start another and hand it the task
                        self._kill(proc, conn)
                        self._procs[slot] = proc, conn = self._start()
                        self.restarts += 1
                        conn.send((func, chunk))
                    busy[slot] = (first, len(chunk), time.monotonic() + timeout * len(chunk))
                wait_for = max(0.0, min(d for _, _, d in busy.values()) - time.monotonic())
                ready = set(wait_connections([self._procs[s][1] for s in busy], timeout=wait_for))
                now = time.monotonic()
                for slot in list(busy):
                    proc, conn = self._procs[slot]
                    first, size, deadline = busy[slot]
                    if conn in ready:
                        try:
                            out = conn.recv()
                        except (EOFError, OSError):
                            out = [(None, "verifier error: worker died")] * size
                            self._kill(proc, conn)
                            self._procs[slot] = self._start()
                            self.restarts += 1
                        results[first:first + size] = out
                    elif now >= deadline:
                        results[first:first + size] = [(None, TIMEOUT)] * size
                        self.timeouts += size
                        self._kill(proc, conn)
                        self._procs[slot] = self._start()
                        self.restarts += 1
                    else:
                        continue
                    del busy[slot]
                    idle.append(slot)
        return results

    def close(self) -> None:
        with self._lock:
            for proc, conn in self._procs:
                try:
                    conn.send(None)
                except OSError:
                    pass
            for proc, conn in self._procs:
                proc.join(timeout=1)
                if proc.is_alive():
                    proc.kill()
                    proc.join(timeout=1)
                conn.close()
            self._procs = []

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


# ---------------------------------------------------------------------------------- the grader


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise XlingError(f"unknown answer kind '{kind}'; choose one of: {', '.join(KINDS)}")
    return kind


class Grader:
    """Grades completions against gold answers; keep one per run (its worker pool is reused).

    `workers=0` verifies math in this process (no hard timeout: math-verify's own alarm is used
    where it can be, on the main thread); `workers=None` takes up to 8 CPU cores. A `pool` given
    here is used (and left open by `close()`), e.g. to share one pool with language ID.
    """

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT, workers: int | None = None,
                 start_method: str | None = None, cache_size: int = 100_000, pool: WorkerPool | None = None,
                 parallel_min: int = 256):
        if timeout <= 0:
            raise XlingError(f"the verification timeout must be positive, not {timeout}")
        self.timeout = timeout
        self.workers = (pool.workers if pool else default_workers()) if workers is None else workers
        self.start_method = start_method
        self.cache_size = cache_size
        self.parallel_min = parallel_min  # batches this large are extracted in the workers too
        self.stats: Counter = Counter()
        self._cache: dict[tuple[str, str | None], tuple[bool, str | None]] = {}
        self._pool: WorkerPool | None = pool  # a pool given here is shared: close() leaves it open
        self._own_pool = pool is None

    @property
    def pool(self) -> WorkerPool | None:
        """The worker pool (started on first use), or None when `workers=0`."""
        if self.workers and self._pool is None:
            self._pool = WorkerPool(self.workers, self.start_method)
        return self._pool

    def grade(self, completion: str, answer: Any, lang: str | None = None, kind: str = "math") -> GradeResult:
        return self.grade_batch([completion], [answer], [lang], [kind])[0]

    def grade_batch(self, completions: Sequence[str], answers: Sequence[Any],
                    langs: Sequence[str | None] | str | None = None,
                    kinds: Sequence[str | None] | str = "math") -> list[GradeResult]:
        """Grade many completions at once; `langs` and `kinds` are one value or one per completion."""
        n = len(completions)
        if len(answers) != n:
            raise XlingError(f"{n} completions but {len(answers)} gold answers")
        langs_ = [langs] * n if langs is None or isinstance(langs, str) else list(langs)
        kinds_ = [kinds] * n if isinstance(kinds, str) else [k or "math" for k in kinds]
        if len(langs_) != n or len(kinds_) != n:
            raise XlingError(f"{n} completions but {len(langs_)} languages and {len(kinds_)} kinds")
        for lang in set(langs_):
            if lang is not None and lang not in LANGUAGES:
                from .languages import unknown_language_message
                raise XlingError(unknown_language_message(lang))
        for kind in set(kinds_):
            _check_kind(kind)

        first = self._first_passes(list(completions), list(answers), langs_, kinds_)
        results = [done for _, done, _ in first]
        pending = {i: (pair, ext) for i, (ext, done, pair) in enumerate(first) if pair is not None}
        if pending:
            verdicts = self._verify(sorted({pair for pair, _ in pending.values()}, key=str))
            for i, (pair, ext) in pending.items():
                correct, error = verdicts[pair]
                results[i] = GradeResult(ext.text, correct, error, ext.source)
        for r in results:
            self.stats["graded"] += 1
            if r.error:
                self.stats[r.error.split(":")[0]] += 1
        return results  # type: ignore[return-value]

    def _first_passes(self, completions: list, answers: list, langs: list, kinds: list) -> list:
        """`_first_pass` over the batch: spread over the workers when the batch is large."""
        n = len(completions)
        if self.workers < 2 or n < self.parallel_min:
            return _first_pass(completions, answers, langs, kinds)
        size = -(-n // (self.workers * 4))
        chunks = [(completions[k:k + size], answers[k:k + size], langs[k:k + size], kinds[k:k + size])
                  for k in range(0, n, size)]
        out: list = []
        for (value, error), chunk in zip(self.pool.map(_first_pass, chunks, timeout=max(60.0, self.timeout)), chunks):  # type: ignore[union-attr]
            out.extend(value if error is None else _first_pass(*chunk))  # a failed chunk is redone here
        return out

    def _verify(self, pairs: list[tuple[str, str | None]]) -> dict[tuple[str, str | None], tuple[bool, str | None]]:
        out = {p: self._cache[p] for p in pairs if p in self._cache}
        todo = [p for p in pairs if p not in out]
        if todo:
            if self.workers:
                answers = self.pool.map(verify_math, todo, timeout=self.timeout)  # type: ignore[union-attr]
                verdicts = [value if error is None else (False, error) for value, error in answers]
            else:
                verdicts = [self._verify_here(g, p) for g, p in todo]
            if len(self._cache) + len(todo) > self.cache_size:
                self._cache.clear()
            for pair, verdict in zip(todo, verdicts):
                self._cache[pair] = verdict
                out[pair] = verdict
        return out

    def _verify_here(self, gold: str, prediction: str | None) -> tuple[bool, str | None]:
        if threading.current_thread() is not threading.main_thread():
            return verify_math(gold, prediction)
        from math_verify.errors import TimeoutException

        fired = []

        def on_alarm(signum, frame):
            fired.append(True)
            raise TimeoutException("timeout")

        old = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, self.timeout)
        try:
            verdict = verify_math(gold, prediction)
            # math-verify catches exceptions inside verify(), ours included: the flag tells
            return (False, TIMEOUT) if fired else verdict
        except TimeoutException:
            return False, TIMEOUT
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)

    def close(self) -> None:
        if self._pool is not None and self._own_pool:
            self._pool.close()
        self._pool = None if self._own_pool else self._pool

    def __enter__(self) -> "Grader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self) -> dict:  # picklable: the pool is not copied, a copy starts its own
        state = dict(self.__dict__)
        state["_pool"] = None
        state["_own_pool"] = True
        return state


_DEFAULT: Grader | None = None


def default_grader() -> Grader:
    """The process-wide grader that `grade()` and `grade_batch()` use when given none."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Grader()
    return _DEFAULT


def grade(completion: str, answer: Any, lang: str | None = None, kind: str = "math", *,
          grader: Grader | None = None) -> GradeResult:
    """Grade one completion: its final answer against the gold `answer` of the given kind."""
    return (grader or default_grader()).grade(completion, answer, lang, kind)


def grade_batch(completions: Sequence[str], answers: Sequence[Any],
                langs: Sequence[str | None] | str | None = None,
                kinds: Sequence[str | None] | str = "math", *, grader: Grader | None = None) -> list[GradeResult]:
    """Grade many completions (same rules as `grade`), verifying math answers in parallel."""
    return (grader or default_grader()).grade_batch(completions, answers, langs, kinds)


__all__ = [
    "KINDS", "Kind", "GradeResult", "Grader", "WorkerPool", "Extraction", "extract", "grade",
    "grade_batch", "default_grader", "last_boxed", "boxes", "parse_number", "number_tokens",
    "parse_choice", "format_value", "normalize_digits", "verify_math", "UNPARSEABLE_GOLD", "TIMEOUT",
]
