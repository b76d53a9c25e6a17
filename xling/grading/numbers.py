"""Numbers as people write them in the 11 languages: read them, normalise them, compare them.

Thousands separators (``70,000``, ``70.000``, ``70 000``, no-break and narrow no-break spaces,
``70'000``, LaTeX ``70{,}000`` and ``70\\,000``), decimal commas, full-width digits, the native
digits of bn, th and te, minus signs (``-``, ``−``), ``%``, currency symbols, ``7万`` (zh/ja),
fractions (``3/4``, ``\\frac{3}{4}``, ``\\frac34``, mixed ``2\\frac{1}{2}``) and times (``12:00``).

One separator followed by exactly three digits (``1,234``, ``70.000``) is ambiguous: it is read
both ways, the language's `decimal_comma` flag says which reading comes first, and an answer is
right when either reading equals the gold.
"""

from __future__ import annotations

import re
from fractions import Fraction

from xling.data.languages import LANGUAGES

_DIGITS: dict[int, str] = {}
for _zero in (0xFF10, 0x0966, 0x0660, 0x06F0):  # full-width, Devanagari, Arabic-Indic (two forms)
    _DIGITS.update({_zero + i: str(i) for i in range(10)})
for _row in LANGUAGES.values():
    if _row.digits:
        _DIGITS.update({ord(ch): str(i) for i, ch in enumerate(_row.digits)})
_DIGITS.update({ord("．"): ".", ord("－"): "-", ord("−"): "-", ord("％"): "%", ord("＄"): "$", ord("："): ":"})
_TO_NORMALIZE = re.compile("[" + re.escape("".join(map(chr, _DIGITS))) + "]")

# Commands that take no argument and are not values: digits right after them are numbers
# (`\times3`, `\approx 18`). Every other command makes a text more than a plain number.
NEUTRAL_COMMANDS = frozenset({
    "times", "cdot", "div", "approx", "quad", "qquad", "left", "right", "displaystyle", "textstyle",
    "bigl", "bigr", "Bigl", "Bigr", "big", "Big", "mathrm", "text", "textbf", "textrm", "mathbf", "mbox",
    "operatorname", "textit", "mathit", "euro", "pounds", "yen", "textdollar", "dollar", "colon", "hfill",
    "implies", "Rightarrow", "rightarrow", "therefore", "circ", "degree",
})
_SPACING_COMMANDS = NEUTRAL_COMMANDS - {"times", "cdot", "div", "text", "textbf", "textrm", "mathbf", "mbox",
                                         "mathrm", "operatorname", "textit", "mathit"}

_LATEX_NUMBER_FIXES = (
    (re.compile(r"\{,\}"), ","), (re.compile(r"\{\.\}"), "."), (re.compile(r"\\[,;:]"), "\u2009"),
    (re.compile(r"\\!"), ""), (re.compile(r"\\ |~"), " "), (re.compile(r"\\%"), "%"),
    (re.compile(r"\\\$"), "$"),
    # digits right after a command that takes no argument are a number: "\times3", "\approx18"
    (re.compile(r"\\times(?![A-Za-z])\s*"), "×"), (re.compile(r"\\cdot(?![A-Za-z])\s*"), "·"),
    (re.compile(r"\\div(?![A-Za-z])\s*"), "÷"),
    (re.compile(r"\\(?:" + "|".join(sorted(_SPACING_COMMANDS)) + r")(?![A-Za-z])(?=\s*[\d.])"), " "),
)
_GROUP = "[,.'\u00a0\u202f\u2009 ]"
_NUMBER = re.compile(
    r"(?P<sign>(?<![0-9A-Za-z)\]}])-\s?)?"
    r"(?<![0-9A-Za-z_.,])(?<!\d:)"
    r"(?P<body>\d{1,3}(?P<g>" + _GROUP + r")\d{3}(?!\d)(?:(?P=g)\d{3}(?!\d))*(?:(?!(?P=g))[.,]\d+)?"
    r"|\d+(?:[.,]\d+)?|\.\d+(?![.,]\d))"
    r"(?P<mult>[万萬亿億])?"
    r"(?:/(?P<den>\d+)(?![\d/]|[.,]\d))?"  # "3/4." is 3/4 before a full stop; "3/4.5" is not a fraction
    r"(?P<pct>\s?%)?"
    r"(?!:\d)"  # "12:00" is a time, not two numbers
)
_TIME = re.compile(r"(?<![\d:.,])(?P<h>[01]?\d|2[0-4]):(?P<m>[0-5]\d)(?![\d:])(?:\s*(?P<ampm>[ap])\.?\s?m\b\.?)?", re.IGNORECASE)
MAX_NUMBER_CHARS = 200  # longer digit runs are degenerate output, not an answer
_MULTIPLIERS = {"万": 10**4, "萬": 10**4, "亿": 10**8, "億": 10**8}
_CURRENCY = "$€£¥₹৳฿₽₦₩"
_FRAC = re.compile(r"\\[dtc]?frac\s*(?:\{\s*(-?[\d.,]+)\s*\}|(\d))\s*(?:\{\s*(-?[\d.,]+)\s*\}|(\d))")
_MIXED = re.compile(r"(?<![\d.,])(\d+)\s*\\[dt]?frac\s*\{\s*(\d+)\s*\}\s*\{\s*(\d+)\s*\}")
_TEXT_CMD = re.compile(r"\\(?:text|textbf|textrm|textit|mathrm|mathbf|mathit|mbox|operatorname)\s*\{([^{}]*)\}")
_UNIT_POWER = re.compile(r"(?<=[A-Za-z}])\^\s*(?:\{\s*\d+\s*\}|\d)")
_DEGREE = re.compile(r"\^\s*\{?\\circ\}?|°")
_COMMAND = re.compile(r"\\([A-Za-z]+)")
_OPERATION = re.compile(r"\d\s*(?:[-+*×÷·^]|\\times|\\cdot|\\div)\s*-?\s*\d")


