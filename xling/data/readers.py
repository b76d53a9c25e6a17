"""Readers of each data set's own format, from a local path or from the Hugging Face hub.

Every reader returns `{lang: [Example, ...]}` for the languages asked for. Hub readers call
`datasets.load_dataset` (imported inside the function); `hub_call` turns any failure into an
XlingError that names the data set and says how to give a local copy instead.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from xling.common.errors import XlingError
from xling.common.io import read_text
from xling.data.languages import LANGUAGES
from xling.data.core import (
    Example, is_number, is_uniform, jsonl_records, last_boxed, normalize_choice, normalize_number,
    read_examples,
)

ByLang = dict[str, list[Example]]
MATH_TYPES = ("algebra", "counting_and_probability", "geometry", "intermediate_algebra", "number_theory",
              "prealgebra", "precalculus")
_LANG_BY_NAME = {row.name.lower(): code for code, row in LANGUAGES.items()}


# -- helpers -----------------------------------------------------------------------------------

def _field(rec: dict, names: Sequence[str], where: str) -> Any:
    for name in names:
        if name in rec and rec[name] is not None and str(rec[name]).strip() != "":
            return rec[name]
    raise XlingError(f"{where}: missing field {' or '.join(repr(n) for n in names)}")


def _need_dir(path: Path, what: str) -> Path:
    if not path.exists():
        raise XlingError(f"{path}: no such file or folder; give path= {what}")
    if not path.is_dir():
        raise XlingError(f"{path} is a file; give path= {what}")
    return path


def _need_file(path: Path, what: str) -> Path:
    if not path.exists():
        raise XlingError(f"{path}: no such file or folder; give path= {what}")
    return path


def _uniform_file(path: Path, langs: Sequence[str] | None) -> ByLang | None:
    """A uniform JSONL file (id, lang, question, answer) is accepted in place of any source's own format."""
    if not (path.is_file() and path.suffix == ".jsonl"):
        return None
    first = jsonl_records(path)[0][1]
    if not is_uniform(first):
        return None
    out: ByLang = {}
    for ex in read_examples(path):
        if langs is None or ex.lang in langs:
            out.setdefault(ex.lang, []).append(ex)
    return out


def math_id(problem: str) -> str:
    """A MATH problem's id: a hash of its text, the same from the hub, the release files or a JSONL."""
    return "math-" + hashlib.sha1(" ".join(problem.split()).encode("utf-8")).hexdigest()[:12]


def _level(value: Any) -> int | None:
    m = re.search(r"\d+", str(value or ""))
    return int(m.group()) if m else None


def _math_example(rec: dict, where: str, split: str) -> Example:
    problem = str(_field(rec, ("problem", "question"), where))
    solution = str(_field(rec, ("solution",), where))
    answer = rec.get("answer") or last_boxed(solution)
    if not answer:
        raise XlingError(f"{where}: the solution has no \\boxed{{}} answer and there is no 'answer' field")
    mtype = str(rec.get("type") or "unknown").strip().lower().replace(" & ", "_and_").replace(" ", "_")
    meta = {"type": mtype, "level": _level(rec.get("level")), "solution": solution, "split": split}
    return Example(math_id(problem), "en", problem, str(answer).strip(), "math", meta)


_CALC = re.compile(r"<<[^>]*>>")


def gsm8k_example(rec: dict, index: int, split: str, where: str) -> Example:
    """GSM8K: the gold answer follows '#### ' (thousands commas removed); calculator notes are dropped."""
    question = str(_field(rec, ("question",), where))
    text = str(_field(rec, ("answer",), where))
    if "####" not in text:
        raise XlingError(f"{where}: the answer has no '#### N' final line")
    steps, final = text.rsplit("####", 1)
    answer = normalize_number(final)
    if not is_number(answer):
        raise XlingError(f"{where}: the final answer {final.strip()!r} is not a number")
    solution = _CALC.sub("", steps).strip() + f"\nThe final answer is \\boxed{{{answer}}}."
    level = max(1, min(5, text.count("<<")))
    meta = {"type": "gsm8k", "level": level, "solution": solution}
    return Example(f"gsm8k-{split}-{index}", "en", question, answer, "number", meta)


def _read_lines_jsonl_or_json(path: Path) -> list[dict]:
    text = read_text(path)
    if not text.strip():
        raise XlingError(f"{path} is empty")
    if text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as e:
            raise XlingError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None
        return [r for r in rows if isinstance(r, dict)]
    return [rec for _, rec in jsonl_records(path)]


