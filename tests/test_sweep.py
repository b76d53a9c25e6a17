"""Sweeps: members expanded and validated, --dry-run, --only, resume, and the gpus and slurm executors."""

import json
from pathlib import Path

import pytest
import yaml

from xling.runs import cli
from xling.common.config import build
from xling.common.errors import ConfigError
from xling.studies.overrides import flatten
from xling.studies.sweep import expand, product_name
from xling.tasks import sweep as T


def sweep_cfg(tmp_path, **data):
    base = {"task": "sweep", "out": str(tmp_path / "sw")}
    return build(T.Config, {**base, **data})


def test_members_expand_into_validated_stages(tmp_path):
    cfg = sweep_cfg(tmp_path, sweep={"recipe": "grpo-parallel", "set": {"model": {"name": "Qwen/Qwen2.5-1.5B-Instruct"}},
                                     "members": {"k0": {"data.k": 0}, "k3": {"data": {"k": 3}}}},
                    evaluate={"benchmarks": ["mgsm"], "data": {"mgsm": "/data/mgsm"}, "gen": {"max_tokens": 512}})
    plan = expand(cfg, tmp_path / "sw")
    assert [m.name for m in plan.members] == ["k0", "k3"]
    k3 = plan.member("k3")
    assert k3.train.cfg.data.k == 3 and k3.train_langs == ["en", "ru", "fr", "es"] and k3.x == 4
    assert k3.overrides == {"data.k": 3}
    assert k3.train.run_dir == (tmp_path / "sw" / "members" / "k3" / "train").resolve()
    ev = k3.eval.cfg
    assert ev.adapter == str(k3.train.run_dir / "final") and ev.model == "Qwen/Qwen2.5-1.5B-Instruct"
    assert ev.base is None and ev.name == "k3" and ev.train_langs == ["en", "ru", "fr", "es"]
    assert ev.data == {"mgsm": "/data/mgsm"} and ev.gen.max_tokens == 512
    assert ev.cache == str((tmp_path / "sw" / "completions").resolve())
    # one base evaluation for the whole sweep, needed by every member's evaluation
    assert list(plan.bases) == ["base"] and plan.bases["base"].cfg.model == "Qwen/Qwen2.5-1.5B-Instruct"
    assert "base:base" in k3.eval.needs and k3.train.id in k3.eval.needs
    assert [s.id for s in plan.stages()] == ["base:base", "k0/train", "k0/eval", "k3/train", "k3/eval"]
    assert k3.paradigm is None  # one paradigm for every member: nothing to group by


def test_product_names_from_and_several_bases(tmp_path):
    cfg = sweep_cfg(tmp_path, sweep={"recipe": "grpo-parallel", "product": {"data.k": [0, 1], "lora.r": [8, 16]},
                                     "name": "k{data.k}-r{lora.r}"})
    assert [m.name for m in expand(cfg, tmp_path / "sw").members] == ["k0-r8", "k0-r16", "k1-r8", "k1-r16"]
    assert product_name(None, {"data.langs": ["en", "ru"], "lora.r": 8}) == "langsen+ru-r8"
    with pytest.raises(ConfigError, match=r"names \{data.n\}, which is not a key of sweep.product"):
        product_name("n{data.n}", {"data.k": 1})
    cfg = sweep_cfg(tmp_path, sweep={"recipe": "sft", "members": {
        "sft-de": {"data.langs": ["de"]},
        "rl-de": {"recipe": "grpo-en", "data.langs": ["de"]},
        "sft-rl-de": {"recipe": "grpo-en", "from": "sft-de", "set": {"data.langs": ["de"]}},
        "rl-llama": {"recipe": "grpo-en", "data.langs": ["de"], "model.name": "meta-llama/Llama-3.2-3B-Instruct"}}})
    plan = expand(cfg, tmp_path / "sw")
    chain = plan.member("sft-rl-de")
    assert chain.train.cfg.model.adapter == str(plan.member("sft-de").train.run_dir / "final")
    assert chain.train.needs == ["sft-de/train"] and chain.paradigm == "SFT→RL"
    assert [plan.member(n).paradigm for n in ("sft-de", "rl-de")] == ["SFT", "RL"]
    assert set(plan.bases) == {"Qwen2.5-1.5B-Instruct", "Llama-3.2-3B-Instruct"}
    assert plan.member("rl-llama").base == "Llama-3.2-3B-Instruct"


