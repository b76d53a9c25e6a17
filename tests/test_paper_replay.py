"""Recipe `paper-replay`: the published numbers, the figure, the metrics file."""

import json

import pytest

from xling.runs import cli
from xling.tasks.paper_replay import load_numbers
from xling.common.errors import XlingError


def test_paper_replay_end_to_end(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc = cli.main(["paper-replay"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    d = tmp_path / "runs" / "paper-replay"
    m = json.loads((d / "metrics.json").read_text())
    assert m["fit"]["mti"]["alpha"] == pytest.approx(2.00, abs=0.005)
    assert m["fit"]["mti"]["beta"] == pytest.approx(0.29, abs=0.006)
    assert m["fit"]["accuracy"]["alpha"] == pytest.approx(56.98, abs=0.01)
    assert m["fit"]["accuracy"]["beta"] == pytest.approx(0.02, abs=0.001)
    assert m["fit"]["mti"]["alpha_se"] > 0 and 0.9 < m["fit"]["mti"]["r2"] < 1
    assert m["leap"]["mti"] == pytest.approx(1.333) and m["leap"]["accuracy"] == pytest.approx(3.636, abs=1e-3)
    assert m["gap"]["mti"] == pytest.approx(0.837, abs=0.005) and m["gap"]["accuracy"] == pytest.approx(2.75, abs=0.01)
    published = [1.163, 2.496, 2.650, 3.002, 3.282, 3.475, 3.534, 3.631]
    for k, pub in enumerate(published):
        assert round(m["mti"][str(k)], 3) == (3.482 if k == 5 else pub)
        assert m["mti_published"][str(k)] == pub
    assert m["per_k"]["1"]["ti"]["sw"] == pytest.approx((26.2 - 18) / 18 / m["per_k"]["1"]["train_gain"])
    png = (d / "parallel_scaling.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    assert (d / "accuracy.csv").read_text().startswith("model,benchmark,lang,accuracy\nbase,math500,en,74.8\n")
    assert "2.00 ± 0.07" in out and "56.99 ± 0.23" in out


def test_replay_of_other_numbers_and_bad_files(tmp_path):
    data = {
        "langs": ["en", "de", "fr"], "order": ["de", "fr"], "base": [50, 40, 30],
        "trained": {"0": [55, 42, 31], "1": [56, 45, 33], "2": [57, 46, 35]},
    }
    p = tmp_path / "n.json"
    p.write_text(json.dumps(data))
    assert sorted(load_numbers(p)["trained"]) == [0, 1, 2]
    data["trained"]["3"] = [1, 2]
    p.write_text(json.dumps(data))
    with pytest.raises(XlingError, match=r"trained\[3\] has 2 values for 3 languages"):
        load_numbers(p)
    p.write_text(json.dumps({"langs": ["en"]}))
    with pytest.raises(XlingError, match="missing field\\(s\\) order, base, trained"):
        load_numbers(p)
    p.write_text("{")
    with pytest.raises(XlingError, match="not valid JSON"):
        load_numbers(p)
    data["trained"]["3"] = [1, "2", 3]
    p.write_text(json.dumps(data))
    with pytest.raises(XlingError, match=r"trained\[3\] has accuracies that are not numbers from 0 to 100: de='2'"):
        load_numbers(p)
    data["trained"]["3"] = [1, 2, 300]
    p.write_text(json.dumps(data))
    with pytest.raises(XlingError, match="fr=300"):
        load_numbers(p)
