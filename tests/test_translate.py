"""The translate stage: number checks, acceptance, caching, resume, rejections, and the model back ends."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from xling.data import Example, load
from xling.common.errors import XlingError
from xling.derived.translate import (
    Store, clean, hf_translator, numbers, rejection, script_share, translate, translate_selection,
    translation_messages, vllm_translator,
)
from xling.data.trainset import TrainData, build, select_sets

FIX = Path(__file__).parent / "fixtures" / "data"
WORDS = {"ru": ("Переведённая задача с числами", "и"), "ja": ("翻訳された問題の数は次のとおりです", "と"),
         "de": ("Eine übersetzte Aufgabe mit den Zahlen", "und"), "bn": ("অনূদিত প্রশ্নের সংখ্যাগুলো", "এবং")}


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XLING_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def math_file(tmp_path_factory) -> Path:
    """A MATH-train-like JSONL: 4 types x 5 levels x 4 problems, written for these tests."""
    path = tmp_path_factory.mktemp("math") / "train.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for t in ("Algebra", "Geometry", "Number Theory", "Prealgebra"):
            for level in range(1, 6):
                for i in range(4):
                    rec = {"problem": f"A {t.lower()} problem: what is ${i + 2} \\cdot {level + 10}$?",
                           "level": f"Level {level}", "type": t,
                           "solution": f"It is $\\boxed{{{(i + 2) * (level + 10)}}}$."}
                    f.write(json.dumps(rec) + "\n")
    return path


@pytest.fixture(scope="module")
def pool(math_file):
    return load("math", path=math_file)


class FakeTranslator:
    """'Translates' by writing the problem's numbers into a sentence of the target language."""

    def __init__(self, break_ids: set[str] = frozenset(), fail_after: int | None = None, by_text=None):
        self.calls: list[tuple[str, int]] = []
        self.break_texts = set()
        self.fail_after = fail_after
        self.by_text = by_text or {}

    def __call__(self, texts: list[str], lang: str) -> list[str]:
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise RuntimeError("the GPU fell over")
        self.calls.append((lang, len(texts)))
        word, joiner = WORDS[lang]
        out = []
        for t in texts:
            nums = re.findall(r"\d+", t)
            if t in self.break_texts:
                nums = nums[:-1]  # a translation that loses a number
            out.append(f"{word} " + f" {joiner} ".join(nums))
        return out

    @property
    def translated(self) -> int:
        return sum(n for _, n in self.calls)


# -- checks ------------------------------------------------------------------------------------

def test_numbers_normalised():
    assert numbers("It costs 1,000 dollars and 2.5 kg.") == Counter({"1000": 1, "2.5": 1})
    assert numbers("Es kostet 1.000 Dollar und 2,5 kg.") == numbers("Il coûte 1 000 dollars et 2,5 kg.")
    assert numbers("৫টি আপেল এবং ১২টি কমলা") == Counter({"5": 1, "12": 1})
    assert numbers("๓ และ 4") == Counter({"3": 1, "4": 1})
    assert numbers("$\\frac{1}{2} + x^2$") == Counter({"1": 1, "2": 2})
    assert numbers("2, 3, and 4") == Counter({"2": 1, "3": 1, "4": 1})
    assert numbers("3{,}5") == numbers("3.5")
    assert numbers("1,234.5") == numbers("1.234,5") == Counter({"1234.5": 1})


def test_rejection_reasons():
    src = "Tom has 12 apples and buys 5 more. How many apples does he have?"
    assert rejection(src, "У Тома 12 яблок, и он покупает ещё 5. Сколько у него яблок?", "ru") is None
    assert rejection(src, "У Тома 12 яблок, и он покупает ещё 6. Сколько у него яблок?", "ru") == "numbers differ"
    assert rejection(src, "Tom has 12 apples and buys 5 more apples now.", "ru") == "wrong script"
    assert rejection(src, src, "de") == "unchanged"
    assert rejection(src, "", "fr") == "empty"
    assert rejection(src, "12 5 " * 200, "fr") == "too long"
    assert rejection(src, "トムは12個のりんごを持っていて、さらに5個買います。", "ja") is None
    assert rejection(src, "汤姆有12个苹果，又买了5个。", "ja") == "wrong script"  # Chinese is not Japanese
    assert script_share("Решите $x^2 = 4$.", "ru") == 1.0 and script_share("anything", "de") is None


