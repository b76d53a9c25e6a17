"""Data: every benchmark and training set as one example type, and the registry of sources.

    from xling.data import load, Example, SOURCES
    load("mgsm", path="../shared/data/mgsm", langs=["en", "ja"], limit=10)
    load("math")                # MATH train from the hub (cached under $XLING_CACHE)
    load("synth", langs="all")  # the built-in offline set, parallel in 11 languages

`SOURCES[name].langs` lists a source's languages; `missing_langs(name, langs)` says which of
`langs` it lacks (evaluation checks this up front: MSVAMP has no te).
"""

from xling.data.core import (
    KINDS, Example, last_boxed, normalize_choice, normalize_number, read_examples, write_examples,
)
from xling.data.sources import (
    SOURCES, Source, by_lang, cache_root, check_langs, get_source, load, missing_langs, source_langs,
)

__all__ = [
    "Example", "KINDS", "SOURCES", "Source", "load", "get_source", "source_langs", "missing_langs",
    "check_langs", "by_lang", "cache_root", "read_examples", "write_examples", "normalize_number",
    "normalize_choice", "last_boxed",
]
