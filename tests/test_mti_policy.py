"""mti_policy: xling's MTI (the mean of the defined TIs) beside the paper's convention (None where most are undefined).

A worked example. English-only training; two benchmarks, accuracies in percent:

    math500   en   es   ru   de   fr        aime24   en   es
    base      50    0    0    0   20        base     10   10
    trained   60    5    2    0   30        trained  20   15

math500: ΔR(en) = (60-50)/50 = 0.2 (the training-set gain). es, ru and de have base accuracy 0,
so their gains, and TIs, are undefined; ΔR(fr) = (30-20)/20 = 0.5, TI(fr) = 0.5/0.2 = 2.5.
aime24: ΔR(en) = 1.0, ΔR(es) = 0.5, TI(es) = 0.5.

- `defined` (xling's default): MTI(math500) = 2.5, from fr alone; MTI(aime24) = 0.5;
  the model's MTI = (2.5 + 0.5) / 2 = 1.5; ID (math500) 2.5, OOD (aime24) 0.5.
- `paper`: TI is undefined in 3 of math500's 4 unseen languages (most of them), so
  MTI(math500) = None ("None" in the paper's tables) and it drops out of the averages:
  the model's MTI = 0.5; ID None; OOD 0.5.

The difference it makes: one well-measured language can carry a benchmark's MTI under
`defined`; under `paper` a benchmark counts only where most unseen languages have a defined TI.
"""

from __future__ import annotations

import json

import pytest

from xling.analysis import metrics as M

BASE = {"math500": {"en": 50, "es": 0, "ru": 0, "de": 0, "fr": 20}, "aime24": {"en": 10, "es": 10}}
TRAINED = {"math500": {"en": 60, "es": 5, "ru": 2, "de": 0, "fr": 30}, "aime24": {"en": 20, "es": 15}}


def test_the_worked_example_under_both_policies():
    d = M.transfer_metrics(TRAINED, BASE, ["en"], mti_policy="defined")
    p = M.transfer_metrics(TRAINED, BASE, ["en"], mti_policy="paper")
    assert d["ti"]["math500"] == pytest.approx({"es": None, "ru": None, "de": None, "fr": 2.5})
    assert d["ti"] == p["ti"] and d["gen"] == p["gen"]  # only MTI differs
    assert d["mti"]["math500"] == pytest.approx(2.5) and p["mti"]["math500"] is None
    assert d["mti"]["aime24"] == p["mti"]["aime24"] == pytest.approx(0.5)
    assert d["mti"]["avg"] == pytest.approx(1.5) and p["mti"]["avg"] == pytest.approx(0.5)
    assert d["mti"]["id"] == pytest.approx(2.5) and p["mti"]["id"] is None
    assert d["mti"]["ood"] == p["mti"]["ood"] == pytest.approx(0.5)


def test_half_undefined_is_not_most():
    assert M.mti({"a": 1.0, "b": None}, "paper") == 1.0  # half: kept
    assert M.mti({"a": 1.0, "b": None, "c": None}, "paper") is None
    assert M.mti({"a": None}, "defined") is None
    with pytest.raises(ValueError, match="unknown mti_policy 'strict'"):
        M.mti({"a": 1.0}, "strict")


def test_transfer_task_takes_the_policy(run_cli, tmp_path, capsys):
    table = tmp_path / "acc.csv"
    rows = ["model,benchmark,lang,accuracy"]
    for name, acc in (("base", BASE), ("rl", TRAINED)):
        rows += [f"{name},{b},{lang},{v}" for b, per in acc.items() for lang, v in per.items()]
    table.write_text("\n".join(rows) + "\n")
    common = ["transfer", f"table={table}", "base=base", "trained=rl", "train_langs=en"]
    assert run_cli(*common, "out=d") == 0
    assert run_cli(*common, "mti_policy=paper", "out=p") == 0
    d = json.loads((tmp_path / "d" / "metrics.json").read_text())
    p = json.loads((tmp_path / "p" / "metrics.json").read_text())
    assert d["mti"]["avg"] == pytest.approx(1.5) and p["mti"]["avg"] == pytest.approx(0.5)
    assert p["mti"]["math500"] is None
    assert run_cli(*common, "mti_policy=strict", "--dry-run") == 2
    assert "recipe key 'mti_policy'" in capsys.readouterr().err