def test_clean():
    assert clean("<think>hmm</think>\n«Задача 3»") == "Задача 3"
    assert clean("«a» и «b»") == "«a» и «b»" and clean('"Texte 3"') == "Texte 3"
    assert clean("```\nTexte 3\n```") == "Texte 3"
    assert clean("reasoning...</think> Texte") == "Texte"


def test_translation_messages():
    msgs = translation_messages("Compute $2+2$.", "bn")
    assert msgs[0]["role"] == "system" and "into Bengali (বাংলা)" in msgs[1]["content"]
    assert msgs[1]["content"].endswith("Compute $2+2$.")


# -- translating with a fake translator ----------------------------------------------------------

def test_accept_cache_and_report(pool, tmp_path):
    store = Store(tmp_path / "store")
    fake = FakeTranslator()
    report = translate(pool[:6], ["ru", "ja"], fake, store, batch_size=4, model="fake")
    assert (report["translated"], report["accepted"], report["rejected"]) == (12, 12, 0)
    # each batch of problems, then their worked solutions
    assert fake.calls == [("ru", 4), ("ru", 4), ("ru", 2), ("ru", 2), ("ja", 4), ("ja", 4), ("ja", 2), ("ja", 2)]
    assert report["solutions"] == {"translated": 12, "accepted": 12, "rejected": 0, "reasons": {}}
    saved = [json.loads(line) for line in (tmp_path / "store" / "ru.jsonl").read_text().splitlines()]
    assert [r["id"] for r in saved] == [e.id for e in pool[:6]]
    assert saved[0]["answer"] == pool[0].answer and saved[0]["meta"]["type"] == pool[0].meta["type"]
    assert saved[0]["meta"]["source_question"] == pool[0].question and saved[0]["meta"]["model"] == "fake"
    again = translate(pool[:8], ["ru", "ja"], fake, Store(tmp_path / "store"), batch_size=4)
    assert (again["cached"], again["translated"]) == (12, 4)  # only the new problems
    assert load("jsonl", path=tmp_path / "store", langs=["ja"])[0].lang == "ja"


def test_rejections_recorded_and_not_retried(pool, tmp_path):
    store = Store(tmp_path / "s")
    fake = FakeTranslator()
    fake.break_texts = {pool[1].question, pool[3].question}
    report = translate(pool[:5], ["de"], fake, store, batch_size=10)
    assert (report["accepted"], report["rejected"], report["reasons"]) == (3, 2, {"numbers differ": 2})
    rejected = [json.loads(x) for x in (tmp_path / "s" / "rejected.jsonl").read_text().splitlines()]
    assert {r["id"] for r in rejected} == {pool[1].id, pool[3].id}
    assert rejected[0]["reason"] == "numbers differ" and rejected[0]["source_numbers"] != rejected[0]["translation_numbers"]
    again = translate(pool[:5], ["de"], fake, Store(tmp_path / "s"))
    assert (again["translated"], again["skipped_rejected"], again["cached"]) == (0, 2, 3)
    fake.break_texts = set()
    retried = translate(pool[:5], ["de"], fake, Store(tmp_path / "s"), retry_rejected=True)
    assert (retried["translated"], retried["accepted"]) == (2, 2)
    assert Store(tmp_path / "s").rejected == {}


