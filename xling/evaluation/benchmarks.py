"""Which benchmarks and languages an evaluation reads, and loading them."""

from __future__ import annotations

from xling.common.errors import XlingError
from xling.data.languages import CODES, check_codes


def benchmark_langs(benchmarks: list[str], langs: list[str], data: dict[str, str]) -> dict[str, list[str]]:
    """The languages to evaluate per benchmark; asking for a language a benchmark lacks is an error.

    `all` means every language the benchmark has (a benchmark with a local copy that can hold any
    language, such as MATH500, is asked for all 11).
    """
    from xling.data import SOURCES, get_source

    explicit = [c for c in langs if c != "all"]
    out: dict[str, list[str]] = {}
    for b in benchmarks:
        evals = [n for n, s in SOURCES.items() if s.role != "train"]
        if b not in SOURCES:
            from difflib import get_close_matches

            near = get_close_matches(b, evals, n=1)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            raise XlingError(f"unknown benchmark '{b}'{hint}; benchmarks: {', '.join(evals)}")
        src = get_source(b)
        if src.role == "train":
            raise XlingError(f"{b} is a training set, not a benchmark; benchmarks: "
                             f"{', '.join(n for n, s in SOURCES.items() if s.role != 'train')}")
        has = list(src.langs) or list(CODES)
        if src.open_langs and b in data:
            has = list(CODES)
        if "all" in langs:
            out[b] = list(dict.fromkeys(has + [c for c in explicit if c not in has]))
        else:
            out[b] = list(check_codes(explicit))
        missing = [c for c in out[b] if c not in has]
        if missing:
            raise XlingError(f"benchmark {b} has no {', '.join(missing)} (it has {', '.join(has)}); leave "
                             f"{'them' if len(missing) > 1 else 'it'} out of langs=, or give a local copy that "
                             f"has {'them' if len(missing) > 1 else 'it'} with data.{b}=PATH")
    unknown_data = [b for b in data if b not in benchmarks]
    if unknown_data:
        raise XlingError(f"data.{unknown_data[0]} is set but {unknown_data[0]} is not among benchmarks "
                         f"({', '.join(benchmarks)}); add it to benchmarks= or drop the data path")
    return out


def load_benchmarks(per_bench: dict[str, list[str]], data: dict[str, str], limit: int | None) -> dict[str, dict]:
    """benchmark -> lang -> [Example], every file read before any model is loaded."""
    from xling.data import by_lang, load

    out: dict[str, dict] = {}
    for b, ls in per_bench.items():
        split = "test"
        examples = load(b, path=data.get(b), langs=ls, limit=limit, split=split, path_key=f"data.{b}")
        grouped = by_lang(examples)
        missing = [c for c in ls if not grouped.get(c)]
        if missing:
            raise XlingError(f"benchmark {b} loaded no problems for {', '.join(missing)}")
        out[b] = {c: grouped[c] for c in ls}
    return out