# -- MGSM --------------------------------------------------------------------------------------

def read_mgsm(path: Path, langs: Sequence[str], split: str) -> ByLang:
    if split != "test":
        raise XlingError("local MGSM files hold the test split only; use split=test")
    folder = path.parent if path.is_file() else _need_dir(path, "a folder with mgsm_<lang>.tsv files")
    out: ByLang = {}
    for lang in langs:
        file = folder / f"mgsm_{lang}.tsv"
        if not file.is_file():
            raise XlingError(f"{folder} has no mgsm_{lang}.tsv; add it or leave {lang} out of langs")
        rows = []
        for lineno, line in enumerate(read_text(file).splitlines(), 1):
            if not line.strip():
                continue
            if "\t" not in line:
                raise XlingError(f"{file} line {lineno}: expected two tab-separated columns (question, answer)")
            question, answer = line.rsplit("\t", 1)
            gold = normalize_number(answer)
            if not is_number(gold):
                raise XlingError(f"{file} line {lineno}: the answer {answer!r} is not a number")
            rows.append(Example(f"mgsm-{len(rows)}", lang, question.strip(), gold, "number"))
        if not rows:
            raise XlingError(f"{file} is empty")
        out[lang] = rows
    return out


def hub_mgsm(hub: str, langs: Sequence[str], split: str) -> ByLang:
    prefix = "mgsm" if split == "test" else f"mgsm-{split}"
    out: ByLang = {}
    for lang in langs:
        rows = load_rows(hub, lang, split=split)
        out[lang] = [Example(f"{prefix}-{i}", lang, str(r["question"]).strip(),
                             normalize_number(r.get("answer_number") if r.get("answer_number") is not None
                                              else r.get("answer")), "number")
                     for i, r in enumerate(rows)]
    return out


# -- MSVAMP ------------------------------------------------------------------------------------

def _msvamp_rows(rows: Iterable[dict], lang: str, where: str) -> list[Example]:
    out = []
    for i, r in enumerate(rows):
        q = _field(r, ("m_query",), f"{where} record {i + 1}")
        a = _field(r, ("response",), f"{where} record {i + 1}")
        meta = {"equation": r["equation"]} if r.get("equation") else {}
        out.append(Example(f"msvamp-{i}", lang, str(q).strip(), normalize_number(a), "number", meta))
    return out


def read_msvamp(path: Path, langs: Sequence[str], split: str) -> ByLang:
    folder = _need_dir(path, "a folder with MSVAMP's test_<Language>.json files")
    out: ByLang = {}
    for lang in langs:
        file = folder / f"test_{LANGUAGES[lang].name}.json"
        if not file.is_file():
            raise XlingError(f"{folder} has no {file.name}; add it or leave {lang} out of langs")
        out[lang] = _msvamp_rows((rec for _, rec in jsonl_records(file)), lang, str(file))
    return out


def hub_msvamp(hub: str, langs: Sequence[str], split: str) -> ByLang:
    return {lang: _msvamp_rows(load_rows(hub, lang, split=split), lang, f"{hub} ({lang})") for lang in langs}


# -- XReasoning (AIME24, AIME25, GPQA-Diamond) and MATH500 --------------------------------------

def per_lang_rows(prefix: str, kind: str, answer_fields: Sequence[str]) -> Callable[[Iterable[dict], str, str], list[Example]]:
    def convert(rows: Iterable[dict], lang: str, where: str) -> list[Example]:
        out = []
        for i, r in enumerate(rows):
            at = f"{where} record {i + 1}"
            q = str(_field(r, ("problem", "question"), at)).strip()
            if "answer" in answer_fields and not r.get("answer") and r.get("solution") and kind == "math":
                a = last_boxed(str(r["solution"])) or _field(r, answer_fields, at)
            else:
                a = _field(r, answer_fields, at)
            gold = normalize_choice(a) if kind == "choice" else str(a).strip()
            meta = {k: r[k] for k in ("id", "unique_id", "subject", "level", "type") if r.get(k) is not None}
            if kind == "math" and r.get("solution"):
                meta["solution"] = r["solution"]
            out.append(Example(f"{prefix}-{i}", lang, q, gold, kind, meta))
        return out
    return convert


