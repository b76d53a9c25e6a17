"""The registry of data sources (what each holds, in which languages) and `load()`, the one loader.

`load(source, path=None, langs=None, limit=None, split=None, hub=None)` returns Examples from a
local path when one is given, else from the Hugging Face hub through a local cache (one JSONL per
source, hub id, split and language under `$XLING_CACHE` or `~/.cache/xling`, written atomically).
`SOURCES[name].langs` says up front which languages a source has (MSVAMP has no te).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from typing import Callable, Iterable, Sequence

from xling.common.errors import XlingError
from xling.common.io import atomic_write_jsonl, read_jsonl
from xling.data.languages import CODES, check_codes
from xling.data import readers as R
from xling.data.core import Example

ALL = CODES
NO_TE = tuple(c for c in CODES if c != "te")


@dataclass(frozen=True)
class Source:
    """A data set xling can load, and what it holds."""

    name: str
    role: str  # "eval", "train" or "any"
    kind: str  # grading kind of its answers: number, math, choice (jsonl: per record)
    langs: tuple[str, ...]  # the languages it has; () = whatever a local file holds
    about: str
    local: str  # what path= expects
    hub: str | None = None  # default hub id
    splits: tuple[str, ...] = ("test",)
    read_local: Callable | None = None
    read_hub: Callable | None = None
    open_langs: bool = False  # a local copy or another hub id may hold more languages

    @property
    def split(self) -> str:
        return self.splits[0]


_aime24 = R.per_lang_rows("aime24", "math", ("answer",))
_aime25 = R.per_lang_rows("aime25", "math", ("answer",))
_gpqa = R.per_lang_rows("gpqa", "choice", ("solution", "answer"))
_math500 = R.per_lang_rows("math500", "math", ("answer",))
_XR_LOCAL = "a folder with <lang>.jsonl files (fields problem, {})"

SOURCES: dict[str, Source] = {s.name: s for s in (
    Source("mgsm", "eval", "number", ALL, "MGSM: 250 GSM8K test problems, human-translated",
           "a folder with the original mgsm_<lang>.tsv files", "juletxara/mgsm", ("test", "train"),
           R.uniform_or(R.read_mgsm), R.hub_mgsm),
    Source("msvamp", "eval", "number", NO_TE, "MSVAMP: 1,000 SVAMP problems, machine-translated",
           "a folder with MSVAMP's test_<Language>.json files", "Mathoctopus/MSVAMP", ("test",),
           R.uniform_or(R.read_msvamp), R.hub_msvamp),
    Source("aime24", "eval", "math", ALL, "AIME 2024 (XReasoning translations)",
           _XR_LOCAL.format("answer"), "shanchen/aime_2024_multilingual", ("test",),
           R.uniform_or(R.read_per_lang_folder(_aime24, _XR_LOCAL.format("answer"))), R.hub_split_per_lang(_aime24)),
    Source("aime25", "eval", "math", ALL, "AIME 2025 (XReasoning translations)",
           _XR_LOCAL.format("answer"), "shanchen/aime_2025_multilingual", ("test",),
           R.uniform_or(R.read_per_lang_folder(_aime25, _XR_LOCAL.format("answer"))), R.hub_split_per_lang(_aime25)),
    Source("gpqa", "eval", "choice", ALL, "GPQA-Diamond, multiple choice (XReasoning translations)",
           _XR_LOCAL.format("solution = the letter"), "shanchen/gpqa_diamond_mc_multilingual", ("test",),
           R.uniform_or(R.read_per_lang_folder(_gpqa, _XR_LOCAL.format("solution"))), R.hub_split_per_lang(_gpqa)),
    # XReasoning (shanchen/*: the paper's AIME and GPQA translations) publishes no MATH500, so there is
    # no hub default for the other languages: the translate stage makes a copy (path=DIR).
    Source("math500", "eval", "math", ("en",),
           "MATH500 (English; other languages from a local copy the translate stage makes, path=DIR, or hub=ID)",
           "MATH-500's test.jsonl, or a folder with <lang>.jsonl files (fields problem, answer)",
           "HuggingFaceH4/MATH-500", ("test",),
           R.uniform_or(R.read_per_lang_folder(_math500, "a folder with <lang>.jsonl files")),
           R.hub_multilingual("HuggingFaceH4/MATH-500", _math500), open_langs=True),
    Source("math", "train", "math", ("en",), "MATH train (type and level in meta; answer = last \\boxed{})",
           "the MATH release folder (train/<type>/*.json) or a JSONL with problem, solution, type, level",
           "EleutherAI/hendrycks_math", ("train", "test"), R.uniform_or(R.read_math), R.hub_math),
    Source("gsm8k", "train", "number", ("en",), "GSM8K (answer after '#### ')",
           "a folder with GSM8K's train.jsonl/test.jsonl, or one of them", "openai/gsm8k", ("train", "test"),
           R.uniform_or(R.read_gsm8k), R.hub_gsm8k),
    Source("gsm8k-parallel", "train", "number", NO_TE, "MathOctopus' GSM8K train in 10 languages",
           "MathOctopus' MGSM8KInstruct_Parallel.json (or its folder)", "Mathoctopus/GSM8KInstruct_Parallel",
           ("train",), R.uniform_or(R.read_parallel), R.hub_parallel),
    Source("synth", "any", "number", ALL, "built-in offline arithmetic word problems, parallel in 11 languages",
           "nothing (it is generated)", None, ("train", "test", "pretrain")),
    Source("jsonl", "any", "number", (), "a local JSONL with id, lang, question, answer[, kind, meta]",
           "a JSONL file with id, lang, question, answer per line (or a folder of them)", None,
           ("train", "test"), R.read_jsonl, None, open_langs=True),
)}


def get_source(name: str) -> Source:
    """The registry entry for `name`; an unknown name is an error listing the known ones."""
    if name in SOURCES:
        return SOURCES[name]
    near = get_close_matches(str(name), list(SOURCES), n=1)
    hint = f" (did you mean '{near[0]}'?)" if near else ""
    raise XlingError(f"unknown data source '{name}'{hint}; sources: {', '.join(SOURCES)}")


def source_langs(name: str) -> tuple[str, ...]:
    """The languages a source has (empty for `jsonl`: whatever the file holds)."""
    return get_source(name).langs


def missing_langs(name: str, langs: Iterable[str]) -> list[str]:
    """The languages of `langs` that source `name` lacks (none for sources with open languages)."""
    src = get_source(name)
    if not src.langs:
        return []
    return [lang for lang in check_codes(langs) if lang not in src.langs]


def _lacks_message(src: Source, missing: Sequence[str]) -> str:
    what = "benchmark" if src.role == "eval" else "data set"
    msg = f"{what} {src.name} has no {', '.join(missing)}; it has {', '.join(src.langs)}"
    if src.name == "math500":
        return msg + ("; XReasoning has no MATH500, so make a copy with: python run.py translate source=math500 "
                      f"split=test n=null langs={','.join(missing)} and give its folder as path=DIR (or a hub copy "
                      "with hub=ID)")
    if src.role == "eval":
        return msg + "; leave those languages out for this benchmark"
    return msg + (f"; make them with: python run.py translate source={src.name} langs={','.join(missing)} "
                  "(then pass translations=DIR to the training set)")


def check_langs(src: Source, langs: Iterable[str] | None, widened: bool = False) -> tuple[str, ...] | None:
    """Validate requested languages against the table and the source; None means all it has."""
    items = [langs] if isinstance(langs, str) else list(langs or [])
    if not items:
        return src.langs or None
    codes = check_codes(items)
    if src.langs and not (src.open_langs and widened):
        missing = [c for c in codes if c not in src.langs]
        if missing:
            raise XlingError(_lacks_message(src, missing))
    return codes


# -- cache -------------------------------------------------------------------------------------

def cache_root() -> Path:
    """Where xling keeps downloaded data and translations: $XLING_CACHE, else ~/.cache/xling."""
    env = os.environ.get("XLING_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "xling"


def cache_file(source: str, hub: str, split: str, lang: str) -> Path:
    return cache_root() / "data" / source / hub.replace("/", "__") / split / f"{lang}.jsonl"


def _from_hub(src: Source, hub: str, langs: Sequence[str], split: str, use_cache: bool,
              path_key: str = "path") -> dict[str, list[Example]]:
    out: dict[str, list[Example]] = {}
    todo = []
    for lang in langs:
        file = cache_file(src.name, hub, split, lang)
        if use_cache and file.is_file():
            out[lang] = [Example.from_dict(r) for r in read_jsonl(file)]
        else:
            todo.append(lang)
    if todo:
        from xling.common.console import console
        from xling.data.hub import require

        instead = f"without hub access give a local copy with {path_key}=DIR ({src.local})"
        require(f"data set '{src.name}' ({hub}, split {split}, {','.join(todo)})", instead)
        try:
            with console.status(f"loading {src.name} ({hub}, {split}: {','.join(todo)}) from the Hugging Face hub"):
                got = src.read_hub(hub, todo, split)
        except XlingError:
            raise
        except Exception as e:  # network, unknown id, gated data set, offline mode, ...
            first = (str(e).strip().splitlines() or [""])[0][:200]
            raise XlingError(
                f"could not load data set '{src.name}' from the Hugging Face hub ({hub}, split {split}, "
                f"{','.join(todo)}): {type(e).__name__}: {first}; {instead}"
            ) from None
        for lang in todo:
            rows = got.get(lang) or []
            if rows and use_cache:
                atomic_write_jsonl(cache_file(src.name, hub, split, lang), (e.to_dict() for e in rows))
            out[lang] = rows
    return out


# -- load --------------------------------------------------------------------------------------

def load(source: str, path: str | Path | None = None, langs: Iterable[str] | str | None = None,
         limit: int | None = None, split: str | None = None, hub: str | None = None,
         cache: bool = True, path_key: str = "path") -> list[Example]:
    """Examples of `source` in `langs` (default: all it has), the first `limit` problems per language.

    `path`: a local copy in the source's own format (see `SOURCES[name].local`) or a uniform JSONL;
    otherwise the hub (`hub` overrides the default id) through the cache. The same problem has the
    same id in every language. Results are ordered by language, then by the source's order.
    `path_key` is how the caller's recipe names `path` (e.g. data.path), for the message shown offline.
    """
    src = get_source(source)
    split = split or src.split
    if split not in src.splits:
        raise XlingError(f"data set {src.name} has no split '{split}'; splits: {', '.join(src.splits)}")
    if limit is not None and limit < 1:
        raise XlingError(f"limit={limit}: give a positive number of problems per language, or none for all")
    wanted = check_langs(src, langs, widened=bool(path or hub))
    if src.name == "synth":
        if path:
            raise XlingError("source synth is generated, it reads no path; drop path= or use source=jsonl")
        from xling.data.synth import generate

        return generate(n=limit or None, langs=wanted, split=split)
    if path:
        by_lang = src.read_local(Path(path).expanduser(), wanted, split)
    elif src.read_hub is None:
        raise XlingError(f"source {src.name} needs a local path: give path= {src.local}")
    else:
        by_lang = _from_hub(src, hub or src.hub, wanted, split, cache, path_key)
    order = list(wanted) if wanted else sorted(by_lang, key=lambda c: CODES.index(c))
    out: list[Example] = []
    for lang in order:
        rows = by_lang.get(lang) or []
        if not rows:
            where = f" in {path}" if path else ""
            raise XlingError(f"data set {src.name} has no {lang} problems{where}; leave {lang} out of langs")
        out.extend(rows[:limit] if limit else rows)
    if not out:
        raise XlingError(f"data set {src.name}: nothing to load from {path}")
    return out


def by_lang(examples: Iterable[Example]) -> dict[str, list[Example]]:
    """Group examples by language, keeping their order."""
    out: dict[str, list[Example]] = {}
    for ex in examples:
        out.setdefault(ex.lang, []).append(ex)
    return out