def test_resume_after_a_crash(pool, tmp_path):
    crashing = FakeTranslator(fail_after=2)  # the first batch's problems and solutions, then a crash
    with pytest.raises(RuntimeError):
        translate(pool[:7], ["ru"], crashing, Store(tmp_path / "s"), batch_size=3)
    store = Store(tmp_path / "s")
    assert len(store.accepted["ru"]) == 3  # the first batch survived
    with open(tmp_path / "s" / "ru.jsonl", "a") as f:
        f.write('{"id": "cut sho')  # a line cut short by the crash
    store = Store(tmp_path / "s")
    assert store.damaged == 1 and len(store.accepted["ru"]) == 3
    fake = FakeTranslator()
    report = translate(pool[:7], ["ru"], fake, store, batch_size=3)
    assert (report["cached"], report["translated"]) == (3, 4)


def test_selection_replaces_rejected_problems(pool, math_file, tmp_path):
    store = Store(tmp_path / "s")
    first = select_sets(pool, [8])[0]
    fake = FakeTranslator()
    fake.break_texts = {first[0].question, first[1].question}
    report = translate_selection(pool, ["ru", "de"], fake, store, n=8, batch_size=16)
    assert report["selected"] == 8 and report["complete"] == 8 and report["rounds"] == 2
    assert report["reasons"] == {"numbers differ": 4}
    assert {first[0].id, first[1].id}.isdisjoint(report["selected_ids"])
    # the builder picks exactly the translated problems
    rows, summary = build(TrainData(source="math", path=str(math_file), n=8, langs=["en", "ru", "de"],
                                    translations=str(tmp_path / "s")))
    assert summary["by_lang"] == {"en": 8, "ru": 8, "de": 8}
    assert {e.id for e in rows} == set(report["selected_ids"])
    again = translate_selection(pool, ["ru", "de"], fake, Store(tmp_path / "s"), n=8)
    assert again["translated"] == 0


def test_selection_resumes_exactly_after_a_kill(pool, tmp_path):
    """Killed in its second round and run again, a selection replays what the store holds and ends as an
    uninterrupted run ends: the same translations (none twice), rejections and selection."""
    first = select_sets(pool, [8])[0]
    broken = {first[0].id, first[1].id}
    second = [ex for ex in select_sets(pool, [8], ok=lambda pid, j: pid not in broken)[0] if ex.id not in
              {e.id for e in first}]
    texts = {first[0].question, first[1].question, second[0].question}  # a replacement is rejected too

    def translator(**kw):
        fake = FakeTranslator(**kw)
        fake.break_texts = texts
        return fake

    whole = translator()
    expected = translate_selection(pool, ["ru", "de"], whole, Store(tmp_path / "a"), n=8, batch_size=16,
                                   max_rounds=2, ledger=tmp_path / "a.jsonl")
    assert expected["rounds"] == 2 and expected["complete"] == 7 and whole.translated == 2 * (8 + 6) + 2 * (2 + 1)
    # per language: problems, then the accepted ones' solutions; killed in round 2 after ru's two calls
    killed = translator(fail_after=6)
    with pytest.raises(RuntimeError):
        translate_selection(pool, ["ru", "de"], killed, Store(tmp_path / "b"), n=8, batch_size=16, max_rounds=2,
                            ledger=tmp_path / "b.jsonl")
    rest = translator()
    resumed = translate_selection(pool, ["ru", "de"], rest, Store(tmp_path / "b"), n=8, batch_size=16, max_rounds=2,
                                  ledger=tmp_path / "b.jsonl")
    assert killed.calls + rest.calls == whole.calls  # nothing translated twice, no extra round
    assert resumed["selected_ids"] == expected["selected_ids"] and resumed["complete"] == 7
    assert resumed["considered_ids"] == expected["considered_ids"]
    a, b = Store(tmp_path / "a"), Store(tmp_path / "b")
    assert {lang: sorted(t) for lang, t in a.accepted.items()} == {lang: sorted(t) for lang, t in b.accepted.items()}
    assert sorted(a.rejected) == sorted(b.rejected)
    # the counts are those of the whole run, every round and session
    assert (expected["translated"], expected["accepted"], expected["rejected"]) == (2 * (8 + 2), 2 * 7, 2 * 3)
    assert expected["solutions"] == {"translated": 14, "accepted": 14, "rejected": 0, "reasons": {}}
    assert resumed == expected


