"""Recipe `evaluate` end to end on CPU: tiny models, a slice of the real MGSM files, the hf backend;
resuming after a kill; tables, plots, report; and bad input refused before anything is generated."""

import json

import pytest

import xling.generate
from xling.runs import cli
from xling.report.table import AccuracyTable

LOAD_GENERATOR = xling.generate.load_generator


class Spy:
    """Wraps xling.generate.load_generator: counts model loads and chat calls; can 'kill' the run."""

    def __init__(self, monkeypatch, kill_after=None):
        import xling.generate as G

        self.loads, self.calls, self.items, self.kill_after = [], 0, 0, kill_after
        real = LOAD_GENERATOR
        spy = self

        def load(backend, model, **kw):
            spy.loads.append((backend, model, kw.get("adapter")))
            gen = real(backend, model, **kw)
            chat = gen.chat

            def counted(convs, **k):
                if spy.kill_after is not None and spy.calls >= spy.kill_after:
                    raise KeyboardInterrupt
                spy.calls += 1
                spy.items += len(convs)
                return chat(convs, **k)

            gen.chat = counted
            return gen

        monkeypatch.setattr(G, "load_generator", load)


def run(capsys, *args):
    rc = cli.main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def common(tiny_model, tiny_base_model, shared_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return [f"model={tiny_model}", f"base={tiny_base_model}", "name=rl", "base_name=init", "template_from=chatml",
            "benchmarks=mgsm", f"data.mgsm={shared_data / 'mgsm'}", "langs=en,de,zh", "limit=3", "gen.backend=hf",
            "gen.max_tokens=6", "gen.batch_size=2", "score.workers=0", "n_boot=50"]


def test_evaluate_end_to_end(capsys, common, tmp_path, monkeypatch):
    spy = Spy(monkeypatch)
    rc, out, err = run(capsys, "evaluate", *common, "out=o")
    assert rc == 0, err
    o = tmp_path / "o"
    assert [load[0] for load in spy.loads] == ["hf", "hf"] and spy.items == 18  # 2 models x 3 langs x 3 problems
    table = AccuracyTable.read(o / "accuracy.csv")
    assert table.models() == ["rl", "init"] and table.langs("mgsm") == ["en", "de", "zh"]
    assert all(r.n == 3 and 0 <= r.accuracy <= 100 for r in table.rows)
    items = [json.loads(line) for line in (o / "items.jsonl").read_text().splitlines()]
    assert len(items) == 18
    need = {"model", "benchmark", "lang", "id", "score", "correct", "extracted", "detected_lang", "on_target", "truncated"}
    assert all(need <= set(r) for r in items)
    assert {r["id"] for r in items} == {"mgsm-0", "mgsm-1", "mgsm-2"}
    assert sum(r["truncated"] for r in items) >= 1  # 6 tokens are rarely enough for a random model
    m = json.loads((o / "metrics.json").read_text())
    assert set(m["accuracy"]) == {"rl", "init"} and set(m["accuracy"]["rl"]["mgsm"]) == {"en", "de", "zh"}
    assert "off_target" in m and "accuracy_ci" in m and "off_target_ci" in m and "truncated" in m
    cmp = m["comparisons"]["rl"]
    assert cmp["base"] == "init" and cmp["train_langs"] == ["en"]
    assert set(cmp["mti"]) >= {"mgsm", "avg", "id", "ood"} and "ci" in cmp and "mti" in m
    assert (o / "off_target.csv").read_text().startswith("model,benchmark,lang,off_target,judged,n,truncated")
    assert (o / "figures" / "accuracy.png").stat().st_size > 10_000
    assert (o / "figures" / "ti_mgsm.png").is_file()
    report = (o / "report.md").read_text()
    assert "![accuracy per language](figures/accuracy.png)" in report and "Off-target rate" in report
    assert "accuracy %" in out and "MTI" in out and "generating rl" in out
    # the outputs feed `transfer`
    rc, out, err = run(capsys, "transfer", f"table={o / 'accuracy.csv'}", "base=init", "trained=rl",
                       f"items={o / 'items.jsonl'}", "train_langs=en", "n_boot=20", "out=t")
    assert rc == 0, err


def test_killed_run_resumes_without_regenerating(capsys, common, tmp_path, monkeypatch):
    Spy(monkeypatch, kill_after=2)  # two calls of 2 conversations, then "Ctrl-C"
    rc, _, err = run(capsys, "evaluate", *common, "out=o")
    assert rc == 130 and "run the same command to resume" in err
    shards = sorted((tmp_path / "o" / "completions").rglob("*.jsonl"))
    assert sum(len(p.read_text().splitlines()) for p in shards) == 4
    assert not (tmp_path / "o" / "metrics.json").exists()
    spy2 = Spy(monkeypatch)
    rc, out, err = run(capsys, "evaluate", *common, "out=o")
    assert rc == 0, err
    assert spy2.items == 18 - 4  # only what was missing
    assert "already finished (skipped)" in out
    # a third run with --force regenerates nothing and loads no model
    spy3 = Spy(monkeypatch)
    rc, out, err = run(capsys, "evaluate", *common, "out=o", "--force")
    assert rc == 0, err
    assert spy3.loads == [] and spy3.calls == 0
    assert len((tmp_path / "o" / "items.jsonl").read_text().splitlines()) == 18


def test_vllm_path_through_the_task(capsys, common, tmp_path, monkeypatch):
    """The whole task on the vllm backend (fake vllm module): adapter rank rounded, prefix continued."""
    from test_generate import install_fake_vllm, write_adapter

    fake = install_fake_vllm(monkeypatch)
    adapter = write_adapter(tmp_path / "ad", r=12)
    args = [a for a in common if not a.startswith("gen.backend")] + ["gen.backend=vllm", f"adapter={adapter}"]
    rc, out, err = run(capsys, "evaluate", *args, "out=v")
    assert rc == 0, err
    assert "vLLM max_lora_rank 16" in out
    kws = [kw for _, kw in fake.llm_calls]
    assert kws[0]["max_lora_rank"] == 16 and kws[0]["enable_lora"] is True and "enable_lora" not in kws[1]
    assert all(c["continue_final_message"] and not c["add_generation_prompt"] for c in fake.chat_calls)
    assert len(fake.llm_calls) == 2  # one engine per model for every language
    m = json.loads((tmp_path / "v" / "metrics.json").read_text())
    assert m["accuracy"]["rl"]["mgsm"]["en"] == 0  # "\boxed{5}" is never right on these problems
    assert m["backend"] == "vllm"


@pytest.mark.parametrize("extra, message", [
    (["benchmarks=mgsmm"], "unknown benchmark 'mgsmm' (did you mean 'mgsm'?)"),
    (["benchmarks=msvamp", "langs=en,te"], "benchmark msvamp has no te"),
    (["langs=en,de,xx"], "unknown language 'xx'"),
    (["base=/nonexistent/model"], "base model 'init': /nonexistent/model does not exist"),
    (["train_langs=ru"], "training language(s) ru of 'rl' are not evaluated on mgsm"),
    (["template_from=null"], "has no chat template"),
    (["scaling.k9=3"], "scaling names model 'k9', which is not evaluated here"),
    (["gen.max_lora_rank=24"], "vLLM accepts only 1, 8, 16"),
    (["gen.dtype=bogus"], "gen.dtype': 'bogus' is not a dtype generation can load; choose one of: auto, bfloat16, "
                          "float16, float32"),    (["base=null"], "base_name': names the base model, but no base= is given"),
    (["score.timeout=nan"], "recipe key 'score.timeout': must be a number of seconds above 0 and at most 3600, not nan"),
    (["score.timeout=inf"], "recipe key 'score.timeout': must be a number of seconds above 0 and at most 3600, not inf"),
    (["score.timeout=1e9"], "recipe key 'score.timeout': must be a number of seconds above 0 and at most 3600"),
])
def test_bad_input_fails_before_generation(capsys, common, tmp_path, monkeypatch, extra, message):
    spy = Spy(monkeypatch)
    keys = {e.split("=")[0] for e in extra}
    args = [a for a in common if a.split("=")[0] not in keys] + extra
    rc, out, err = run(capsys, "evaluate", *args, "out=bad")
    assert rc == 2
    assert message in err and "Traceback" not in err
    assert spy.loads == [] and not (tmp_path / "bad" / "completions").exists()


def test_adapter_rank_vllm_cannot_serve(capsys, common, tmp_path, monkeypatch):
    from test_generate import install_fake_vllm, write_adapter

    install_fake_vllm(monkeypatch)
    spy = Spy(monkeypatch)
    adapter = write_adapter(tmp_path / "big", r=1024)
    args = [a for a in common if not a.startswith("gen.backend")] + ["gen.backend=vllm", f"adapter={adapter}"]
    rc, _, err = run(capsys, "evaluate", *args, "out=bad")
    assert rc == 2 and "LoRA rank 1024; vLLM serves ranks up to 512" in err
    rc, _, err = run(capsys, "evaluate", *args[:-1], f"adapter={write_adapter(tmp_path / 'r64', r=64)}",
                     "gen.max_lora_rank=32", "out=bad2")
    assert rc == 2 and "rank 64, above max_lora_rank=32" in err and "fail at the first request" in err
    assert spy.loads == [] and not (tmp_path / "bad" / "completions").exists()


# ----------------------------------------------------------------------- caches that must not go stale


@pytest.fixture
def synth(tiny_model, tmp_path, monkeypatch):
    """A small evaluation on the built-in synth benchmark (no data files needed)."""
    monkeypatch.chdir(tmp_path)
    return [f"model={tiny_model}", "template_from=chatml", "benchmarks=synth", "langs=en,de", "limit=3",
            "gen.backend=hf", "gen.max_tokens=6", "gen.batch_size=4", "score.workers=0", "n_boot=20", "plots=false"]


def items_of(folder):
    return [json.loads(line) for line in (folder / "items.jsonl").read_text().splitlines()]


def test_scored_cache_follows_the_number_of_samples(capsys, synth, tmp_path, monkeypatch):
    """gen.n.synth=3, then 1, then 3 again: the items always have the n the run asked for (the scored
    cache was reused whenever the row count matched), and completions are reused throughout."""
    spy = Spy(monkeypatch)
    rc, _, err = run(capsys, "evaluate", *synth, "gen.n.synth=3", "out=o")
    assert rc == 0, err
    assert spy.items == 6 and {r["n"] for r in items_of(tmp_path / "o")} == {3}
    spy = Spy(monkeypatch)
    rc, _, err = run(capsys, "evaluate", *synth, "gen.n.synth=1", "out=o", "--force")
    assert rc == 0, err
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert m["samples"] == {"synth": 1} and {r["n"] for r in items_of(tmp_path / "o")} == {1}
    assert spy.loads == []  # sample 0 of the n=3 completions is the n=1 completion
    rc, _, err = run(capsys, "evaluate", *synth, "gen.n.synth=3", "out=o", "--force")
    assert rc == 0, err
    assert {r["n"] for r in items_of(tmp_path / "o")} == {3} and spy.loads == []
    assert all("scored_from" not in r for r in items_of(tmp_path / "o"))


def test_completion_cache_follows_adapter_content_and_backend(capsys, synth, tiny_model, tmp_path, monkeypatch):
    """Retraining an adapter into the same folder, or switching the backend, never reuses completions."""
    import os

    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from test_generate import install_fake_vllm

    def train_adapter(seed):
        import torch

        torch.manual_seed(seed)
        net = AutoModelForCausalLM.from_pretrained(tiny_model)
        lora = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
        get_peft_model(net, lora).save_pretrained(tmp_path / "adapter")
        weights = tmp_path / "adapter" / "adapter_model.safetensors"
        st = weights.stat()  # make sure the new save is seen even on a coarse-mtime file system
        os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + seed * 1_000_000_000))

    train_adapter(1)
    args = [*synth, f"adapter={tmp_path / 'adapter'}", "name=rl"]
    spy = Spy(monkeypatch)
    rc, _, err = run(capsys, "evaluate", *args, "out=o")
    assert rc == 0, err
    assert spy.items == 6
    recs = [json.loads(line) for p in (tmp_path / "o" / "completions").rglob("*.jsonl") for line in p.open()]
    assert {r["backend"] for r in recs} == {"hf"} and all(r["prompt"].startswith("<|im_start|>") for r in recs)
    spy = Spy(monkeypatch)
    rc, _, err = run(capsys, "evaluate", *args, "out=o", "--force")
    assert rc == 0, err
    assert spy.loads == []  # same adapter: everything cached
    train_adapter(2)  # retrained into the same folder
    spy = Spy(monkeypatch)
    rc, _, err = run(capsys, "evaluate", *args, "out=o", "--force")
    assert rc == 0, err
    assert spy.items == 6
    fake = install_fake_vllm(monkeypatch)
    rc, _, err = run(capsys, "evaluate", *[a for a in args if a != "gen.backend=hf"], "gen.backend=vllm", "out=o",
                     "--force")
    assert rc == 0, err
    assert sum(len(c["messages"]) for c in fake.chat_calls) == 6  # hf completions are not served as vllm's
    assert len(list((tmp_path / "o" / "completions").iterdir())) == 3
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert m["backend"] == "vllm" and m["accuracy"]["rl"]["synth"]["en"] == 0  # the fake's "\boxed{5}" answers