@pytest.mark.parametrize("sweep,message", [
    ({"members": {"k0": {"data.kk": 0}}}, "member k0 (grpo-parallel): unknown recipe key 'data.kk'; did you mean 'data.k'"),
    ({"members": {"k0": {"data.k": 9}}}, "member k0 (grpo-parallel): recipe key 'data.k': k=9"),
    ({"members": {"a": {"from": "b"}, "b": {}}}, "member a: from 'b' must name a member listed before it"),
    ({"members": {"a b": {}}}, "member name 'a b' is not a usable folder name"),
    ({"members": {"k0": 3}}, "sweep.members.k0: give a mapping of overrides"),
    ({"members": {"k0": {"set": {"data.k": 0}, "data.n": 3}}}, "either under set: or directly"),
    ({"members": {"base": {}}}, "member 'base' has the name of a base model's evaluation"),
    ({"recipe": "paper-replay", "members": {"a": {}}}, "trains no model; a sweep over it needs evaluate_members=false"),
    ({"members": {"k0": {"tiny_set": {"data.kk": 0}}}},
     "member k0 (grpo-parallel): tiny_set names 'data.kk', which is not a recipe key; did you mean 'data.k'?"),
    ({"members": {"k0": {"tiny_set": 3}}}, "sweep.members.k0.tiny_set: give a mapping of overrides"),
])
def test_bad_members_are_named(tmp_path, sweep, message):
    cfg = sweep_cfg(tmp_path, sweep={"recipe": "grpo-parallel", **sweep})
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        expand(cfg, tmp_path / "sw")