def test_stored_translations_count_only_for_the_same_text_and_model(pool, tmp_path):
    translate(pool[:3], ["ru"], FakeTranslator(), Store(tmp_path / "s"), model="a")
    again = translate(pool[:3], ["ru"], FakeTranslator(), Store(tmp_path / "s"), model="a")
    assert (again["cached"], again["translated"]) == (3, 0)
    other = translate(pool[:3], ["ru"], FakeTranslator(), Store(tmp_path / "s"), model="b")
    assert (other["cached"], other["translated"]) == (0, 3)  # another model's translations are not this one's
    edited = [Example(pool[0].id, "en", pool[0].question + " Give it in cm.", pool[0].answer, pool[0].kind,
                      pool[0].meta), *pool[1:3]]
    report = translate(edited, ["ru"], FakeTranslator(), Store(tmp_path / "s"), model="b")
    assert (report["cached"], report["translated"]) == (2, 1)  # the same id with another text: translated again
    assert Store(tmp_path / "s").accepted["ru"][pool[0].id].meta["source_question"] == edited[0].question


def test_selection_for_unparallel_sets(pool, math_file, tmp_path):
    report = translate_selection(pool, ["ru"], FakeTranslator(), Store(tmp_path / "s"), n=6, sets=2)
    assert report["selected"] == 12 and report["complete"] == 12
    rows, _ = build(TrainData(source="math", path=str(math_file), n=6, langs=["en", "ru"],
                              build="unparallel", translations=str(tmp_path / "s")))
    en = {e.id for e in rows if e.lang == "en"}
    ru = {e.id for e in rows if e.lang == "ru"}
    assert len(en) == len(ru) == 6 and not en & ru


def test_translator_must_return_one_text_per_problem(pool, tmp_path):
    with pytest.raises(XlingError, match="returned 1 texts for 2 problems"):
        translate(pool[:2], ["ru"], lambda texts, lang: ["x"], Store(tmp_path / "s"))


# -- back ends ---------------------------------------------------------------------------------

def test_hf_translator_with_tiny_model(tiny_model, pool, tmp_path):
    """A random model writes garbage: the mechanics (generation, rejection, caching) still hold."""
    translator = hf_translator(str(tiny_model), max_new_tokens=8, batch_size=2)
    out = translator([pool[0].question, pool[1].question, pool[2].question], "ru")
    assert len(out) == 3 and all(isinstance(t, str) for t in out)
    store = Store(tmp_path / "s")
    report = translate(pool[:3], ["ru"], translator, store)
    assert report["translated"] == 3 and report["accepted"] + report["rejected"] == 3
    lines = (tmp_path / "s" / "rejected.jsonl").read_text().splitlines() if report["rejected"] else []
    assert len(lines) == report["rejected"]
    again = translate(pool[:3], ["ru"], translator, Store(tmp_path / "s"))
    assert again["translated"] == 0


def tiny_model_template(path) -> str:
    import fake_vllm

    return fake_vllm._model_template(str(path), None)


def strict_vllm(monkeypatch, reply):
    """tests/fake_vllm.py (vLLM 0.30.0's names and checks) answering each conversation with `reply(i, conv)`."""
    import fake_vllm

    return fake_vllm.install(monkeypatch, reply=lambda i, conv, k: (reply(i, conv), "stop"))


def test_vllm_translator_against_a_fake_module(monkeypatch, pool, tiny_model):
    fake = strict_vllm(monkeypatch, lambda i, conv: f"Задача {i}")
    translator = vllm_translator(str(tiny_model), max_new_tokens=512, gpu_memory_utilization=0.5,
                                 tensor_parallel_size=1)
    out = translator([pool[0].question, pool[1].question], "ru")
    assert out == ["Задача 0", "Задача 1"]
    model, llm_kwargs = fake.llm_calls[0]
    assert model == str(tiny_model)
    assert llm_kwargs["gpu_memory_utilization"] == 0.5 and llm_kwargs["tensor_parallel_size"] == 1
    params = fake.sampling_params[0]  # greedy, one sample: what vLLM accepts
    assert (params.temperature, params.max_tokens, params.n) == (0.0, 512, 1)
    call = fake.chat_calls[0]
    assert call["messages"][1] == translation_messages(pool[1].question, "ru")
    assert call["add_generation_prompt"] is True and call["continue_final_message"] is False
    assert call["chat_template"] == tiny_model_template(tiny_model)  # the model's own, passed explicitly


