"""Task `data`: load a data source (or build a training set) and write it out, to see what a recipe uses.

    python run.py data source=mgsm path=../shared/data/mgsm langs=en,ja
    python run.py data source=synth build=parallel k=2 n=100

Without `build`, the examples are written to `RUN/data.jsonl` (uniform format) with counts per
language; with `build=parallel|unparallel|mix`, the training set is built as training would
build it and saved as `RUN/trainset.jsonl` + `RUN/trainset_summary.json`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from xling.common.config import ConfigError, Invalid, Recipe
from xling.common.console import print_table
from xling.data import SOURCES, load, write_examples
from xling.data.languages import CODES, LANGUAGES, PARALLEL_ORDER, unknown_language_message
from xling.data.prompts import Variant


@dataclass(kw_only=True)
class Config(Recipe):
    source: str = "synth"  # a data source: mgsm, msvamp, aime24, aime25, gpqa, math500, math, gsm8k, ...
    path: str | None = None  # a local copy (default: the hub, cached; synth is generated)
    hub: str | None = None  # another hub id for the source
    split: str | None = None  # the source's split (default: its first)
    langs: list[str] = field(default_factory=list)  # languages (default: all the source has)
    limit: int | None = None  # first N problems per language (not used by build)
    build: Literal["none", "parallel", "unparallel", "mix"] = "none"  # none: write the source's examples (RUN/data.jsonl); else build a training set this way
    n: int = 1000  # training set: problems per language (mix: in all)
    k: int | None = None  # training set: English + the first k of `order` (overrides langs)
    order: list[str] = field(default_factory=lambda: list(PARALLEL_ORDER))  # training set: the order k takes languages in
    translations: str | None = None  # training set: folder from the translate stage
    require_langs: list[str] = field(default_factory=list)  # training set: pick only problems that also exist in these
    level_weights: list[float] = field(default_factory=lambda: [1.0, 2.0, 3.0, 4.0, 5.0])  # training set: weights of levels 1, 2, ...
    prefix: bool = False  # training set: pre-fill the assistant turn (prompt hacking)
    variant: Variant = "paper"  # paper, paper-user, r1, consistency, bare (xling.data.prompts)

    def check(self) -> None:
        if self.source not in SOURCES:
            raise Invalid("source", f"unknown data source '{self.source}'; sources: {', '.join(SOURCES)}")
        for key in ("langs", "order", "require_langs"):
            for code in getattr(self, key):
                if code not in LANGUAGES and code != "all":
                    raise Invalid(key, unknown_language_message(code))
        if self.limit is not None and self.limit < 1:
            raise Invalid("limit", "give a positive number of problems per language, or null for all")
        if self.n < 1:
            raise Invalid("n", "give a positive number of problems")
        if self.k is not None and not 0 <= self.k <= len(self.order):
            raise Invalid("k", f"k={self.k}: give 0 to {len(self.order)} (the languages in 'order')")


def train_spec(cfg: Config):
    from xling.data.trainset import TrainData

    split = cfg.split or ("train" if "train" in SOURCES[cfg.source].splits else SOURCES[cfg.source].split)
    return TrainData(source=cfg.source, path=cfg.path, hub=cfg.hub, split=split, n=cfg.n,
                     langs=cfg.langs or ["en"], k=cfg.k, order=cfg.order, build=cfg.build,
                     translations=cfg.translations, require_langs=cfg.require_langs,
                     level_weights=cfg.level_weights, prefix=cfg.prefix,
                     variant=cfg.variant, seed=cfg.seed)


def run(cfg: Config, run_dir: Path) -> dict:
    if cfg.build != "none":
        from xling.data import trainset

        spec = train_spec(cfg)
        try:
            spec.check()
        except Invalid as e:
            raise ConfigError(f"recipe key '{e.key}': {e.message}") from None
        rows, summary = trainset.build(spec)
        path = trainset.save(rows, spec, run_dir, summary)
        trainset.show_summary(summary)
        return {**summary, "file": str(path)}
    examples = load(cfg.source, path=cfg.path, langs=cfg.langs or None, limit=cfg.limit, split=cfg.split,
                    hub=cfg.hub)
    path = write_examples(run_dir / "data.jsonl", examples)
    counts = Counter(e.lang for e in examples)
    kinds = Counter(e.kind for e in examples)
    order = sorted(counts, key=CODES.index)
    print_table(f"{cfg.source}: {len(examples)} examples", ["lang", "problems"],
                [[lang, counts[lang]] for lang in order],
                note=f"written to {path}" + (f" (at most the first {cfg.limit} per language: limit={cfg.limit}; "
                                             "limit=null for all)" if cfg.limit else ""))
    return {"source": cfg.source, "split": cfg.split or SOURCES[cfg.source].split, "rows": len(examples),
            "by_lang": {lang: counts[lang] for lang in order}, "kinds": dict(kinds), "file": str(path)}
