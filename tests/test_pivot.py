"""PB-RLSVR: the pivot stage (English references, cached per problem), the semantic rewards, and the
checks that stop a run before training when a reward cannot work."""

from __future__ import annotations

import json
import math

import pytest

from xling.derived import pivot as P
from xling.data import Example
from xling.common.errors import XlingError
from xling.common.io import read_jsonl
from xling.train.pivot_rewards import DEFAULT_EMBEDDING_MODEL, EMBEDDING_LANGUAGES, brief
from xling.train.rewards import build_rewards, load_models, preflight
from xling.data.trainset import TrainData, build, to_records


@pytest.fixture(autouse=True)
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv("XLING_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


class ScriptedGenerator:
    """Stands in for `xling.generate`'s generators: scripted answers, the arguments checked as both
    real backends check them first (hf.py and vllm_backend.py `chat`:
    `check_chat(conversations, seeds, n, temperature, top_p, max_tokens)`)."""

    backend, adapter, model = "scripted", None, "scripted"

    def __init__(self, answer=lambda question: ("Adding: \\boxed{7}", "stop")):
        self.answer, self.calls, self.closed = answer, [], False

    def chat(self, conversations, *, n, temperature, top_p, max_tokens, seed, seeds=None):
        from xling.generate import Sample
        from xling.generate.core import check_chat

        check_chat(conversations, seeds, n, temperature, top_p, max_tokens)
        self.calls.append([c[-1]["content"] for c in conversations])
        out = []
        for conv in conversations:
            text, reason = self.answer(conv[-1]["content"])
            out.append([Sample(text, reason, 3, k) for k in range(n)])
        return out

    def close(self):
        self.closed = True


def problems(n=3, lang="en"):
    return [Example(f"p{i}", lang, f"What is {i} + 7?", str(i + 7)) for i in range(n)]


# -- the stage ------------------------------------------------------------------------------------

def test_reference_text_is_the_answer_after_the_reasoning():
    assert P.reference_text("<think>3 + 4</think>\n It is \\boxed{7}. ") == "It is \\boxed{7}."
    assert P.reference_text("plain answer \\boxed{7}") == "plain answer \\boxed{7}"
    assert P.reference_text("<think>still thinking") == ""
    assert P.pivot_messages(Example("a", "de", "Was ist 3 + 4?", "7"))[0]["content"].startswith(
        "Please always think in English.")


def test_references_are_written_graded_cached_and_resumed(tmp_path):
    store = P.ReferenceStore(tmp_path / "store")
    answers = {"What is 0 + 7?": ("<think>0 + 7</think>So \\boxed{7}", "stop"),
               "What is 1 + 7?": ("It is \\boxed{9}", "stop"),  # wrong: kept (no gold reaches the reward)
               "What is 2 + 7?": ("It is \\boxed", "length")}  # cut off: rejected
    gen = ScriptedGenerator(lambda q: answers[q])
    settings = P.Settings(chunk=2, seed=3)
    report = P.write_references(problems(), lambda: gen, store, settings, model="m")
    assert [len(c) for c in gen.calls] == [2, 1] and gen.closed
    assert report["written"] == 3 and report["accepted"] == 2 and report["reasons"] == {"truncated": 1}
    assert report["available"] == 2 and report["missing_reasons"] == {"truncated": 1}
    assert report["pivot_accuracy"] == pytest.approx(1 / 3) and report["graded"] == 3
    assert P.read_references(tmp_path / "store") == {"p0": "So \\boxed{7}", "p1": "It is \\boxed{9}"}
    # a re-run writes nothing; a rejected one is written again only when asked
    gen2 = ScriptedGenerator(lambda q: ("It is \\boxed{9}", "stop"))
    again = P.write_references(problems(), lambda: gen2, P.ReferenceStore(tmp_path / "store"), settings)
    assert gen2.calls == [] and again["written"] == 0 and again["cached"] == 3
    again = P.write_references(problems(), lambda: gen2, P.ReferenceStore(tmp_path / "store"), settings,
                               retry_rejected=True)
    assert gen2.calls == [["What is 2 + 7?"]] and again["available"] == 3
    # a torn last line (a crash mid-write) and a changed question are written again
    file = tmp_path / "store" / P.FILE
    file.write_text(file.read_text()[:-20], encoding="utf-8")
    changed = [problems()[0], problems()[1], Example("p2", "en", "What is 2 + 8?", "10")]
    gen3 = ScriptedGenerator(lambda q: ("\\boxed{10}", "stop"))
    store = P.ReferenceStore(tmp_path / "store")
    assert store.damaged == 1
    P.write_references(changed, lambda: gen3, store, settings)
    assert gen3.calls == [["What is 2 + 8?"]]
    assert P.read_references(file)["p2"] == "\\boxed{10}"


def test_keep_truncated_and_empty_answers(tmp_path):
    gen = ScriptedGenerator(lambda q: ("<think>never closed", "stop") if "0 +" in q else ("a long answer", "length"))
    report = P.write_references(problems(2), lambda: gen, P.ReferenceStore(tmp_path), P.Settings(keep_truncated=True))
    assert report["reasons"] == {"no answer after the reasoning": 1} and report["truncated"] == 1
    assert P.read_references(tmp_path) == {"p1": "a long answer"}
    with pytest.raises(XlingError, match="data.references=.*nowhere: no references.jsonl there; write the references "
                                         "with 'python run.py pivot'"):
        P.read_references(tmp_path / "nowhere")


def test_the_pivot_answers_the_english_version_of_each_training_problem():
    spec = TrainData(source="synth", n=3, langs=["de", "zh"])
    got, asked = P.pivot_problems(spec)
    rows, _ = build(spec)
    assert sorted(p.id for p in got) == sorted({r.id for r in rows}) and asked == {"en": 3}
    assert all(p.lang == "en" and p.question.isascii() for p in got)


def test_the_training_set_takes_the_references_and_leaves_out_problems_without_one(tmp_path):
    spec = TrainData(source="synth", n=4, langs=["en", "de"])
    rows, _ = build(spec)
    ids = sorted({r.id for r in rows})
    lines = [{"id": ids[0], "reference": "ref zero"}, {"id": ids[1], "reference": "ref one"},
             {"id": ids[2], "reference": None, "reason": "truncated"}]
    (tmp_path / P.FILE).write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    rows, summary = build(TrainData(source="synth", n=4, langs=["en", "de"], references=str(tmp_path)))
    assert sorted({r.id for r in rows}) == ids[:2] and summary["no_reference"] == {"en": 2, "de": 2}
    assert summary["shortfall"] == {"en": 2, "de": 2}
    records = to_records(rows)
    assert {r["id"]: r["reference"] for r in records} == {ids[0]: "ref zero", ids[1]: "ref one"}
    (tmp_path / P.FILE).write_text(json.dumps({"id": "elsewhere", "reference": "x"}) + "\n", encoding="utf-8")
    with pytest.raises(XlingError, match="no problem for en, de has a reference answer in .*; write them with: "
                                         "python run.py pivot data.source=synth data.langs=en,de data.n=4"):
        build(TrainData(source="synth", n=4, langs=["en", "de"], references=str(tmp_path)))


# -- the semantic rewards -------------------------------------------------------------------------

def test_the_default_embedding_model_covers_every_language():
    from xling.data.languages import CODES

    assert set(EMBEDDING_LANGUAGES[DEFAULT_EMBEDDING_MODEL]) == set(CODES)
    assert {"bn", "sw", "te"}.isdisjoint(
        EMBEDDING_LANGUAGES["sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2"])


def test_an_embedding_model_that_lacks_a_training_language_is_refused():
    with pytest.raises(XlingError, match="rewards.embedding_model=sentence-transformers/all-MiniLM-L6-v2 was not "
                                         "trained on de, th \\(it covers en\\).*use sentence-transformers/LaBSE"):
        load_models("pivot", ["en", "de", "th"], embedding_model="sentence-transformers/all-MiniLM-L6-v2",
                    workers=0)


def test_pivot_reward_with_the_tiny_embedder():
    (pivot,), _ = build_rewards("pivot", embedding_model="tiny", workers=0)
    ref = "The farmer picks 240 apples every day."
    out = pivot(None, ["<think>x</think>The farmer picks 240 apples every day.", "zz qq", "anything"],
                reference=[ref, ref, None])
    assert out[0] == 1.0 and 0.0 <= out[1] < 1.0 and out[2] is None
    with pytest.raises(XlingError, match="reward 'pivot' gave no value for any of the 2 completions of a batch "
                                         "\\(no completion of the batch has an English reference answer\\); stopped"):
        pivot(None, ["a", "b"], reference=[None, " "])


def test_translate_then_compare_translates_only_other_languages():
    calls = []

    def translator(texts, lang, source="en"):
        calls.append((list(texts), lang, source))
        return ["The farmer picks 240 apples every day." if "Bauer" in t else "something else" for t in texts]

    (reward,), _ = build_rewards("pivot-translate", embedding_model="tiny", translator_fn=translator, workers=0)
    ref = "The farmer picks 240 apples every day."
    out = reward(None, ["Der Bauer pflückt 240 Äpfel.", "The farmer picks 240 apples every day.", "Der Hund."],
                 reference=[ref] * 3, lang=["de", "en", "de"])
    assert calls == [(["Der Bauer pflückt 240 Äpfel.", "Der Hund."], "en", "de")]
    assert out[0] == 1.0 and out[1] == 1.0 and out[2] < 1.0
    (reward,), _ = build_rewards("pivot-translate", embedding_model="tiny", workers=0)
    with pytest.raises(XlingError, match="needs a translation model: give rewards.translator=MODEL"):
        reward(None, ["x"], reference=["y"], lang=["de"])


def test_a_whole_batch_of_unparseable_gold_answers_stops_the_accuracy_reward():
    (acc,), _ = build_rewards("accuracy", workers=0)
    with pytest.raises(XlingError, match="reward 'accuracy' gave no value for any of the 2 completions of a batch "
                                         "\\(every gold answer of the batch is unparseable\\)"):
        acc(None, ["\\boxed{1}", "\\boxed{2}"], answer=["", ""], lang=["en", "en"], kind=["math", "math"])


def test_preflight_names_the_missing_column_and_the_stage_that_makes_it():
    rows = [{"lang": "en", "answer": "1", "reference": None}, {"lang": "de", "answer": "2", "reference": "r"}]
    with pytest.raises(XlingError, match="^`reference`: 1 of 2 training rows have none, and reward 'pivot' reads it; "
                                         "run the pivot stage$"):
        preflight("pivot", rows, {"reference": "run the pivot stage"}, embedding_model="tiny", workers=0)
    with pytest.raises(XlingError, match="^`answer`: the training data has none, and reward 'accuracy' reads it"):
        preflight("paper", [{"lang": "en", "answer": None}], workers=0)
    preflight("paper", rows, workers=0)  # the paper's rewards do not read references


def test_brief_error_messages_never_cut_a_url():
    e = OSError("We couldn't connect to 'https://huggingface.co' to load the files, and couldn't find them in the "
                "cached files. Check your internet connection or see how to run the library in offline mode at "
                "'https://huggingface.co/docs/transformers/installation#offline-mode'.\nsecond line")
    text = brief(e, limit=200)
    assert text.startswith("OSError: We couldn't connect") and text.endswith(" ...") and "second" not in text
    assert "'https://huggingface.co/docs" not in text  # the URL does not fit whole, so it is left out whole
    assert brief(ValueError("short")) == "ValueError: short"


def test_pivot_translate_needs_a_translator_in_the_recipe():
    from xling.tasks import train_grpo
    from helpers import with_overrides
    from xling.common.errors import ConfigError

    with pytest.raises(ConfigError, match="rewards.translator"):
        with_overrides(train_grpo.Config, {"task": "train-grpo"}, {"rewards.set": "pivot-translate"})


# -- the recipes, end to end on CPU ---------------------------------------------------------------

TINY_GRPO = ["data.source=synth", "data.n=4", "data.langs=en,de", "train.backend=peft",
             "train.max_steps=1", "train.questions_per_step=2", "train.batch_size=4",
             "train.gradient_checkpointing=false", "grpo.num_generations=4", "grpo.max_completion_length=12",
             "grpo.max_prompt_length=512", "rewards.workers=0", "rewards.min_chars=1", "lora.r=8", "lora.alpha=16",
             "lora.targets=q_proj,v_proj"]
TINY_PIVOT = ["pivot.temperature=1.0", "pivot.max_tokens=8", "pivot.keep_truncated=true"]


@pytest.fixture
def tiny(tiny_model):
    """The session's tiny model as the policy and as the pivot (built once, not per run)."""
    return [f"model.name={tiny_model}", f"pivot.model={tiny_model}"]


def test_pivot_task_writes_references_once(run_cli, tmp_path, capsys, tiny):
    data = ["data.source=synth", "data.n=3", "data.langs=de", tiny[1]]
    assert run_cli("pivot", *data, *TINY_PIVOT, "out=first") == 0
    metrics = json.loads((tmp_path / "first" / "metrics.json").read_text())
    assert metrics["problems"] == 3 and metrics["written"] == 3 and metrics["available"] == 3
    assert metrics["asked_in"] == {"en": 3}
    refs = P.read_references(metrics["store"])
    assert len(refs) == 3 and all(r.strip() for r in refs.values())
    assert {r["id"] for r in read_jsonl(tmp_path / "first" / P.FILE)} == set(refs)
    out = capsys.readouterr().out
    assert f"use them with: data.references={metrics['store']}" in out.replace("\n", "")
    assert run_cli("pivot", *data, *TINY_PIVOT, "out=second") == 0
    again = json.loads((tmp_path / "second" / "metrics.json").read_text())
    assert again["written"] == 0 and again["cached"] == 3 and again["store"] == metrics["store"]


def test_pivot_task_counts_what_every_session_of_a_killed_run_wrote(run_cli, tmp_path, monkeypatch, tiny):
    """metrics.json of a pivot run killed after its first chunk and run again holds the counts of an
    uninterrupted run (written, accepted, rejected, reasons); a forced re-run writes and counts nothing."""
    import zlib

    from xling.tasks import pivot as task

    def answer(question):  # about half the answers cut off (rejected), the same for every run
        return ("It is \\boxed", "length") if zlib.crc32(question.encode()) % 2 else ("It is \\boxed{7}", "stop")

    class Killed(ScriptedGenerator):
        def chat(self, conversations, **kw):
            if self.calls:
                raise RuntimeError("killed")
            return super().chat(conversations, **kw)

    data = ["pivot", "data.source=synth", "data.n=5", "data.langs=de", tiny[1], "pivot.chunk=2"]
    monkeypatch.setattr(task, "make_generator", lambda p, backend, seed: lambda: ScriptedGenerator(answer))
    assert run_cli(*data, f"pivot.store={tmp_path / 'sa'}", "out=a") == 0
    expected = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert expected["written"] == 5 and expected["cached"] == 0 and expected["rejected"] == sum(
        expected["reasons"].values()) > 0 and expected["accepted"] == 5 - expected["rejected"]
    monkeypatch.setattr(task, "make_generator", lambda p, backend, seed: lambda: Killed(answer))
    with pytest.raises(RuntimeError):
        run_cli(*data, f"pivot.store={tmp_path / 'sb'}", "out=b")
    assert len(read_jsonl(tmp_path / "sb" / P.FILE)) == 2
    monkeypatch.setattr(task, "make_generator", lambda p, backend, seed: lambda: ScriptedGenerator(answer))
    assert run_cli(*data, f"pivot.store={tmp_path / 'sb'}", "out=b") == 0
    got = json.loads((tmp_path / "b" / "metrics.json").read_text())
    for key in ("problems", "written", "cached", "accepted", "rejected", "reasons", "available", "missing_reasons"):
        assert got[key] == expected[key], key
    assert run_cli(*data, f"pivot.store={tmp_path / 'sb'}", "out=b", "--force") == 0
    again = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert (again["written"], again["cached"], again["rejected"]) == (0, 5, 0)


def test_a_pivot_model_that_never_answers_is_a_clear_error(run_cli, tmp_path, capsys, tiny):
    # greedy, the tiny random model writes only blank lines: no usable reference
    rc = run_cli("pivot", "data.source=synth", "data.n=2", "data.langs=en", tiny[1], "pivot.max_tokens=6",
                 "pivot.keep_truncated=true", "out=mute")
    err = " ".join(capsys.readouterr().err.split())
    assert rc == 2 and "Traceback" not in err
    assert "wrote no usable reference answer for any of the 2 problems ({'empty': 2}; its answers are in" in err
    assert [r["reason"] for r in read_jsonl(tmp_path / "mute" / P.FILE)] == ["empty", "empty"]
    assert not (tmp_path / "mute" / "metrics.json").exists()


@pytest.mark.slow
def test_pivot_reward_trains_with_a_semantic_reward_on_cpu(run_cli, tmp_path, tiny):
    rc = run_cli("pivot-reward", *tiny, *TINY_GRPO, *TINY_PIVOT, "rewards.embedding_model=tiny", "out=pr")
    assert rc == 0
    run = tmp_path / "pr"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["reward_weights"] == {"pivot_reward": 0.8, "format_reward": 0.1, "language_reward": 0.1}
    assert metrics["pivot"]["available"] == 4 and metrics["steps"] == 1
    rows = read_jsonl(run / "trainset.jsonl")
    assert len(rows) == 8 and all(r["reference"] for r in rows)
    step = next(r for r in read_jsonl(run / "train_log.jsonl") if "rewards/pivot_reward/mean" in r)
    assert math.isfinite(step["rewards/pivot_reward/mean"]) and 0.0 <= step["rewards/pivot_reward/mean"] <= 1.0
    assert (run / "final" / "adapter_config.json").is_file()


def test_training_without_references_is_refused_before_the_model_loads(run_cli, tmp_path, capsys, tiny):
    rc = run_cli("grpo-en", tiny[0], *TINY_GRPO, "rewards.set=pivot", "rewards.embedding_model=tiny", "out=noref")
    err = capsys.readouterr().err
    assert rc == 2
    assert "`reference`: the training data has none, and reward 'pivot' reads it; write them with: python run.py " \
           "pivot data.source=synth data.langs=en,de data.n=4" in " ".join(err.split())
    assert "Traceback" not in err
    assert not (tmp_path / "noref" / "checkpoints").exists() and not (tmp_path / "noref" / "metrics.json").exists()


def test_an_unloadable_embedding_model_is_refused_before_anything_runs(run_cli, tmp_path, capsys, tiny):
    broken = tmp_path / "broken-embedder"
    broken.mkdir()
    (broken / "modules.json").write_text("[]")
    (broken / "config.json").write_text("{}")
    rc = run_cli("pivot-reward", *tiny, *TINY_GRPO, *TINY_PIVOT, f"rewards.embedding_model={broken}", "out=bad")
    err = " ".join(capsys.readouterr().err.split())
    assert rc == 2 and "Traceback" not in err
    assert f"cannot load the sentence-embedding model '{broken}'" in err
    assert "give rewards.embedding_model=PATH, a local sentence-transformers folder" in err
    run = tmp_path / "bad"
    assert not (run / P.FILE).exists() and not (run / "trainset.jsonl").exists()  # the pivot stage never ran


def test_pivot_reward_recipe_refuses_gold_labels_and_non_semantic_rewards(run_cli, capsys):
    assert run_cli("pivot-reward", "rewards.set=paper", "--dry-run") == 2
    assert "rewards.set" in capsys.readouterr().err
    assert run_cli("pivot-reward", "rewards.weights={pivot: 0.9, accuracy: 0.1}", "--dry-run") == 2
    assert "reads gold labels" in " ".join(capsys.readouterr().err.split())
    assert run_cli("pivot-reward", "rewards.weights={pivot: 0.9, accuracy: 0.0}", "--dry-run") == 0