# -- the recipe --------------------------------------------------------------------------------

def test_translate_recipe_then_trainset(run_cli, monkeypatch, tmp_path, cache):
    from xling.tasks import translate as task

    fake = FakeTranslator()
    monkeypatch.setattr(task, "make_translator", lambda cfg, run_dir: fake)
    args = ["translate", "source=math", f"path={FIX / 'math_train.jsonl'}", "langs=ru,ja", "n=6", "model=my/model"]
    assert run_cli(*args) == 0
    run_dir = next((tmp_path / "runs").glob("translate-*"))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    store = cache / "translations" / "my__model" / "math-train"
    assert metrics["store"] == str(store) and metrics["complete"] == 6 and metrics["accepted"] == 12
    assert (run_dir / "rejected.jsonl").read_text() == ""
    assert run_cli(*args, "--force") == 0
    assert fake.translated == 24  # 12 problems and their solutions; the second run found everything in the store
    assert run_cli("data", "source=math", f"path={FIX / 'math_train.jsonl'}", "build=parallel", "langs=en,ja",
                   "n=6", f"translations={store}", "out=built") == 0
    summary = json.loads((tmp_path / "built" / "trainset_summary.json").read_text())
    assert summary["by_lang"] == {"en": 6, "ja": 6}
    copy = load("jsonl", path=store)  # the store is a multilingual copy: originals + translations
    assert Counter(e.lang for e in copy) == {"en": 6, "ru": 6, "ja": 6}
    assert {e.id for e in copy if e.lang == "en"} == {e.id for e in copy if e.lang == "ja"}


def test_translate_recipe_counts_every_round_of_a_killed_run(run_cli, monkeypatch, tmp_path, math_file, pool):
    """metrics.json of a run killed in its second round and run again holds the counts of an uninterrupted
    run (its translations, acceptances and rejections over all rounds); a forced re-run of a finished run
    counts only what it translated (nothing: the store holds it all)."""
    from xling.tasks import translate as task

    first = select_sets(pool, [6])[0]
    texts = {first[0].question, first[1].question}

    def translator(**kw):
        fake = FakeTranslator(**kw)
        fake.break_texts = texts
        return fake

    args = ["translate", "source=math", f"path={math_file}", "langs=ru,ja", "n=6", "model=my/model",
            "batch_size=16", "max_rounds=2"]
    whole = translator()
    monkeypatch.setattr(task, "make_translator", lambda cfg, run_dir: whole)
    assert run_cli(*args, f"store={tmp_path / 'sa'}", "out=a") == 0
    expected = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert (expected["translated"], expected["rejected"], expected["rounds"]) == (2 * (6 + 2), 4, 2)
    for calls in (5, 6):  # killed in round 2, after the first language's problems / after its solutions
        out = f"b{calls}"
        monkeypatch.setattr(task, "make_translator", lambda cfg, run_dir: translator(fail_after=calls))
        with pytest.raises(RuntimeError):
            run_cli(*args, f"store={tmp_path / ('s' + out)}", f"out={out}")
        monkeypatch.setattr(task, "make_translator", lambda cfg, run_dir: translator())
        assert run_cli(*args, f"store={tmp_path / ('s' + out)}", f"out={out}") == 0
        got = json.loads((tmp_path / out / "metrics.json").read_text())
        for key in ("translated", "accepted", "rejected", "reasons", "by_lang", "solutions", "complete"):
            assert got[key] == expected[key], key
        assert (tmp_path / out / "rejected.jsonl").read_text() == (tmp_path / "a" / "rejected.jsonl").read_text()
    assert run_cli(*args, f"store={tmp_path / 'sa'}", "out=a", "--force") == 0
    again = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert (again["translated"], again["accepted"], again["rejected"]) == (0, 0, 0)


