"""The doctor recipe: installed vs locked versions, CUDA, and which backends can run here."""

from __future__ import annotations

import json

from xling import cli, versions


def test_doctor_reports_versions_cuda_and_backends(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    for text in ("trl", "1.14.2", "unsloth", "absent", "CUDA: not available", "what can run here",
                 "the installed versions match the lock set"):
        assert text in out
    metrics = json.loads((tmp_path / "runs/doctor/metrics.json").read_text())
    assert metrics["packages"]["vllm"] == {"locked": "0.30.0", "installed": None, "status": "absent"}
    assert metrics["backends"]["peft"]["ok"] and not metrics["backends"]["unsloth"]["ok"]
    assert metrics["mismatches"] == [] and metrics["cuda"]["available"] is False


def test_doctor_warns_on_mismatch_and_strict_fails(capsys, monkeypatch, tmp_path):
    real = versions.installed_version
    monkeypatch.setattr(versions, "installed_version",
                        lambda name: "1.16.0" if versions.canonical(name) == "trl" else real(name))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "warning: trl 1.16.0 differs from the lock set (trl==1.14.2)" in out
    assert cli.main(["doctor", "strict=true"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: doctor strict=true: 1 problem(s): trl 1.16.0 (locked 1.14.2)")