def normalize_digits(text: str) -> str:
    """Native, full-width and other decimal digits to ASCII; full-width '.', '-', '%', ':'; '−' to '-'.

    Every character maps to one character, so positions in the text do not move.
    """
    return text.translate(_DIGITS) if _TO_NORMALIZE.search(text) else text


def _latex_numbers(text: str) -> str:
    if "\\" not in text and "{" not in text and "~" not in text:
        return text
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
    if body.startswith("."):
        body = "0" + body
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


def number_ok(match: re.Match) -> bool:
    """Whether a match of the number pattern has a reading (`_readings` is not empty), cheaply."""
    den = match["den"]
    return len(match["body"]) <= MAX_NUMBER_CHARS and (not den or den.strip("0") != "")


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


def number_matches(text: str, decimal_comma: bool = False) -> list[tuple[re.Match, list[Fraction]]]:
    """Every number of an already normalised text (see `prepare`) with its readings, in order."""
    out = []
    for m in _NUMBER.finditer(text):
        values = _readings(m, decimal_comma)
        if values:
            out.append((m, values))
    return out


def prepare(text: str) -> str:
    """A text as the number reader sees it: ASCII digits, LaTeX number spellings resolved."""
    return _latex_numbers(normalize_digits(text))


def _clean_math_number(text: str) -> str:
    text = _latex_numbers(normalize_digits(text))
    text = _UNIT_POWER.sub(" ", text)  # before \text{m} goes, so that \text{ m}^2 loses its ^2
    text = _TEXT_CMD.sub(lambda m: m[1] if any(c.isdigit() for c in m[1]) else " ", text)
    text = _MIXED.sub(lambda m: f" {int(m[1]) * int(m[3]) + int(m[2])}/{m[3]} " if int(m[3]) else " ", text)
    text = _FRAC.sub(lambda m: f" {m[1] or m[2]}/{m[3] or m[4]} ", text)
    text = _DEGREE.sub(" ", text)
    text = re.sub(r"\\(?:left|right|displaystyle|quad|qquad)(?![A-Za-z])", " ", text)
    return text


def _only_neutral_commands(text: str) -> bool:
    return all(m[1] in NEUTRAL_COMMANDS for m in _COMMAND.finditer(text))


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
    found = last_number_match(prepare(text), decimal_comma)
    return (found[0].group(0).strip(), found[1]) if found else None


def last_number_match(text: str, decimal_comma: bool = False) -> tuple[re.Match, list[Fraction]] | None:
    """The last number of an already prepared text (see `prepare`), as a match and its readings."""
    last_digit = max(text.rfind(d) for d in "0123456789")
    if last_digit < 0:
        return None
    start = max(0, last_digit - 120)
    for m in reversed(list(_NUMBER.finditer(text, start, last_digit + 20))):
        if start and m.start() < start + 60:
            break  # it may be cut by the window, or the last number is further back: read it all
        values = _readings(m, decimal_comma)
        if values:
            return m, values
    found = number_matches(text, decimal_comma)
    return found[-1] if found else None


def number_in_answer(text: str, decimal_comma: bool = False) -> tuple[str, list[Fraction]] | None:
    """The number an extracted answer (e.g. a box's content) states, or None if it states none.

    After the last '=', the last number (``18 \\text{ eggs}``, ``2 \\times 9 = 18``). A text that is
    more than a number there — a root, a power, \\pi, an unfinished sum like ``3 + 5`` — states no
    number: digits are never read out of LaTeX (not the 3 of ``\\sqrt{3}``).
    """
    cleaned = _clean_math_number(text)
    if "=" in cleaned:
        cleaned = cleaned.rsplit("=", 1)[1]
    if not _only_neutral_commands(cleaned) or "^" in cleaned or _OPERATION.search(cleaned):
        return None
    tokens = number_tokens(cleaned, decimal_comma)
    return tokens[-1] if tokens else None


def numbers_equal(a: Fraction, b: Fraction) -> bool:
    return a == b or abs(a - b) <= Fraction(1, 10**6) * max(1, abs(b))


def parse_time(text: str) -> tuple[int, int] | None:
    """(hours, minutes) of a text that is a time of day and nothing else: 12:00, 7:30 pm, 19:30."""
    m = _TIME.fullmatch(normalize_digits(str(text)).strip().strip("$").strip().rstrip(".").strip())
    if not m:
        return None
    hours, minutes = int(m["h"]), int(m["m"])
    if m["ampm"]:
        if not 1 <= hours <= 12:
            return None
        hours = hours % 12 + (12 if m["ampm"].lower() == "p" else 0)
    return hours % 24, minutes


def time_matches(text: str) -> list[re.Match]:
    """Every time of day (12:00, 7:30 pm) in an already normalised text."""
    return list(_TIME.finditer(text))


__all__ = [
    "normalize_digits", "number_tokens", "number_matches", "prepare", "parse_number",
    "last_number", "last_number_match", "number_in_answer", "numbers_equal", "format_value", "parse_time",
    "time_matches", "MAX_NUMBER_CHARS", "NEUTRAL_COMMANDS",
]
