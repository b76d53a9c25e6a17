"""The RL-vs-SFT and PB-RLSVR studies end to end at tiny scale: each sweep recipe, as `python run.py RECIPE tiny=true`.

Tiny random model, synth problems, two optimizer steps a member (the SFT rung of the SFT → RFT → RL
ladder: long enough to learn its two problems by heart, so that RFT finds correct answers to keep),
evaluated in en, zh and de. A random model's numbers mean nothing, so what is checked is the study's
structure: every member trained as its recipe says (paradigm, data, rewards, starting adapter),
evaluated, and analysed into metrics.json (Gen per member, contrasts with intervals, paradigm
groups, on-target rates), accuracy.csv, report.md and figures/.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

LANGS = ["en", "zh", "de"]
FIGURES = ["accuracy.png", "off_target.png", "ti_synth.png"]


@dataclass
class Study:
    members: dict[str, list[str]]  # member -> its training languages
    paradigms: dict[str, str] | None  # member -> paradigm (None: one paradigm for all, nothing to group by)
    contrasts: dict[str, tuple[str, str]]  # label -> (a, b)
    parents: dict[str, str] = field(default_factory=dict)  # member -> the member whose final model it starts from


STUDIES = {
    "rl-vs-sft": Study(
        members={f"{p}-{lang}": [lang] for p in ("sft", "rl") for lang in LANGS},
        paradigms={f"{p}-{lang}": p.upper() for p in ("sft", "rl") for lang in LANGS},
        contrasts={f"RL − SFT ({lang})": (f"rl-{lang}", f"sft-{lang}") for lang in LANGS}),
    "consistency-reward": Study(
        members={"rl-de": ["de"], "rl-de-prompt": ["de"], "rl-de-prompt-reward": ["de"]},
        paradigms=None,
        contrasts={"prompt − plain": ("rl-de-prompt", "rl-de"),
                   "prompt+reward − prompt": ("rl-de-prompt-reward", "rl-de-prompt")}),
    "sft-rft-rl": Study(
        members={"sft-de": ["de"], "rft-de": ["de"], "rl-de": ["de"]},
        paradigms={"sft-de": "SFT", "rft-de": "SFT→RFT", "rl-de": "SFT→RFT→RL"},
        contrasts={"RFT − SFT": ("rft-de", "sft-de"), "RL − RFT": ("rl-de", "rft-de")},
        parents={"rft-de": "sft-de", "rl-de": "rft-de"}),
    "cold-start": Study(
        members={"sft-de": ["de"], "sft-rl-de": ["de"], "rl-de": ["de"]},
        paradigms={"sft-de": "SFT", "sft-rl-de": "SFT→RL", "rl-de": "RL"},
        contrasts={"cold start − RL": ("sft-rl-de", "rl-de")},
        parents={"sft-rl-de": "sft-de"}),
    "mixed-language": Study(
        members={"rl-mix": ["en", "zh", "de"], "rl-de": ["de"]},
        paradigms=None,
        contrasts={"mix − de": ("rl-mix", "rl-de")}),
    "pivot-vs-gold": Study(
        members={"gold": ["en", "zh", "de"], "pivot": ["en", "zh", "de"]},
        paradigms={"gold": "RL", "pivot": "RL-pivot"},
        contrasts={"pivot − gold": ("pivot", "gold")}),
}


def read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def interval(ci) -> bool:
    return isinstance(ci, list) and len(ci) == 2 and ci[0] <= ci[1]


def train_dir(sw: Path, member: str) -> Path:
    return sw / "members" / member / "train"


def system_prompt(sw: Path, member: str) -> str:
    return read_jsonl(train_dir(sw, member) / "trainset.jsonl")[0]["prompt"][0]["content"]


# ------------------------------------------------------------------ what each study is about, beyond the common checks


def check_rl_vs_sft(sw: Path) -> None:
    """The same problems for every member, each in its one training language; only the paradigm differs."""
    problems = None
    for member, study_langs in STUDIES["rl-vs-sft"].members.items():
        rows = read_jsonl(train_dir(sw, member) / "trainset.jsonl")
        assert {r["lang"] for r in rows} == set(study_langs)
        ids = [r["id"] for r in rows]
        assert problems is None or ids == problems, member
        problems = ids
        method = read_json(train_dir(sw, member) / "metrics.json")["method"]
        assert method == ("sft" if member.startswith("sft") else "grpo"), member


def check_consistency_reward(sw: Path) -> None:
    """The consistency prompt asks for German throughout; the reward is 0.5 accuracy + 0.5 consistency (langid);
    every setup is evaluated with the same prompt."""
    plain, prompt = system_prompt(sw, "rl-de"), system_prompt(sw, "rl-de-prompt")
    assert prompt != plain and "German" in prompt and system_prompt(sw, "rl-de-prompt-reward") == prompt
    weights = {m: read_json(train_dir(sw, m) / "metrics.json")["reward_weights"] for m in STUDIES["consistency-reward"].members}
    assert weights["rl-de"] == weights["rl-de-prompt"] == {"accuracy_reward": 0.8, "format_reward": 0.1,
                                                           "language_reward": 0.1}
    assert weights["rl-de-prompt-reward"] == {"accuracy_reward": 0.5, "consistency_reward": 0.5}
    recipe = yaml.safe_load((train_dir(sw, "rl-de-prompt-reward") / "recipe.yaml").read_text(encoding="utf-8"))
    assert recipe["rewards"]["langid"] == "langid"
    evals = []
    for member in STUDIES["consistency-reward"].members:
        e = yaml.safe_load((sw / "members" / member / "eval.yaml").read_text(encoding="utf-8"))
        evals.append({k: v for k, v in e.items() if k not in ("out", "adapter", "name")})
    assert evals[0] == evals[1] == evals[2]


def check_sft_rft_rl(sw: Path) -> None:
    """At tiny scale the SFT rung learns its problems by heart and RFT samples those same problems: it keeps
    answers the grader found correct and complete, and trains on them."""
    sft_rows = read_jsonl(train_dir(sw, "sft-de") / "trainset.jsonl")
    rft_rows = read_jsonl(train_dir(sw, "rft-de") / "trainset.jsonl")
    assert [(r["id"], r["lang"]) for r in rft_rows] == [(r["id"], r["lang"]) for r in sft_rows] and len(sft_rows) == 2
    assert read_json(train_dir(sw, "sft-de") / "metrics.json")["steps"] == 80
    rft = read_json(train_dir(sw, "rft-de") / "metrics.json")
    kept = rft["sampling"]["de"]["kept"]
    assert 1 <= kept <= 2 and rft["examples"]["kept"] == kept and rft["steps"] == 2
    samples = read_jsonl(train_dir(sw, "rft-de") / "rft_samples.jsonl")  # rft.keep=1: one answer per problem solved
    solved = [row for row in samples if any(s["correct"] and s["finish_reason"] != "length" for s in row["samples"])]
    assert len(solved) == kept


def check_cold_start(sw: Path) -> None:
    recipe = yaml.safe_load((train_dir(sw, "rl-de") / "recipe.yaml").read_text(encoding="utf-8"))
    assert recipe["task"] == "train-grpo" and recipe["model"]["adapter"] is None  # RL alone, from the base model


def check_mixed_language(sw: Path) -> None:
    """The mix: as many problems as German alone, each in one of en / zh / de."""
    mix = read_jsonl(train_dir(sw, "rl-mix") / "trainset.jsonl")
    de = read_jsonl(train_dir(sw, "rl-de") / "trainset.jsonl")
    assert len(mix) == len(de) and len({r["id"] for r in mix}) == len(mix)
    assert {r["lang"] for r in mix} == set(LANGS) and {r["lang"] for r in de} == {"de"}


def check_pivot_vs_gold(sw: Path) -> None:
    """The pivot member is rewarded by its answer's similarity to the pivot model's English references (written
    first, one per problem), the gold member by the gold answer."""
    gold = read_json(train_dir(sw, "gold") / "metrics.json")
    pivot = read_json(train_dir(sw, "pivot") / "metrics.json")
    assert gold["reward_weights"] == {"accuracy_reward": 0.8, "format_reward": 0.1, "language_reward": 0.1}
    assert pivot["reward_weights"] == {"pivot_reward": 0.8, "format_reward": 0.1, "language_reward": 0.1}
    problems = {r["id"] for r in read_jsonl(train_dir(sw, "pivot") / "trainset.jsonl")}
    refs = read_jsonl(train_dir(sw, "pivot") / "references.jsonl")
    assert {r["id"] for r in refs} == problems and {r["lang"] for r in refs} == {"en"}
    assert pivot["pivot"]["available"] == len(problems) and pivot["pivot"]["missing"] == 0
    logged = [r for r in read_jsonl(train_dir(sw, "pivot") / "train_log.jsonl") if "rewards/pivot_reward/mean" in r]
    assert len(logged) == 2


CHECKS = {"rl-vs-sft": check_rl_vs_sft, "consistency-reward": check_consistency_reward,
          "sft-rft-rl": check_sft_rft_rl, "cold-start": check_cold_start, "mixed-language": check_mixed_language,
          "pivot-vs-gold": check_pivot_vs_gold}


@pytest.mark.parametrize("recipe", list(STUDIES))
def test_study_runs_end_to_end_at_tiny_scale(recipe, run_cli, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XLING_CACHE", str(tmp_path / "cache"))
    study = STUDIES[recipe]
    rc = run_cli(recipe, "tiny=true", "out=sw", f"evaluate.langs=[{','.join(LANGS)}]", "analyze.n_boot=50")
    out, err = capsys.readouterr()
    assert rc == 0, out[-3000:] + err[-3000:]
    sw = tmp_path / "sw"
    names = list(study.members)

    # every member trained, from its parent's final model where the recipe chains them
    for member in names:
        env = read_json(train_dir(sw, member) / "train_env.json")
        parent = study.parents.get(member)
        assert env["recipe"]["model"]["adapter"] == (str(train_dir(sw, parent).resolve() / "final") if parent else None)
        assert (train_dir(sw, member) / "final" / "adapter_config.json").is_file()
        assert read_json(train_dir(sw, member) / "metrics.json")["steps"] >= 2

    m = read_json(sw / "metrics.json")
    assert list(m["members"]) == names
    for member, langs in study.members.items():
        info = m["members"][member]
        assert info["train_langs"] == langs and info["base"] == "base"
        assert info["paradigm"] == (study.paradigms[member] if study.paradigms else None)
    if study.paradigms:  # grouped by paradigm, in the order of the members
        groups: dict[str, list[str]] = {}
        for member, paradigm in study.paradigms.items():
            groups.setdefault(paradigm, []).append(member)
        assert m["groups"]["members"] == groups
    else:
        assert not m.get("groups")
    # Gen per member with its interval, and the on-target rate (100 − off-target) of every evaluation
    assert set(m["gen_avg"]) == set(names) and set(m["gen_avg_ci"]) == set(names)
    for member in names:
        if m["gen_avg"][member] is not None:
            assert interval(m["gen_avg_ci"][member])
        judged, least = m["mean_off_target_judged"][member], m["off_target_min_judged"]
        if m["mean_off_target"][member] is None:  # every cell judged on too few answers: undetermined, no interval
            assert judged == 0 and not m["mean_off_target_ci"].get(member)
            assert all(n < least for per_b in m["off_target_judged"][member].values() for n in per_b.values())
        else:
            assert 0 <= m["mean_off_target"][member] <= 100 and interval(m["mean_off_target_ci"][member])
            assert judged >= least
    # the contrasts: a − b, Gen and accuracy, with intervals
    assert list(m["contrasts"]) == list(study.contrasts)
    for label, (a, b) in study.contrasts.items():
        c = m["contrasts"][label]
        assert (c["a"], c["b"]) == (a, b)
        assert c["accuracy"] == pytest.approx(m["mean_accuracy"][a] - m["mean_accuracy"][b])
        assert interval(c["ci"]["accuracy"]) and (c["gen"] is None or interval(c["ci"]["gen"]))

    # the accuracy table: the base and every member, in every language evaluated
    with open(sw / "accuracy.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert sorted((r["model"], r["benchmark"], r["lang"]) for r in rows) == sorted(
        (model, "synth", lang) for model in ["base", *names] for lang in LANGS)
    assert all(0 <= float(r["accuracy"]) <= 100 and int(r["n"]) > 0 for r in rows)

    report = (sw / "report.md").read_text(encoding="utf-8")
    for section in ("## Accuracy (%) with bootstrap 95% intervals", "## Transfer over the base model", "## Members",
                    "## Contrasts"):
        assert section in report, section
    assert ("### By training paradigm" in report) == bool(study.paradigms)
    assert "| acc en % | acc zh % | acc de % | avg acc % | Gen | MTI avg | on-target % |" in report
    for member in names:
        assert f"| {member} | base | {'+'.join(study.members[member])} |" in report
    for label, (a, b) in study.contrasts.items():
        assert f"| {label} | {a} − {b} |" in report
    for figure in FIGURES:
        assert (sw / "figures" / figure).stat().st_size > 0 and f"figures/{figure}" in report

    CHECKS[recipe](sw)
