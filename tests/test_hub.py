"""Offline is fast and quiet: no hub access is detected at once, and one line says what to pass instead."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xling.runs import cli
from xling.data import hub
from xling.common.errors import XlingError

REPO = Path(__file__).resolve().parent.parent
NO_HUB = "http://127.0.0.1:9"  # nothing listens on the discard port: the connection is refused at once


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """No answer cached from an earlier probe, no offline variable, an empty xling cache."""
    monkeypatch.setattr(hub, "_answer", hub._UNKNOWN)
    for var in hub.OFFLINE_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XLING_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_hub_data_set_without_the_hub_fails_at_once_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in hub.OFFLINE_VARS}
    env.update(HF_ENDPOINT=NO_HUB, XLING_CACHE=str(tmp_path / "cache"))
    t0 = time.time()
    proc = subprocess.run([sys.executable, str(REPO / "run.py"), "data", "source=mgsm", "langs=en", "out=o"],
                          cwd=tmp_path, env=env, capture_output=True, text=True)
    took = time.time() - t0
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "error: data set 'mgsm' (juletxara/mgsm, split test, en) needs the Hugging Face hub, which is not "
        "available (127.0.0.1:9 cannot be reached: Connection refused); without hub access give a local copy with "
        "path=DIR (a folder with the original mgsm_<lang>.tsv files)"]
    assert "Retrying" not in proc.stdout + proc.stderr
    print(f"offline data set refused in {took:.1f} s")  # the libraries' own retries took 26-55 s


def test_hf_hub_offline_is_honoured(fresh, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub.socket, "create_connection", lambda *a, **k: pytest.fail("no probe when told offline"))
    assert cli.main(["grpo-en", "model.name=org/some-model", "data.source=synth", "data.n=4", "out=t"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "error: model.name=org/some-model needs the Hugging Face hub, which is not available (HF_HUB_OFFLINE is "
        "set); give model.name=FOLDER, a local copy of the model (e.g. one downloaded with 'huggingface-cli "
        "download' where the hub is reachable)"]
    assert cli.main(["evaluate", "model=org/some-model", "benchmarks=mgsm", "langs=en", "data.mgsm=.",
                     "out=e"]) == 2
    assert "model=org/some-model needs the Hugging Face hub" in capsys.readouterr().err


def test_the_probe_runs_once_per_process(fresh, monkeypatch):
    calls = []

    def refused(address, timeout):
        calls.append((address, timeout))
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setenv("HF_ENDPOINT", "https://hub.example:8443")
    monkeypatch.setattr(hub.socket, "create_connection", refused)
    assert hub.offline_reason() == "hub.example:8443 cannot be reached: Connection refused"
    with pytest.raises(XlingError, match=r"^data set 'x' needs the Hugging Face hub, .*; give path=DIR$"):
        hub.require("data set 'x'", "give path=DIR")
    assert calls == [(("hub.example", 8443), hub.PROBE_TIMEOUT)]


def test_local_models_and_builtin_templates_need_no_hub(fresh, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in (str(fresh), "tiny", "chatml", "{% for m in messages %}{{ m.content }}{% endfor %}", None):
        hub.check_model(name, "model")
    with pytest.raises(XlingError, match="template_from=org/instruct needs the Hugging Face hub"):
        hub.check_model("org/instruct", "template_from")


def test_a_cached_model_loads_offline_without_retries(fresh, monkeypatch):
    import huggingface_hub.constants as constants

    snapshot = fresh / "hf" / "models--org--cached" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (fresh / "hf" / "models--org--cached" / "refs").mkdir()
    (fresh / "hf" / "models--org--cached" / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(fresh / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub, "_answer", "huggingface.co:443 cannot be reached: no network")
    hub.check_model("org/cached", "model.name")  # no error: the cache has it
    assert os.environ["HF_HUB_OFFLINE"] == "1" and constants.HF_HUB_OFFLINE is True
    with pytest.raises(XlingError, match="model.name=org/not-cached needs the Hugging Face hub"):
        hub.check_model("org/not-cached", "model.name")
