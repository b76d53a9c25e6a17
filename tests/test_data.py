"""Loaders: the real MGSM / MSVAMP / GSM8K files, local formats, the hub path (faked) and its cache, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from xling.data import (
    SOURCES, Example, last_boxed, load, missing_langs, normalize_choice, normalize_number, read_examples,
    source_langs, write_examples,
)
from xling.data import readers
from xling.common.errors import XlingError
from xling.data.languages import CODES, unknown_language_message

FIX = Path(__file__).parent / "fixtures" / "data"


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """Every test gets its own empty cache."""
    monkeypatch.setenv("XLING_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


# -- the real files ----------------------------------------------------------------------------

def test_mgsm_all_languages(shared_data):
    data = load("mgsm", path=shared_data / "mgsm")
    by_lang = {}
    for ex in data:
        by_lang.setdefault(ex.lang, []).append(ex)
    assert list(by_lang) == list(CODES)
    assert all(len(rows) == 250 for rows in by_lang.values())
    ids = [e.id for e in by_lang["en"]]
    assert len(set(ids)) == 250
    for lang, rows in by_lang.items():
        assert [e.id for e in rows] == ids  # the same problem has the same id in every language
        assert [e.answer for e in rows] == [e.answer for e in by_lang["en"]]
        assert all(e.kind == "number" and e.question for e in rows)
    assert by_lang["ja"][0].question.startswith("ジャネット")


def test_mgsm_thousands_commas(shared_data):
    raw = [line.rsplit("\t", 1)[1].strip() for line in
           (shared_data / "mgsm" / "mgsm_en.tsv").read_text(encoding="utf-8").splitlines() if line.strip()]
    with_commas = [i for i, a in enumerate(raw) if "," in a]
    assert len(with_commas) == 4
    data = load("mgsm", path=shared_data / "mgsm", langs=["en", "te"])
    for lang in ("en", "te"):
        rows = [e for e in data if e.lang == lang]
        for i in with_commas:
            assert rows[i].answer == raw[i].replace(",", "")
            assert rows[i].answer.isdigit()
    assert {e.answer for e in data if e.id == f"mgsm-{with_commas[0]}"} == {"2125"}


def test_mgsm_langs_and_limit(shared_data):
    data = load("mgsm", path=shared_data / "mgsm", langs=["sw", "en"], limit=3)
    assert [(e.lang, e.id) for e in data] == [("sw", "mgsm-0"), ("sw", "mgsm-1"), ("sw", "mgsm-2"),
                                             ("en", "mgsm-0"), ("en", "mgsm-1"), ("en", "mgsm-2")]
    assert data[0].answer == "18"
    assert load("mgsm", path=shared_data / "mgsm" / "mgsm_zh.tsv", langs="zh", limit=1)[0].lang == "zh"


def test_msvamp(shared_data):
    data = load("msvamp", path=shared_data / "msvamp")
    counts = Counter(e.lang for e in data)
    assert set(counts) == set(CODES) - {"te"} and set(counts.values()) == {1000}
    assert "te" not in source_langs("msvamp")
    en = [e for e in data if e.lang == "en"]
    zh = [e for e in data if e.lang == "zh"]
    assert en[0].answer == "8" and en[0].question.startswith("julia played tag")  # "8.0" -> "8"
    assert [e.id for e in en] == [e.id for e in zh] and [e.answer for e in en] == [e.answer for e in zh]
    assert all("." not in e.answer or not e.answer.endswith(".0") for e in data)


def test_msvamp_has_no_telugu(shared_data):
    with pytest.raises(XlingError, match=r"benchmark msvamp has no te; it has en, es"):
        load("msvamp", path=shared_data / "msvamp", langs=["en", "te"])
    assert missing_langs("msvamp", ["en", "te", "bn"]) == ["te"]
    assert missing_langs("mgsm", ["te"]) == []


def test_gsm8k(shared_data):
    train = load("gsm8k", path=shared_data / "gsm8k")
    assert len(train) == 7473 and train[0].id == "gsm8k-train-0" and train[0].answer == "72"
    raw = [json.loads(line) for line in (shared_data / "gsm8k" / "train.jsonl").read_text().splitlines()]
    commas = [i for i, r in enumerate(raw) if "," in r["answer"].rsplit("####", 1)[1]]
    assert commas, "GSM8K has answers with thousands commas"
    for i in commas:
        assert train[i].answer == raw[i]["answer"].rsplit("####", 1)[1].strip().replace(",", "")
    assert all(normalize_number(e.answer) == e.answer and "," not in e.answer for e in train)
    assert "<<" not in train[0].meta["solution"] and train[0].meta["solution"].endswith("\\boxed{72}.")
    test = load("gsm8k", path=shared_data / "gsm8k", split="test", limit=250)
    mgsm = load("mgsm", path=shared_data / "mgsm", langs=["en"])
    assert [e.answer for e in test] == [e.answer for e in mgsm]  # MGSM en = GSM8K test rows 0-249


# -- local formats -----------------------------------------------------------------------------

def test_math_jsonl_and_release_folder():
    data = load("math", path=FIX / "math_train.jsonl")
    assert len(data) == 20  # the duplicate problem is kept once
    assert Counter(e.meta["type"] for e in data) == {"algebra": 5, "geometry": 5, "number_theory": 5, "prealgebra": 5}
    assert sorted({e.meta["level"] for e in data}) == [1, 2, 3, 4, 5]
    answers = {e.answer for e in data}
    assert {"\\frac{1}{2}", "9\\pi", "\\frac{3}{4}"} <= answers
    assert all(e.kind == "math" and e.id.startswith("math-") for e in data)
    release = load("math", path=FIX / "math_release")
    assert {e.meta["type"] for e in release} == {"algebra", "geometry", "number_theory"}
    assert {e.id for e in release} <= {e.id for e in data}  # ids are content hashes: same from any copy


def test_last_boxed_and_normalisers():
    assert last_boxed("a \\boxed{1} then \\boxed{\\frac{a}{b^{2}}} end") == "\\frac{a}{b^{2}}"
    assert last_boxed("no box") is None
    assert last_boxed("\\fbox{7}") == "7"
    assert normalize_number("2,125") == "2125" and normalize_number("8.0") == "8"
    # only thousands commas go: a list or a decimal comma is not a number to squash
    assert normalize_number("1,234,567.5") == "1234567.5"
    assert [normalize_number(t) for t in ("1,2", "3,5", "12,50")] == ["1,2", "3,5", "12,50"]
    assert normalize_number("$1,000.50") == "1000.5" and normalize_number("-3") == "-3"
    assert normalize_number("x+1") == "x+1"
    assert normalize_choice("(B)") == "B" and normalize_choice("\\boxed{C}") == "C" and normalize_choice("d") == "d"


def test_gsm8k_parallel_groups():
    data = load("gsm8k-parallel", path=FIX / "gsm8k_parallel.jsonl", langs=["en", "ru", "de", "zh"])
    ids = {lang: [e.id for e in data if e.lang == lang] for lang in ("en", "ru", "de", "zh")}
    assert ids["en"] == ids["ru"] == ids["zh"] == ["gsm8kp-0", "gsm8kp-1", "gsm8kp-2"]
    assert ids["de"] == ["gsm8kp-0", "gsm8kp-2"]  # the German version of problem 1 is missing
    answers = {(e.id, e.lang): e.answer for e in data}
    assert answers[("gsm8kp-1", "en")] == "2400" and answers[("gsm8kp-0", "zh")] == "7"
    assert next(e for e in data if e.lang == "ru").question.startswith("У Тома")
    with pytest.raises(XlingError, match="data set gsm8k-parallel has no te"):
        load("gsm8k-parallel", path=FIX / "gsm8k_parallel.jsonl", langs=["te"])


def test_uniform_jsonl_file_and_folder(tmp_path):
    data = load("jsonl", path=FIX / "uniform.jsonl")
    assert Counter(e.lang for e in data) == {"en": 3, "de": 2}
    kinds = {e.id: e.kind for e in data}
    assert kinds == {"u-1": "number", "u-2": "math", "u-3": "choice"}
    assert next(e for e in data if e.id == "u-3").answer == "B"
    assert next(e for e in data if e.id == "u-1" and e.lang == "en").solution == "2 + 2 = 4."
    assert load("jsonl", path=FIX / "uniform.jsonl", langs=["de"])[0].question == "Was ist 2 + 2?"
    write_examples(tmp_path / "d" / "a.jsonl", data[:2])
    write_examples(tmp_path / "d" / "b.jsonl", data[2:])
    assert [e.to_dict() for e in load("jsonl", path=tmp_path / "d")] == [e.to_dict() for e in data]
    # a uniform file is accepted for any source, e.g. a translated MGSM
    assert len(load("mgsm", path=FIX / "uniform.jsonl", langs=["de"])) == 2


def test_xreasoning_local_folder(tmp_path):
    folder = tmp_path / "aime"
    folder.mkdir()
    for lang, q in (("en", "Find the remainder of 2024 mod 7."), ("ja", "2024を7で割った余りを求めよ。")):
        (folder / f"{lang}.jsonl").write_text(json.dumps({"problem": q, "answer": "1"}, ensure_ascii=False) + "\n")
    data = load("aime24", path=folder, langs=["en", "ja"])
    assert [(e.id, e.lang, e.answer, e.kind) for e in data] == [("aime24-0", "en", "1", "math"), ("aime24-0", "ja", "1", "math")]
    with pytest.raises(XlingError, match=r"has no bn\.jsonl"):
        load("aime24", path=folder, langs=["bn"])


def test_synth_through_load():
    data = load("synth", langs=["en", "th"], limit=5)
    assert [e.id for e in data if e.lang == "en"] == [e.id for e in data if e.lang == "th"] == [f"synth-{i}" for i in range(5)]
    with pytest.raises(XlingError, match="source synth is generated"):
        load("synth", path="x")


def test_registry():
    assert {"mgsm", "msvamp", "aime24", "aime25", "gpqa", "math500", "math", "gsm8k", "gsm8k-parallel",
            "synth", "jsonl"} <= set(SOURCES)
    assert source_langs("mgsm") == CODES and source_langs("math") == ("en",) and source_langs("jsonl") == ()
    assert SOURCES["gpqa"].kind == "choice" and SOURCES["aime25"].hub == "shanchen/aime_2025_multilingual"


# -- bad input ---------------------------------------------------------------------------------

def test_unknown_source():
    with pytest.raises(XlingError, match=r"unknown data source 'mgsmm' \(did you mean 'mgsm'\?\); sources: mgsm"):
        load("mgsmm")


def test_unknown_language(shared_data):
    with pytest.raises(XlingError) as e:
        load("mgsm", path=shared_data / "mgsm", langs=["en", "jp"])
    assert str(e.value) == unknown_language_message("jp")


def test_language_a_source_lacks():
    with pytest.raises(XlingError, match=r"data set math has no ru; it has en; make them with: python run.py translate"):
        load("math", path=FIX / "math_train.jsonl", langs=["ru"])
    with pytest.raises(XlingError, match=r"benchmark math500 has no de; .*hub=ID"):
        load("math500", langs=["de"])


def test_missing_field_in_local_jsonl():
    with pytest.raises(XlingError, match=r"missing_answer\.jsonl line 2: missing field 'answer'; every record needs id, lang, question, answer"):
        load("jsonl", path=FIX / "missing_answer.jsonl")
    with pytest.raises(XlingError, match=r"math_train\.jsonl line 1: missing fields 'id', 'lang', 'question', 'answer'; .* use source=math"):
        read_examples(FIX / "math_train.jsonl")


def test_bad_language_in_local_jsonl(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text(json.dumps({"id": "1", "lang": "xx", "question": "q", "answer": "1"}) + "\n")
    with pytest.raises(XlingError, match=r"bad\.jsonl line 1: unknown language 'xx'"):
        load("jsonl", path=f)


def test_empty_file():
    with pytest.raises(XlingError, match=r"empty\.jsonl is empty"):
        load("jsonl", path=FIX / "empty.jsonl")
    with pytest.raises(XlingError, match=r"empty\.jsonl is empty"):
        load("gsm8k", path=FIX / "empty.jsonl")


def test_malformed_line(tmp_path):
    f = tmp_path / "broken.jsonl"
    f.write_text('{"id": "1", "lang": "en", "question": "q", "answer": "1"}\n{not json\n')
    with pytest.raises(XlingError, match=r"broken\.jsonl: 1 malformed line\(s\): line 2"):
        load("jsonl", path=f)


def test_missing_path(tmp_path, shared_data):
    with pytest.raises(XlingError, match=r"nowhere: no such file or folder; give path= a JSONL file"):
        load("jsonl", path=tmp_path / "nowhere")
    with pytest.raises(XlingError, match=r"nowhere: no such file or folder; give path= the MATH release folder"):
        load("math", path=tmp_path / "nowhere")
    with pytest.raises(XlingError, match=r"has no mgsm_en\.tsv"):
        load("mgsm", path=tmp_path, langs=["en"])
    with pytest.raises(XlingError, match=r"has no test_Russian\.json"):
        load("msvamp", path=tmp_path, langs=["ru"])


def test_bad_split_and_limit(shared_data):
    with pytest.raises(XlingError, match=r"data set msvamp has no split 'train'"):
        load("msvamp", split="train")
    with pytest.raises(XlingError, match="limit=0"):
        load("mgsm", path=shared_data / "mgsm", limit=0)


def test_bad_tsv_line(tmp_path):
    (tmp_path / "mgsm_en.tsv").write_text("a question without an answer\n")
    with pytest.raises(XlingError, match=r"mgsm_en\.tsv line 1: expected two tab-separated columns"):
        load("mgsm", path=tmp_path, langs=["en"])


# -- the hub (faked: no network here) -----------------------------------------------------------

def test_hub_failure_says_how_to_use_a_local_path(monkeypatch):
    import datasets

    def fail(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'juletxara/mgsm' on the Hub (offline)")

    monkeypatch.setattr(datasets, "load_dataset", fail)
    monkeypatch.setattr("xling.data.hub.offline_reason", lambda: None)  # the hub is reached, the load fails anyway
    with pytest.raises(XlingError) as e:
        load("mgsm", langs=["en"])
    msg = str(e.value)
    assert msg.startswith("could not load data set 'mgsm' from the Hugging Face hub (juletxara/mgsm")
    assert "give a local copy with path=DIR (a folder with the original mgsm_<lang>.tsv files)" in msg
    with pytest.raises(XlingError, match=r"could not load data set 'math' .*EleutherAI/hendrycks_math.*path=DIR"):
        load("math")


def test_hub_offline_for_real(tmp_path):
    """With HF_HUB_OFFLINE=1 the hub is not asked at all; the message says what to do."""
    code = ("from xling.data import load\n"
            "from xling.common.errors import XlingError\n"
            "try:\n    load('msvamp', langs=['en'])\n"
            "except XlingError as e:\n    print('ERR', e)\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "XLING_CACHE": str(tmp_path),
           "HF_HOME": str(tmp_path / "hf")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=Path(__file__).resolve().parent.parent, timeout=120)
    assert out.stdout.startswith("ERR data set 'msvamp' (Mathoctopus/MSVAMP, split test, en) needs the Hugging Face "
                                 "hub, which is not available (HF_HUB_OFFLINE is set)")
    assert "path=DIR" in out.stdout


class FakeHub:
    """Stands in for `datasets.load_dataset` / `get_dataset_config_names`, recording the calls."""

    def __init__(self, tables: dict):
        self.tables = tables
        self.calls: list[tuple] = []

    def load_dataset(self, path, name=None, split=None, **kwargs):
        self.calls.append((path, name, split))
        key = (path, name, split)
        if key not in self.tables:
            raise FileNotFoundError(f"Dataset '{path}' doesn't exist on the Hub or cannot be accessed")
        return self.tables[key]

    def config_names(self, path, **kwargs):
        return sorted({name for (p, name, _) in self.tables if p == path and name})


@pytest.fixture
def fake_hub(monkeypatch):
    import datasets

    def install(tables):
        hub = FakeHub(tables)
        monkeypatch.setattr("xling.data.hub.offline_reason", lambda: None)  # the fake hub is reachable
        monkeypatch.setattr(datasets, "load_dataset", hub.load_dataset)
        monkeypatch.setattr(datasets, "get_dataset_config_names", hub.config_names)
        return hub
    return install


def test_hub_readers_map_fields(fake_hub):
    hub = fake_hub({
        ("juletxara/mgsm", "de", "test"): [{"question": "Frage", "answer": None, "answer_number": 2125,
                                            "equation_solution": None}],
        ("Mathoctopus/MSVAMP", "sw", "test"): [{"m_query": "Swali", "response": "8.0"}],
        ("shanchen/aime_2024_multilingual", None, "fr"): [{"problem": "Problème", "answer": "204"}],
        ("shanchen/gpqa_diamond_mc_multilingual", None, "bn"): [{"problem": "প্রশ্ন (A) ... (D)", "solution": "(C)"}],
        ("HuggingFaceH4/MATH-500", None, "test"): [{"problem": "P", "solution": "s \\boxed{3}", "answer": "3",
                                                   "subject": "Algebra", "level": 2, "unique_id": "test/algebra/1.json"}],
        ("openai/gsm8k", "main", "train"): [{"question": "Q", "answer": "2 + 3 = <<2+3=5>>5\n#### 1,005"}],
        ("Mathoctopus/GSM8KInstruct_Parallel", None, "train"): [
            {"prompt": "... completes the request in English. Please answer in English.\n\n### Instruction:\nHow many?\n\n### Response:",
             "chosen": "#### 4"},
            {"prompt": "... completes the request in French. Please answer in French.\n\n### Instruction:\nCombien ?\n\n### Response:",
             "chosen": "La réponse est 4."}],
        **{("EleutherAI/hendrycks_math", t, "train"): [{"problem": f"{t} problem", "level": "Level 4", "type": t.title(),
                                                       "solution": "so \\boxed{\\frac{1}{2}}"}] for t in readers.MATH_TYPES},
    })
    assert load("mgsm", langs=["de"])[0].answer == "2125"
    assert load("msvamp", langs=["sw"])[0].answer == "8"
    aime = load("aime24", langs=["fr"])[0]
    assert (aime.id, aime.lang, aime.question, aime.answer, aime.kind) == ("aime24-0", "fr", "Problème", "204", "math")
    gpqa = load("gpqa", langs=["bn"])[0]
    assert (gpqa.answer, gpqa.kind) == ("C", "choice")
    m500 = load("math500")[0]
    assert (m500.id, m500.answer, m500.meta["unique_id"]) == ("math500-0", "3", "test/algebra/1.json")
    g = load("gsm8k")[0]
    assert (g.answer, g.meta["level"]) == ("1005", 1)
    par = load("gsm8k-parallel", langs=["en", "fr"])
    assert [(e.id, e.lang, e.answer) for e in par] == [("gsm8kp-0", "en", "4"), ("gsm8kp-0", "fr", "4")]
    math = load("math")
    assert len(math) == 7 and {e.meta["level"] for e in math} == {4} and math[0].answer == "\\frac{1}{2}"
    assert {e.meta["type"] for e in math} == set(readers.MATH_TYPES)
    assert ("shanchen/gpqa_diamond_mc_multilingual", None, "bn") in hub.calls


def test_hub_multilingual_math500(fake_hub):
    hub = fake_hub({("someone/MATH-500-multilingual", "French", "test"): [{"problem": "Calculer", "answer": "7"}],
                    ("someone/MATH-500-multilingual", "English", "test"): [{"problem": "Compute", "answer": "7"}]})
    data = load("math500", hub="someone/MATH-500-multilingual", langs=["en", "fr"])
    assert [(e.id, e.lang, e.question) for e in data] == [("math500-0", "en", "Compute"), ("math500-0", "fr", "Calculer")]
    assert ("someone/MATH-500-multilingual", "French", "test") in hub.calls


def test_hub_cache(fake_hub, cache):
    hub = fake_hub({("juletxara/mgsm", lang, "test"): [{"question": f"q-{lang}", "answer_number": 3}]
                    for lang in ("en", "ja")})
    first = load("mgsm", langs=["en", "ja"])
    assert len(hub.calls) == 2
    files = sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*") if p.is_file())
    assert files == ["data/mgsm/juletxara__mgsm/test/en.jsonl", "data/mgsm/juletxara__mgsm/test/ja.jsonl"]
    again = load("mgsm", langs=["ja", "en"])
    assert len(hub.calls) == 2  # served from the cache
    assert {e.to_dict()["question"] for e in again} == {e.question for e in first}
    load("mgsm", langs=["en"], cache=False)
    assert len(hub.calls) == 3


def test_example_round_trip():
    ex = Example("a", "en", "q", "1", "number", {"type": "t", "level": 2})
    assert Example.from_dict(json.loads(json.dumps(ex.to_dict()))) == ex


# -- the `data` recipe -------------------------------------------------------------------------

def test_data_recipe_runs_as_is(run_cli, tmp_path):
    assert run_cli("data") == 0
    metrics = json.loads((tmp_path / "runs" / "data" / "metrics.json").read_text())
    assert metrics["rows"] == 11 * 250 and metrics["by_lang"]["te"] == 250
    assert len((tmp_path / "runs" / "data" / "data.jsonl").read_text().splitlines()) == 2750


def test_data_recipe_real_files(run_cli, tmp_path, shared_data):
    assert run_cli("data", "source=mgsm", f"path={shared_data / 'mgsm'}", "langs=en,ja", "limit=5", "out=o") == 0
    rows = read_examples(tmp_path / "o" / "data.jsonl")
    assert [(e.id, e.lang) for e in rows][:2] == [("mgsm-0", "en"), ("mgsm-1", "en")] and len(rows) == 10
    assert json.loads((tmp_path / "o" / "metrics.json").read_text())["by_lang"] == {"en": 5, "ja": 5}


def test_data_recipe_builds_a_training_set(run_cli, tmp_path):
    assert run_cli("data", "build=parallel", "k=2", "n=20", "prefix=true", "out=b") == 0
    summary = json.loads((tmp_path / "b" / "trainset_summary.json").read_text())
    assert summary["by_lang"] == {"en": 20, "ru": 20, "fr": 20}
    first = json.loads((tmp_path / "b" / "trainset.jsonl").read_text().splitlines()[0])
    assert first["prompt"][-1]["role"] == "assistant"


def test_data_recipe_errors(run_cli, capsys, shared_data):
    assert run_cli("data", "source=nope", "--dry-run") == 2
    assert "unknown data source 'nope'" in capsys.readouterr().err
    assert run_cli("data", "source=msvamp", f"path={shared_data / 'msvamp'}", "langs=te", "out=e") == 2
    assert "error: benchmark msvamp has no te" in capsys.readouterr().err
    assert run_cli("data", "source=gsm8k", "path=/no/such/dir", "out=e2") == 2
    assert "/no/such/dir: no such file or folder" in capsys.readouterr().err