def read_per_lang_folder(convert, what: str) -> Callable[[Path, Sequence[str], str], ByLang]:
    """A folder with one `<lang>.jsonl` per language (or, for English alone, one file)."""
    def read(path: Path, langs: Sequence[str], split: str) -> ByLang:
        _need_file(path, what)
        if path.is_file():
            if list(langs) != ["en"]:
                raise XlingError(f"{path} is one file; for languages other than English give a folder "
                                 f"with <lang>.jsonl files ({what})")
            return {"en": convert((rec for _, rec in jsonl_records(path)), "en", str(path))}
        out: ByLang = {}
        for lang in langs:
            file = path / f"{lang}.jsonl"
            if not file.is_file() and lang == "en" and (path / f"{split}.jsonl").is_file():
                file = path / f"{split}.jsonl"
            if not file.is_file():
                raise XlingError(f"{path} has no {lang}.jsonl; add it or leave {lang} out of langs")
            records = [rec for _, rec in jsonl_records(file)]
            out[lang] = ([e for e in read_examples(file) if e.lang == lang] if is_uniform(records[0])
                         else convert(records, lang, str(file)))
        return out
    return read


def hub_split_per_lang(convert) -> Callable[[str, Sequence[str], str], ByLang]:
    """XReasoning: one split per language."""
    def read(hub: str, langs: Sequence[str], split: str) -> ByLang:
        return {lang: convert(load_rows(hub, split=lang), lang, f"{hub} ({lang})") for lang in langs}
    return read


def hub_multilingual(default_hub: str, convert) -> Callable[[str, Sequence[str], str], ByLang]:
    """English from `default_hub`; other hub ids: a config (or split) per language, by code or name."""
    def read(hub: str, langs: Sequence[str], split: str) -> ByLang:
        if hub == default_hub:
            if list(langs) != ["en"]:
                raise XlingError(f"{hub} is English only; give a multilingual copy with hub=ID or path=DIR")
            return {"en": convert(load_rows(hub, split=split), "en", hub)}
        import datasets

        configs = datasets.get_dataset_config_names(hub)
        out: ByLang = {}
        for lang in langs:
            row = LANGUAGES[lang]
            names = {lang, row.name.lower(), row.native.lower()}
            match = [c for c in configs if c.lower() in names]
            if match:
                rows = load_rows(hub, match[0], split=split)
            else:
                whole = load_rows(hub)
                if lang not in whole:
                    raise XlingError(f"hub data set {hub} has no config or split for {lang} "
                                     f"(configs: {', '.join(configs)})")
                rows = whole[lang]
            out[lang] = convert(rows, lang, f"{hub} ({lang})")
        return out
    return read


# -- MATH train --------------------------------------------------------------------------------

def read_math(path: Path, langs: Sequence[str], split: str) -> ByLang:
    what = "the MATH release folder (<split>/<type>/*.json) or a JSONL with problem, solution, type, level"
    _need_file(path, what)
    examples: list[Example] = []
    if path.is_file():
        examples = [_math_example(rec, f"{path} line {n}", split) for n, rec in jsonl_records(path)]
    else:
        root = path / split if (path / split).is_dir() else path
        files = sorted(root.glob("*/*.json"))
        if not files:
            raise XlingError(f"{root} holds no <type>/*.json files; give path= {what}")
        for file in files:
            try:
                rec = json.loads(read_text(file))
            except json.JSONDecodeError as e:
                raise XlingError(f"{file}: not valid JSON ({e.msg})") from None
            rec.setdefault("type", file.parent.name)
            examples.append(_math_example(rec, str(file), split))
    return {"en": _dedupe(examples)}


def hub_math(hub: str, langs: Sequence[str], split: str) -> ByLang:
    examples = []
    for mtype in MATH_TYPES:
        for i, rec in enumerate(load_rows(hub, mtype, split=split)):
            rec = dict(rec)
            rec.setdefault("type", mtype)
            examples.append(_math_example(rec, f"{hub} {mtype} row {i}", split))
    return {"en": _dedupe(examples)}


def _dedupe(examples: list[Example]) -> list[Example]:
    seen, out = set(), []
    for ex in examples:
        if ex.id not in seen:
            seen.add(ex.id)
            out.append(ex)
    return out


# -- GSM8K and its parallel translation ---------------------------------------------------------

def read_gsm8k(path: Path, langs: Sequence[str], split: str) -> ByLang:
    what = "a folder with GSM8K's train.jsonl/test.jsonl, or one of them"
    _need_file(path, what)
    file = path if path.is_file() else path / f"{split}.jsonl"
    if not file.is_file():
        raise XlingError(f"{path} has no {split}.jsonl; give path= {what}")
    return {"en": [gsm8k_example(rec, i, split, f"{file} line {n}")
                   for i, (n, rec) in enumerate(jsonl_records(file))]}


