"""The training-set builder: selection, parallel / unparallel / mix builds, translations, output format."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from xling.common.config import ConfigError, build as build_config
from xling.data import Example, load, write_examples
from xling.common.errors import XlingError
from xling.data.trainset import (
    TrainData, allocate, build, load_saved, quotas, save, select_sets, stratum, summarize, to_dataset, to_records,
)

TYPES = ("algebra", "geometry", "number_theory", "prealgebra")
FIX = Path(__file__).parent / "fixtures" / "data"


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XLING_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def math_file(tmp_path_factory) -> Path:
    """A MATH-train-like JSONL: 4 types x 5 levels x 15 problems, written for these tests."""
    path = tmp_path_factory.mktemp("math") / "train.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for t in TYPES:
            for level in range(1, 6):
                for i in range(15):
                    a, b = 3 + i, 2 * level + 1
                    rec = {"problem": f"[{t}] Compute ${a} \\cdot {b} + {level}$.", "level": f"Level {level}",
                           "type": t.replace("_", " ").title(),
                           "solution": f"${a} \\cdot {b} + {level} = \\boxed{{{a * b + level}}}$."}
                    f.write(json.dumps(rec) + "\n")
    return path


def fake_translations(folder: Path, pool: list[Example], langs: list[str], skip: set[str] = frozenset()) -> Path:
    """What the translate stage would write: <lang>.jsonl with the same ids."""
    for lang in langs:
        write_examples(folder / f"{lang}.jsonl", [
            Example(e.id, lang, f"({lang}) {e.question}", e.answer, e.kind, {"translated_from": "en"})
            for e in pool if e.id not in skip])
    return folder


def ids(rows, lang):
    return [e.id for e in rows if e.lang == lang]


def strata(rows, lang):
    return Counter(stratum(e) for e in rows if e.lang == lang)


# -- selection ---------------------------------------------------------------------------------

def test_allocate():
    assert allocate(10, {"a": 100, "b": 100}, {"a": 1, "b": 1}) == {"a": 5, "b": 5}
    assert allocate(10, {"a": 2, "b": 100}, {"a": 1, "b": 1}) == {"a": 2, "b": 8}
    assert allocate(6, {1: 10, 2: 10, 3: 10}, {1: 1, 2: 2, 3: 3}) == {1: 1, 2: 2, 3: 3}
    assert sum(allocate(7, {1: 10, 2: 10, 3: 10}, {1: 1, 2: 2, 3: 3}).values()) == 7
    assert allocate(50, {"a": 3, "b": 4}, {"a": 1, "b": 0}) == {"a": 3, "b": 4}


def test_quotas_balanced_by_type_weighted_by_level(math_file):
    pool = load("math", path=math_file)
    q = quotas(pool, 60)
    per_type = Counter()
    for (t, level), k in q.items():
        per_type[t] += k
    assert per_type == {t: 15 for t in TYPES}
    for t in TYPES:
        by_level = [q.get((t, level), 0) for level in range(1, 6)]
        assert by_level == [1, 2, 3, 4, 5]  # weights 1:2:3:4:5


def test_select_sets_disjoint_matched_and_seeded(math_file):
    pool = load("math", path=math_file)
    a, b = select_sets(pool, [40, 40], seed=1)
    assert not {e.id for e in a} & {e.id for e in b}
    assert Counter(map(stratum, a)) == Counter(map(stratum, b))
    again = select_sets(pool, [40, 40], seed=1)
    assert [e.id for e in again[0]] == [e.id for e in a]
    other = select_sets(pool, [40, 40], seed=2)
    assert [e.id for e in other[0]] != [e.id for e in a]
    skipped = {e.id for e in a[:5]}
    c = select_sets(pool, [40], seed=1, ok=lambda pid, j: pid not in skipped)[0]
    assert not skipped & {e.id for e in c} and Counter(map(stratum, c)) == Counter(map(stratum, select_sets(pool, [40], seed=1)[0]))


# -- builds ------------------------------------------------------------------------------------

def test_parallel_build_shares_ids(math_file, tmp_path):
    pool = load("math", path=math_file)
    tr = fake_translations(tmp_path / "tr", pool, ["ru", "fr"])
    spec = TrainData(source="math", path=str(math_file), n=40, k=2, translations=str(tr), seed=0)
    rows, summary = build(spec)
    assert summary["by_lang"] == {"en": 40, "ru": 40, "fr": 40} and summary["problems"] == 40
    assert ids(rows, "en") == ids(rows, "ru") == ids(rows, "fr")
    assert strata(rows, "en") == strata(rows, "ru") == strata(rows, "fr")
    assert summary["by_lang_type"]["ru"] == {t: 10 for t in TYPES}
    assert summary["shortfall"] == {}
    ru = [e for e in rows if e.lang == "ru"]
    assert all(e.question.startswith("(ru)") and e.meta["type"] in TYPES for e in ru)  # type, level from English
    rows2, _ = build(TrainData(source="math", path=str(math_file), n=40, k=2, translations=str(tr), seed=0))
    assert [e.to_dict() for e in rows2] == [e.to_dict() for e in rows]  # the same seed gives the same set
    rows3, _ = build(TrainData(source="math", path=str(math_file), n=40, k=2, translations=str(tr), seed=5))
    assert ids(rows3, "en") != ids(rows, "en")


def test_unparallel_build_shares_no_ids(math_file, tmp_path):
    pool = load("math", path=math_file)
    tr = fake_translations(tmp_path / "tr", pool, ["ru", "bn"])
    spec = TrainData(source="math", path=str(math_file), n=30, langs=["en", "ru", "bn"], build="unparallel",
                     translations=str(tr))
    rows, summary = build(spec)
    assert summary["by_lang"] == {"en": 30, "ru": 30, "bn": 30} and summary["problems"] == 90
    en, ru, bn = (set(ids(rows, lang)) for lang in ("en", "ru", "bn"))
    assert not en & ru and not en & bn and not ru & bn
    assert strata(rows, "en") == strata(rows, "ru") == strata(rows, "bn")  # matched on type and level
    parallel, _ = build(TrainData(source="math", path=str(math_file), n=30, langs=["en", "ru", "bn"],
                                  translations=str(tr)))
    assert set(ids(parallel, "en")) == en  # English keeps the parallel set's problems


def test_mix_build(math_file, tmp_path):
    pool = load("math", path=math_file)
    tr = fake_translations(tmp_path / "tr", pool, ["zh", "de"])
    rows, summary = build(TrainData(source="math", path=str(math_file), n=31, langs=["en", "zh", "de"],
                                    build="mix", translations=str(tr)))
    assert summary["by_lang"] == {"en": 11, "zh": 10, "de": 10} and summary["problems"] == 31


def test_missing_translations_are_skipped_and_reported(math_file, tmp_path):
    pool = load("math", path=math_file)
    first = select_sets(pool, [40])[0]
    rejected = {e.id for e in first[:3]}
    tr = fake_translations(tmp_path / "tr", pool, ["ru"], skip=rejected)
    rows, summary = build(TrainData(source="math", path=str(math_file), n=40, langs=["en", "ru"], translations=str(tr)))
    assert summary["by_lang"] == {"en": 40, "ru": 40}  # replaced by the next problems of the same type and level
    assert not rejected & set(ids(rows, "en"))
    assert strata(rows, "en") == Counter(map(stratum, first))
    sparse = fake_translations(tmp_path / "sparse", pool[:30], ["ru"])
    rows, summary = build(TrainData(source="math", path=str(math_file), n=40, langs=["en", "ru"],
                                    translations=str(sparse)))
    assert summary["shortfall"]["en"] == summary["shortfall"]["ru"] == 40 - len(ids(rows, "ru")) > 0
    assert ids(rows, "en") == ids(rows, "ru") and set(ids(rows, "ru")) <= {e.id for e in pool[:30]}


def test_language_without_data_says_how_to_make_it(math_file, tmp_path):
    spec = TrainData(source="math", path=str(math_file), n=20, k=1)
    with pytest.raises(XlingError, match=r"data set math has no ru; make them with: python run.py translate "
                                         r"source=math path=.* split=train langs=ru n=20 seed=0"):
        build(spec)
    (tmp_path / "tr").mkdir()
    with pytest.raises(XlingError, match=r"neither math nor the translations in .* have ru"):
        build(TrainData(source="math", path=str(math_file), n=20, k=1, translations=str(tmp_path / "tr")))
    with pytest.raises(XlingError, match="translations folder .* does not exist"):
        build(TrainData(source="math", path=str(math_file), n=20, k=1, translations=str(tmp_path / "none")))


def test_require_langs_keeps_the_same_problems_across_k(math_file, tmp_path):
    pool = load("math", path=math_file)
    first = select_sets(pool, [20])[0]
    tr = fake_translations(tmp_path / "tr", pool, ["ru"])
    fake_translations(tmp_path / "tr", pool, ["fr"], skip={first[0].id})
    k1, _ = build(TrainData(source="math", path=str(math_file), n=20, k=1, translations=str(tr)))
    k2, _ = build(TrainData(source="math", path=str(math_file), n=20, k=2, translations=str(tr)))
    assert ids(k1, "en") != ids(k2, "en")
    k1_same, _ = build(TrainData(source="math", path=str(math_file), n=20, k=1, translations=str(tr),
                                 require_langs=["ru", "fr"]))
    assert set(ids(k1_same, "en")) == set(ids(k2, "en"))


def test_synth_builds_natively_in_all_languages():
    rows, summary = build(TrainData(source="synth", n=50, langs=["en", "sw", "te"], build="unparallel", seed=3))
    assert summary["by_lang"] == {"en": 50, "sw": 50, "te": 50}
    assert not set(ids(rows, "en")) & set(ids(rows, "sw"))
    assert strata(rows, "en") == strata(rows, "te")
    assert set(summary["by_type"]) == {"addition", "subtraction", "multiplication", "division", "multi-step"}


def test_gsm8k_parallel_build():
    rows, summary = build(TrainData(source="gsm8k-parallel", path=str(FIX / "gsm8k_parallel.jsonl"), n=3,
                                    langs=["en", "de"]))
    assert ids(rows, "en") == ids(rows, "de") and set(ids(rows, "de")) == {"gsm8kp-0", "gsm8kp-2"}
    assert summary["shortfall"] == {"en": 1, "de": 1}  # problem 1 has no German version


def test_paper_order_for_k():
    assert TrainData(k=7).languages() == ("en", "ru", "fr", "es", "de", "bn", "th", "zh")
    assert TrainData(k=0).languages() == ("en",)
    assert TrainData(k=2, order=["bn", "zh", "de"]).languages() == ("en", "bn", "zh")
    assert TrainData(langs=["zh"]).languages() == ("zh",)


def test_config_section_checks():
    with pytest.raises(ConfigError, match=r"recipe key 'k': k=9: give 0 to 7"):
        build_config(TrainData, {"k": 9})
    with pytest.raises(ConfigError, match=r"recipe key 'langs': unknown language 'xx'"):
        build_config(TrainData, {"langs": ["en", "xx"]})
    with pytest.raises(ConfigError, match=r"recipe key 'source': unknown data source 'nope'"):
        build_config(TrainData, {"source": "nope"})
    with pytest.raises(ConfigError, match=r"recipe key 'build'"):
        build_config(TrainData, {"build": "both"})
    assert build_config(TrainData, {"k": 1, "build": "unparallel"}).languages() == ("en", "ru")


# -- output ------------------------------------------------------------------------------------

def test_dataset_in_trl_format_and_saved(tmp_path):
    spec = TrainData(source="synth", n=10, langs=["en", "ja"], prefix=True)
    rows, summary = build(spec)
    ds = to_dataset(rows, spec)
    assert len(ds) == 20
    assert {"prompt", "answer", "lang", "id", "kind", "type", "level", "solution", "reference"} <= set(ds.column_names)
    first = ds[0]
    assert [m["role"] for m in first["prompt"]] == ["system", "user", "assistant"]
    assert first["prompt"][1]["content"] == first["question"] and first["kind"] == "number"
    assert first["solution"].endswith(f"\\boxed{{{first['answer']}}}.")
    plain = to_records(rows, prefix=False)
    assert [m["role"] for m in plain[0]["prompt"]] == ["system", "user"]
    path = save(rows, spec, tmp_path, summary)
    assert path == tmp_path / "trainset.jsonl"
    saved = json.loads((tmp_path / "trainset_summary.json").read_text())
    assert saved["by_lang"] == {"en": 10, "ja": 10} and saved["build"] == "parallel"
    back = load_saved(tmp_path)
    assert back[0]["prompt"] == ds[0]["prompt"] and len(back) == 20


def test_summary_counts():
    rows = [Example("a", "en", "q", "1", meta={"type": "x", "level": 2}),
            Example("a", "ru", "q", "1", meta={"type": "x", "level": 2}),
            Example("b", "en", "q", "1")]
    s = summarize(rows)
    assert s["by_lang"] == {"en": 2, "ru": 1} and s["by_type"] == {"all": 1, "x": 2}
    assert s["by_level"] == {"0": 1, "2": 2} and s["by_lang_level"]["ru"] == {"2": 1}


def test_pool_draws_from_every_type(math_file):
    """The source lists problems type after type: a pool must not be its first rows."""
    rows, _ = build(TrainData(source="math", path=str(math_file), n=20, pool=40, seed=3))
    assert set(Counter(e.meta["type"] for e in rows)) == set(TYPES)
    again, _ = build(TrainData(source="math", path=str(math_file), n=20, pool=40, seed=3))
    assert [e.id for e in again] == [e.id for e in rows]