def test_translate_recipe_with_tiny_model(run_cli, tiny_model, tmp_path):
    assert run_cli("translate", "source=synth", f"model={tiny_model}", "langs=th", "n=3", "max_new_tokens=6",
                   "max_rounds=1", "backend=transformers", "out=tr") == 0
    metrics = json.loads((tmp_path / "tr" / "metrics.json").read_text())
    assert metrics["translated"] == 3 and metrics["accepted"] + metrics["rejected"] == 3
    rejected = (tmp_path / "tr" / "rejected.jsonl").read_text().splitlines()
    assert len(rejected) == metrics["rejected"]


def test_translate_recipe_errors(run_cli, capsys):
    assert run_cli("translate", "langs=en") == 2
    assert "langs holds only English" in capsys.readouterr().err
    assert run_cli("translate", "langs=xx", "--dry-run") == 2
    assert "unknown language 'xx'" in capsys.readouterr().err


def test_translate_recipe_vllm_backend_against_a_fake_module(run_cli, monkeypatch, tmp_path, tiny_model):
    def reply(i, conv):
        text = conv[-1]["content"].rsplit("\n\n", 1)[1]
        return "Задача с числами " + " и ".join(re.findall(r"\d+", text))

    fake = strict_vllm(monkeypatch, reply)
    assert run_cli("translate", "source=synth", "langs=ru", "n=5", "backend=vllm", f"model={tiny_model}",
                   "gpu_memory_utilization=0.5", "out=v") == 0
    metrics = json.loads((tmp_path / "v" / "metrics.json").read_text())
    assert metrics["accepted"] == 5 and metrics["complete"] == 5
    assert metrics["solutions"]["translated"] == 5  # synth problems carry worked solutions
    model, llm_kwargs = fake.llm_calls[0]
    assert model == str(tiny_model)
    assert llm_kwargs["gpu_memory_utilization"] == 0.5 and llm_kwargs["tensor_parallel_size"] == 1


def test_store_as_a_benchmark_copy(tmp_path, monkeypatch):
    """Translating a benchmark (all of it) makes a folder that loads as that benchmark in every language."""
    from xling.data import Example as Ex

    pool = [Ex(f"math500-{i}", "en", f"Compute ${i + 2} + {i + 3}$.", str(2 * i + 5), "math") for i in range(4)]
    store = Store(tmp_path / "m500")
    report = translate_selection(pool, ["ru", "bn"], FakeTranslator(), store, n=None)
    assert report["complete"] == 4
    data = load("math500", path=tmp_path / "m500", langs=["en", "ru", "bn"])
    assert Counter(e.lang for e in data) == {"en": 4, "ru": 4, "bn": 4}
    assert {e.answer for e in data if e.id == "math500-1"} == {"7"}


def test_solutions_are_translated_and_checked(pool, tmp_path):
    """A problem's worked solution is translated with it and checked like the problem: SFT in a
    language then learns from a solution in that language; a solution whose numbers differ is not
    kept (the problem is, without a solution), and the English one is never passed off as it."""
    fake = FakeTranslator()
    fake.break_texts = {pool[1].meta["solution"]}  # this solution's translation loses a number
    store = Store(tmp_path / "s")
    report = translate(pool[:3], ["de"], fake, store, batch_size=8)
    assert report["accepted"] == 3
    assert report["solutions"] == {"translated": 3, "accepted": 2, "rejected": 1, "reasons": {"numbers differ": 1}}
    got = {e.id: e for e in store.accepted["de"].values()}
    first = got[pool[0].id].meta["solution"]
    assert first.startswith("Eine übersetzte Aufgabe") and re.findall(r"\d+", first) == re.findall(
        r"\d+", pool[0].meta["solution"])
    assert "solution" not in got[pool[1].id].meta and got[pool[1].id].meta["solution_rejected"] == "numbers differ"