def test_a_changed_template_regenerates_the_items(capsys, synth, tmp_path, monkeypatch):
    """A cached completion whose prompt is not the one rendered now is generated again."""
    spy = Spy(monkeypatch)
    rc, _, err = run(capsys, "evaluate", *synth, "out=o")
    assert rc == 0, err
    shard = next((tmp_path / "o" / "completions").rglob("en.jsonl"))
    lines = shard.read_text().splitlines()
    rec = json.loads(lines[0])
    rec["prompt"] += " (rendered by an older template)"
    shard.write_text("\n".join([json.dumps(rec)] + lines[1:]) + "\n")
    spy = Spy(monkeypatch)
    rc, out, err = run(capsys, "evaluate", *synth, "out=o", "--force")
    assert rc == 0, err
    assert spy.items == 1 and "1 of them again" in out


def test_local_paths_are_checked_before_data_is_loaded(capsys, synth, tmp_path, monkeypatch):
    import xling.evaluation.runner as E

    def no_data(*a, **k):
        raise AssertionError("benchmark data loaded before the model paths were checked")

    monkeypatch.setattr(E, "load_benchmarks", no_data)
    rc, _, err = run(capsys, "evaluate", *[a for a in synth if not a.startswith("model=")], "model=./no-model",
                     "out=bad")
    assert rc == 2 and "./no-model does not exist" in err
    rc, _, err = run(capsys, "evaluate", *synth, "adapter=./no-adapter", "out=bad")
    assert rc == 2 and "adapter ./no-adapter does not exist" in err


def test_explicit_vllm_fails_up_front_without_vllm_or_cuda(capsys, synth, tmp_path, monkeypatch):
    import xling.generate.core as core

    from test_generate import install_fake_vllm

    args = [a for a in synth if a != "gen.backend=hf"] + ["gen.backend=vllm", "out=bad"]
    install_fake_vllm(monkeypatch, cuda=False)
    spy = Spy(monkeypatch)
    rc, _, err = run(capsys, "evaluate", *args)
    assert rc == 2 and "gen.backend=vllm: the CUDA build of vllm is installed but no CUDA GPU is visible here" in err
    assert len(err.strip().splitlines()) == 1
    monkeypatch.setattr(core, "vllm_build", lambda: None)
    rc, _, err = run(capsys, "evaluate", *args)
    assert rc == 2 and "gen.backend=vllm needs vllm, which is not installed here" in err and "use gen.backend=hf" in err
    assert spy.loads == [] and not (tmp_path / "bad" / "completions").exists()