def hub_gsm8k(hub: str, langs: Sequence[str], split: str) -> ByLang:
    return {"en": [gsm8k_example(rec, i, split, f"{hub} row {i}")
                   for i, rec in enumerate(load_rows(hub, "main", split=split))]}


_INSTRUCTION = re.compile(r"### Instruction:\s*\n(.*?)\n\s*### Response:", re.S)
_REQUEST_LANG = re.compile(r"(?:request|answer) in (\w+)")


def final_number(text: str) -> str | None:
    """The final answer of a worked solution: after '####', after 'answer is', else the last number."""
    for pattern in (r"####\s*\$?\s*(-?[\d.,]*\d)", r"answer is[:\s]*\$?\s*(-?[\d.,]*\d)"):
        found = re.findall(pattern, text)
        if found:
            return normalize_number(found[-1].rstrip(".,"))
    numbers = re.findall(r"-?\d[\d,]*(?:\.\d+)?", text)
    return normalize_number(numbers[-1]) if numbers else None


def parallel_examples(records: Iterable[dict], langs: Sequence[str], where: str) -> ByLang:
    """MathOctopus' GSM8KInstruct_Parallel: records grouped per problem, each group led by English."""
    out: ByLang = {lang: [] for lang in langs}
    group, seen = -1, set()
    for i, rec in enumerate(records):
        prompt = str(rec.get("prompt") or rec.get("instruction") or "")
        lang = rec.get("lang")
        if lang not in LANGUAGES:
            m = _REQUEST_LANG.search(prompt)
            lang = _LANG_BY_NAME.get(m.group(1).lower()) if m else None
        if lang is None:
            continue
        m = _INSTRUCTION.search(prompt)
        question = (m.group(1) if m else str(rec.get("query") or rec.get("question") or "")).strip()
        output = str(rec.get("chosen") or rec.get("output") or rec.get("response") or "")
        if lang == "en":
            group += 1
            seen = set()
        if group < 0 or lang not in out or lang in seen or not question:
            continue
        answer = final_number(output)
        if answer is None:
            continue
        seen.add(lang)
        out[lang].append(Example(f"gsm8kp-{group}", lang, question, answer, "number",
                                 {"type": "gsm8k", "level": max(1, min(5, output.count("="))), "solution": output}))
    if group < 0:
        raise XlingError(f"{where}: no English record found; is this MathOctopus' GSM8KInstruct_Parallel "
                         "(fields prompt, chosen)?")
    return out


def read_parallel(path: Path, langs: Sequence[str], split: str) -> ByLang:
    what = "MathOctopus' MGSM8KInstruct_Parallel.json (or its folder)"
    _need_file(path, what)
    file = path if path.is_file() else path / "MGSM8KInstruct_Parallel.json"
    if not file.is_file():
        raise XlingError(f"{path} has no MGSM8KInstruct_Parallel.json; give path= {what}")
    return parallel_examples(_read_lines_jsonl_or_json(file), langs, str(file))


def hub_parallel(hub: str, langs: Sequence[str], split: str) -> ByLang:
    return parallel_examples(load_rows(hub, split=split), langs, hub)


# -- uniform JSONL -----------------------------------------------------------------------------

def read_jsonl(path: Path, langs: Sequence[str] | None, split: str) -> ByLang:
    what = "a JSONL file with id, lang, question, answer per line (or a folder of them)"
    _need_file(path, what)
    files = [path] if path.is_file() else sorted(path.glob("*.jsonl"))
    if not files:
        raise XlingError(f"{path} holds no .jsonl files; give path= {what}")
    out: ByLang = {}
    for file in files:
        for ex in read_examples(file):
            if langs is None or ex.lang in langs:
                out.setdefault(ex.lang, []).append(ex)
    return out


# -- the hub -----------------------------------------------------------------------------------

def load_rows(*args, **kwargs):
    """`datasets.load_dataset(*args, **kwargs)`; failures are turned into XlingError by the caller."""
    import datasets

    return datasets.load_dataset(*args, **kwargs)


def uniform_or(reader: Callable[[Path, Sequence[str], str], ByLang]) -> Callable[[Path, Sequence[str], str], ByLang]:
    """Accept a uniform JSONL file in place of the source's own format."""
    def read(path: Path, langs: Sequence[str], split: str) -> ByLang:
        uniform = _uniform_file(path, langs)
        return uniform if uniform is not None else reader(path, langs, split)
    return read