def test_tiny_set_is_set_at_tiny_scale_only_after_the_tiny_sizes(tmp_path, capsys, monkeypatch):
    members = {"sft-de": {"recipe": "sft", "set": {"data.langs": ["de"]},
                          "tiny_set": {"data.n": 2, "train": {"max_steps": 80}}},
               "rft-de": {"recipe": "rft", "from": "sft-de", "set": {"data.langs": ["de"]},
                          "tiny_set": {"rft.max_tokens": 48}}}
    real = expand(sweep_cfg(tmp_path, sweep={"recipe": "grpo-en", "members": members}), tmp_path / "sw")
    sft_de = real.member("sft-de")
    assert sft_de.train.cfg.data.n == 1000 and sft_de.train.cfg.train.max_steps == -1 and sft_de.tiny_set == {}
    assert real.member("rft-de").train.cfg.rft.max_tokens == 4096
    tiny = expand(sweep_cfg(tmp_path, tiny=True, sweep={"recipe": "grpo-en", "members": members}), tmp_path / "sw")
    sft_de, rft_de = tiny.member("sft-de"), tiny.member("rft-de")
    assert (sft_de.train.cfg.data.n, sft_de.train.cfg.train.max_steps) == (2, 80)  # over tiny scale's 8 and 2
    assert sft_de.train.cfg.data.source == "synth" and sft_de.train.cfg.train.learning_rate == 1e-3  # tiny scale's
    assert (rft_de.train.cfg.rft.max_tokens, rft_de.train.cfg.rft.samples) == (48, 2)
    assert rft_de.train.cfg.model.adapter == str(sft_de.train.run_dir / "final")
    assert sft_de.tiny_set == {"data.n": 2, "train.max_steps": 80} and sft_de.overrides == {"data.langs": ["de"]}
    monkeypatch.chdir(tmp_path)
    assert cli.main(["sft-rft-rl", "tiny=true", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "#       at tiny scale also data.n=2 train.max_steps=80 " in out
    assert "#       at tiny scale also data.n=2 rft.samples=4 rft.max_tokens=48" in out
    assert cli.main(["sft-rft-rl", "--dry-run"]) == 0
    assert "at tiny scale" not in capsys.readouterr().out


def test_tiny_scale_caps_sizes_and_keeps_smaller_ones_given(tmp_path):
    members = {"k0": {"data.k": 0}, "k1": {"data.k": 1, "train.max_steps": 50}}
    cfg = sweep_cfg(tmp_path, tiny=True, sweep={"recipe": "grpo-parallel", "set": {"train.max_steps": 1, "data.n": 30},
                                               "members": members},
                    evaluate={"limit": 2, "gen": {"max_tokens": 4096}, "langs": ["en", "de"]})
    plan = expand(cfg, tmp_path / "sw")
    k0, k1 = plan.member("k0"), plan.member("k1")
    assert (k0.train.cfg.train.max_steps, k0.train.cfg.data.n) == (1, 8)  # 1 < tiny scale's 2 stays; 30 > 8 is capped
    assert k1.train.cfg.train.max_steps == 2
    assert (k0.eval.cfg.limit, k0.eval.cfg.gen.max_tokens, k0.eval.cfg.langs) == (2, 24, ["en", "de"])
    assert plan.bases["base"].cfg.limit == 2
    bigger = expand(sweep_cfg(tmp_path, tiny=True, sweep={"recipe": "grpo-parallel", "members": members},
                              evaluate={"limit": 100}), tmp_path / "sw2")
    assert bigger.member("k0").eval.cfg.limit == 4


def test_flatten_keeps_value_mappings_whole():
    from xling.tasks.evaluate import Config as Eval

    assert flatten({"data": {"mgsm": "x"}, "gen": {"n": {"aime24": 4}, "max_tokens": 5}}, Eval) == \
        {"data": {"mgsm": "x"}, "gen.n": {"aime24": 4}, "gen.max_tokens": 5}


def test_dry_run_lists_members_and_stays_a_recipe(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["parallel-scaling", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert yaml.safe_load(out)["task"] == "sweep"  # the plan comes as comments
    for k in range(8):
        assert f"#   k{k}: grpo-parallel data.k={k}" in out
    assert "#   to run: 17 of 17 stage(s)" in out and "X=8" in out
    assert not list(tmp_path.iterdir())
    assert cli.main(["parallel-scaling", "--dry-run", "--only=k0,k9"]) == 2
    assert "--only names 'k9', which is not a member" in capsys.readouterr().err


FAST = """\
task: sweep
description: paper-replay fitted from several X
sweep:
  recipe: paper-replay
  set: {plot: false}
  members: {f2: {fit_from: 2}, f3: {fit_from: 3}, f4: {fit_from: 4}}
evaluate_members: false
"""


def fast_sweep(tmp_path) -> Path:
    path = tmp_path / "fast.yaml"
    path.write_text(FAST)
    return path


def mtime(path: Path) -> int:
    return path.stat().st_mtime_ns


def test_only_then_the_rest_resumes_and_skips_what_is_done(run_cli, tmp_path, capsys):
    recipe = fast_sweep(tmp_path)
    assert run_cli(str(recipe), "out=sw", "--only=f3") == 0
    out = capsys.readouterr().out
    sw = tmp_path / "sw"
    assert "--only: f3 done; 2 more still to run (f2, f4)" in out
    assert not (sw / "metrics.json").exists()  # not finished: no finished marker
    f3 = sw / "members" / "f3" / "train" / "metrics.json"
    assert json.loads(f3.read_text())["fit"]["mti"]["x"] == [3, 4, 5, 6, 7, 8]
    before = mtime(f3)
    assert not (sw / "members" / "f2" / "train").exists()
    assert run_cli(str(recipe), "out=sw") == 0
    out = capsys.readouterr().out
    assert mtime(f3) == before  # finished stages are not run again
    assert "running 2 stage(s)" in out
    m = json.loads((sw / "metrics.json").read_text())
    assert set(m["members"]) == {"f2", "f3", "f4"}
    assert json.loads((sw / "sweep.json").read_text())["members"]["f4"]["overrides"] == {"fit_from": 4}
    assert run_cli(str(recipe), "out=sw") == 0
    assert "already holds this finished run" in capsys.readouterr().out


def test_a_failing_member_stops_the_sweep_with_one_line(run_cli, tmp_path, capsys):
    recipe = fast_sweep(tmp_path)
    recipe.write_text(FAST.replace("f4: {fit_from: 4}", "f4: {fit_from: 4, data: missing.json}"))
    assert run_cli(str(recipe), "out=sw") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "f4: training stopped (exit 2)" in err[-1] and "run the same command again" in err[-1]
    assert (tmp_path / "sw" / "members" / "f3" / "train" / "metrics.json").is_file()
    assert not (tmp_path / "sw" / "metrics.json").exists()


def test_gpus_executor_gives_each_member_its_own_gpu(run_cli, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    recipe = fast_sweep(tmp_path)
    assert run_cli(str(recipe), "out=sw", "sweep.executor=gpus") == 0
    out = capsys.readouterr().out
    seen = {}
    for name in ("f2", "f3", "f4"):
        env = json.loads((tmp_path / "sw" / "members" / name / "train" / "env.json").read_text())
        seen[name] = env["cuda_visible_devices"]
        assert (tmp_path / "sw" / "members" / name / "train.log").is_file()
    assert set(seen.values()) == {"0", "1"}  # one device each, both devices used
    assert "started on GPU 0" in out and "started on GPU 1" in out
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert run_cli(str(recipe), "out=sw2", "sweep.executor=gpus", "sweep.gpus_per_member=2", "sweep.gpus=[3]") == 2
    assert "needs 2 GPU(s) per member but sees 1 (3)" in capsys.readouterr().err


def test_slurm_executor_through_submitit_local_jobs(run_cli, tmp_path, capsys):
    pytest.importorskip("submitit")
    recipe = fast_sweep(tmp_path)
    assert run_cli(str(recipe), "out=sw", "sweep.executor=slurm", "sweep.slurm={cluster: local, timeout_min: 10}") == 0
    out = capsys.readouterr().out
    assert out.count("submitted as job") == 3
    for name in ("f2", "f3", "f4"):
        assert (tmp_path / "sw" / "members" / name / "train" / "metrics.json").is_file()
    assert (tmp_path / "sw" / "slurm").is_dir()
    assert run_cli(str(recipe), "out=sw3", "sweep.executor=slurm", "sweep.slurm={cluster: local, colour: red}") == 2
    assert "sweep.slurm:" in capsys.readouterr().err


def test_a_member_of_another_recipe_is_refused_before_anything_runs_and_forced_runs_again(run_cli, tmp_path,
                                                                                           capsys):
    import yaml

    recipe = fast_sweep(tmp_path)
    assert run_cli(str(recipe), "out=sw", "--only=f2") == 0
    capsys.readouterr()
    changed = FAST.replace("f2: {fit_from: 2}", "f2: {fit_from: 5}")
    recipe.write_text(changed)
    assert run_cli(str(recipe), "out=sw", "--only=f2") == 2
    err = capsys.readouterr().err
    assert "sw holds work of a different recipe" in err and "add --force" in err
    assert not (tmp_path / "sw" / "members" / "f3" / "train").exists()
    assert run_cli(str(recipe), "out=sw", "--force") == 0  # --force: the changed member runs again, as a stage would
    saved = yaml.safe_load((tmp_path / "sw" / "members" / "f2" / "train" / "recipe.yaml").read_text())
    assert saved["fit_from"] == 5
    assert (tmp_path / "sw" / "members" / "f3" / "train" / "metrics.json").is_file()


def test_dry_run_plans_every_stage_for_a_named_gpu(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["parallel-scaling", "--dry-run", "plan.gpu=h100-80gb"]) == 0
    out = capsys.readouterr().out
    assert "# plan (estimates, not measurements; for h100-80gb):" in out
    assert "#   k7/train: 62 steps" in out and "#   base:base: 0 steps, 3,250 rollouts" in out
    assert "#   total (17 stages, one after another): 277 steps" in out and "GPU-hours" in out
    assert out.count("(and likewise for each member)") == 1
    assert cli.main(["parallel-scaling", "--dry-run", "plan.gpu=h1000"]) == 2
    assert "plan.gpu" in capsys.readouterr().err
