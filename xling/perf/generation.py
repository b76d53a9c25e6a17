"""Benchmark of generation: output tokens/s and seconds per (benchmark, language), against plain transformers.

    python -m xling.perf.generation [--backend auto|hf|vllm] [--model ID] [--adapter DIR]
        [--benchmark mgsm] [--data DIR] [--langs all] [--limit N] [--max-tokens N] [--n 1]
        [--batch-size 8] [--baseline-limit 16] [--no-baseline] [--threads N] [--json FILE]
    python -m xling.perf.generation --compare hf,vllm --threads 1,2 [the options above]

`--compare` runs each backend at each thread count in a process of its own (same prompts, same
settings, one after the other in the same run) and prints their tokens/s side by side, with the
ratios to plain transformers `generate` at the same thread count and to the hf backend. `--threads`
sets torch's threads (hf, the baseline) and the cores vLLM's CPU build binds its worker to
(`VLLM_CPU_OMP_THREADS_BIND`: cores 0..N-1).

It loads one generator (`xling.generate.load_generator`: one engine for every language), generates
the paper's prompts (system instruction + prompt-hacking prefix, temperature 0.6, top-p 0.95) for
each language in turn, and prints per language: problems, output tokens, seconds and tokens/s, and
the total wall time (model loading shown apart). The baseline is plain transformers `generate`
(AutoModelForCausalLM, the chat template rendered by the tokenizer plus the prefix, left-padded
batches of `--baseline-batch-size`, PEFT for an adapter) on the first `--baseline-limit` prompts of
the first language, with the same sampling settings; the ratio is backend tokens/s ÷ baseline tokens/s.

Defaults: on a CUDA host, Qwen/Qwen2.5-1.5B-Instruct on all of MGSM (250 × 11) with 8,192 new
tokens at most (the goal: under 2 minutes with an adapter on one H100); elsewhere, the tiny random
model of `xling.models.tiny` on 8 problems per language of the built-in synth set with 32 new tokens.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from xling.common.console import console, print_table
from xling.common.errors import XlingError


def _defaults(gpu: bool) -> dict:
    if gpu:
        return dict(model="Qwen/Qwen2.5-1.5B-Instruct", benchmark="mgsm", limit=None, max_tokens=8192, batch_size=64,
                    baseline_limit=32)
    return dict(model="tiny", benchmark="synth", limit=8, max_tokens=32, batch_size=8, baseline_limit=16)


def baseline(model: str, adapter: str | None, prompts: list[str], *, max_tokens: int, temperature: float, top_p: float,
             batch_size: int, seed: int) -> dict:
    """Plain transformers: tokenize the rendered prompts, left-pad, `generate`, count new tokens to EOS."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    tok = AutoTokenizer.from_pretrained(model, padding_side="left")
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    net = AutoModelForCausalLM.from_pretrained(model, dtype=dtype)
    if adapter:
        from peft import PeftModel

        net = PeftModel.from_pretrained(net, adapter)
    net = net.to(device).eval()
    eos = net.generation_config.eos_token_id
    eos = set(eos if isinstance(eos, list) else [eos]) | {tok.eos_token_id}
    config = GenerationConfig(do_sample=True, temperature=temperature, top_p=top_p, top_k=0, repetition_penalty=1.0,
                              max_new_tokens=max_tokens, pad_token_id=tok.pad_token_id, eos_token_id=sorted(eos))
    torch.manual_seed(seed)
    tokens = 0
    start = time.monotonic()
    for i in range(0, len(prompts), batch_size):
        enc = tok(prompts[i:i + batch_size], add_special_tokens=False, padding=True, return_tensors="pt").to(device)
        with torch.inference_mode():
            out = net.generate(**enc, generation_config=config)
        for row in out[:, enc["input_ids"].shape[1]:].tolist():
            stop = next((k for k, t in enumerate(row) if t in eos), None)
            tokens += len(row) if stop is None else stop + 1
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.monotonic() - start
    return {"prompts": len(prompts), "tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds if seconds else None}


def main(argv: list[str] | None = None) -> int:
    import os

    # the same OpenMP setting as run.py (threads that sleep while they wait; read when torch loads
    # OpenMP), so that the figures are those of xling's own runs
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from xling.generate.core import cuda_available

    gpu = cuda_available()
    d = _defaults(gpu)
    ap = argparse.ArgumentParser(prog="python -m xling.perf.generation", description=__doc__.split("\n")[0])
    ap.add_argument("--backend", default="auto", choices=["auto", "hf", "vllm"])
    ap.add_argument("--model", default=d["model"], help="model id or folder ('tiny': the built-in tiny random model)")
    ap.add_argument("--adapter", default=None)
    ap.add_argument("--template-from", default=None)
    ap.add_argument("--benchmark", default=d["benchmark"])
    ap.add_argument("--data", default=None, help="local copy of the benchmark (e.g. ../shared/data/mgsm)")
    ap.add_argument("--langs", default="all")
    ap.add_argument("--limit", type=int, default=d["limit"], help="problems per language (default: all)")
    ap.add_argument("--max-tokens", type=int, default=d["max_tokens"])
    ap.add_argument("--n", type=int, default=1, help="samples per problem")
    ap.add_argument("--batch-size", type=int, default=d["batch_size"], help="hf backend: conversations per call")
    ap.add_argument("--baseline-limit", type=int, default=d["baseline_limit"])
    ap.add_argument("--baseline-batch-size", type=int, default=8)
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    ap.add_argument("--threads", default=None, help="CPU threads (a list with --compare, e.g. 1,2)")
    ap.add_argument("--compare", default=None, help="backends to run side by side, e.g. hf,vllm")
    args = ap.parse_args(argv)
    try:
        if args.compare:
            return _compare(args, argv if argv is not None else sys.argv[1:])
        if args.threads:
            _set_threads(_threads(args.threads)[0])
        return _run(args)
    except XlingError as e:
        from xling.common.console import print_error

        print_error(str(e))
        return 2


def _run(args) -> int:
    from xling.generate import load_generator, resolve_backend
    from xling.data.prompts import build_messages
    from xling.evaluation.benchmarks import benchmark_langs, load_benchmarks
    from xling.evaluation.models import materialize

    backend = resolve_backend(args.backend)
    model = materialize(args.model)
    langs = [c.strip() for c in args.langs.split(",") if c.strip()]
    data = {args.benchmark: args.data} if args.data else {}
    per_bench = benchmark_langs([args.benchmark], langs, data)
    examples = load_benchmarks(per_bench, data, args.limit)[args.benchmark]
    options: dict = {"template_from": args.template_from, "seed": args.seed}
    if backend == "hf":
        options["batch_size"] = args.batch_size
    t0 = time.monotonic()
    gen = load_generator(backend, model, adapter=args.adapter, **options)
    load_s = time.monotonic() - t0
    warm = [build_messages(next(iter(examples.values()))[0], prefix=True)]
    gen.chat(warm, n=1, temperature=0.6, top_p=0.95, max_tokens=min(8, args.max_tokens), seed=args.seed)  # warm-up, untimed
    rows, per_lang = [], {}
    total_tokens, total_s = 0, 0.0
    for lang, exs in examples.items():
        convs = [build_messages(ex, prefix=True) for ex in exs]
        start = time.monotonic()
        out = gen.chat(convs, n=args.n, temperature=0.6, top_p=0.95, max_tokens=args.max_tokens, seed=args.seed)
        seconds = time.monotonic() - start
        tokens = sum(s.tokens for samples in out for s in samples)
        truncated = sum(s.finish_reason == "length" for samples in out for s in samples)
        per_lang[lang] = {"problems": len(exs), "tokens": tokens, "seconds": seconds, "truncated": truncated,
                          "tokens_per_s": tokens / seconds if seconds else None}
        total_tokens += tokens
        total_s += seconds
        rows.append([f"{args.benchmark}/{lang}", len(exs), tokens, truncated, f"{seconds:.2f}",
                     f"{tokens / seconds:.0f}" if seconds else "-"])
    first_prompts = [gen.render(build_messages(ex, prefix=True)) for ex in next(iter(examples.values()))]
    gen.close()
    rows.append(["total", sum(len(v) for v in examples.values()), total_tokens, sum(v["truncated"] for v in per_lang.values()),
                 f"{total_s:.2f}", f"{total_tokens / total_s:.0f}" if total_s else "-"])
    import platform

    from xling.generate.core import vllm_on_cpu

    on_gpu = not vllm_on_cpu() if backend == "vllm" else _cuda()
    device = "CUDA GPU" if on_gpu else f"CPU ({platform.processor() or platform.machine()})"
    print_table(f"generation: backend {backend}, {args.model}{' + ' + args.adapter if args.adapter else ''}, "
                f"max_tokens {args.max_tokens}, n {args.n}, on {device}",
                ["benchmark/lang", "problems", "output tokens", "truncated", "seconds", "tokens/s"], rows,
                note=f"model load {load_s:.1f}s and one warm-up call (not included); wall time for all languages {total_s + load_s:.1f}s "
                     "including the load")
    result = {"backend": backend, "model": args.model, "adapter": args.adapter, "max_tokens": args.max_tokens,
              "n": args.n, "load_seconds": load_s, "per_lang": per_lang, "tokens": total_tokens, "seconds": total_s,
              "tokens_per_s": total_tokens / total_s if total_s else None}
    if not args.no_baseline:
        prompts = first_prompts[:args.baseline_limit]
        with console.status(f"baseline: plain transformers generate on {len(prompts)} prompts"):
            base = baseline(model, args.adapter, prompts, max_tokens=args.max_tokens, temperature=0.6, top_p=0.95,
                            batch_size=args.baseline_batch_size, seed=args.seed)
        ratio = result["tokens_per_s"] / base["tokens_per_s"] if base["tokens_per_s"] and result["tokens_per_s"] else None
        result["baseline"] = {**base, "ratio": ratio}
        console.print(f"baseline (plain transformers generate, batch {args.baseline_batch_size}): {base['prompts']} prompts, "
                      f"{base['tokens']} tokens in {base['seconds']:.2f}s = {base['tokens_per_s']:.0f} tokens/s; "
                      f"{backend} / baseline = {ratio:.2f}x" if ratio else "baseline: no tokens", markup=False)
    if args.json:
        from xling.common.io import atomic_write_json

        atomic_write_json(args.json, result)
    print(json.dumps({k: v for k, v in result.items() if k != "per_lang"}, default=str))
    return 0


def _threads(text: str) -> list[int]:
    try:
        values = [int(t) for t in str(text).split(",") if t.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise XlingError(f"--threads {text}: give thread counts of 1 or more, e.g. --threads 1,2")
    return values


def _set_threads(n: int) -> None:
    """torch's intra-op threads here, and the cores vLLM's CPU worker binds to (read when the engine starts)."""
    import os

    import torch

    torch.set_num_threads(n)
    os.environ["VLLM_CPU_OMP_THREADS_BIND"] = "0" if n == 1 else f"0-{n - 1}"


def _compare(args, argv: list[str]) -> int:
    """Each backend at each thread count in its own process; one table of tokens/s and ratios."""
    import os
    import subprocess
    import tempfile

    backends = [b.strip() for b in args.compare.split(",") if b.strip()]
    bad = [b for b in backends if b not in ("hf", "vllm")]
    if bad or not backends:
        raise XlingError(f"--compare {args.compare}: give backends among hf, vllm, e.g. --compare hf,vllm")
    threads = _threads(args.threads or "1")
    drop = {"--compare", "--threads", "--json", "--backend"}
    rest, skip = [], False
    for a in argv:  # the options shared by every child
        if skip:
            skip = False
            continue
        if a in drop:
            skip = True
            continue
        if a.split("=", 1)[0] in drop:
            continue
        rest.append(a)
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for t in threads:
            for i, b in enumerate(backends):
                out = os.path.join(tmp, f"{b}-{t}.json")
                cmd = [sys.executable, "-m", "xling.perf.generation", *rest, "--backend", b, "--threads", str(t),
                       "--json", out] + ([] if i == 0 and not args.no_baseline else ["--no-baseline"])
                console.print(f"--- {b}, {t} thread(s): {' '.join(cmd[1:])}", markup=False, soft_wrap=True)
                rc = subprocess.call(cmd)
                if rc != 0 or not os.path.exists(out):
                    raise XlingError(f"the {b} run with {t} thread(s) failed (exit code {rc}); see its output above")
                with open(out, encoding="utf-8") as f:
                    results[(b, t)] = json.load(f)
    rows = []
    for t in threads:
        base = next((r["baseline"] for (b, tt), r in results.items() if tt == t and r.get("baseline")), None)
        hf = results.get(("hf", t))
        for b in backends:
            r = results[(b, t)]
            tps = r["tokens_per_s"]
            rows.append([t, b, r["tokens"], f"{r['seconds']:.2f}", f"{tps:.0f}" if tps else "-",
                         f"{r['load_seconds']:.1f}",
                         f"{tps / base['tokens_per_s']:.2f}x" if base and tps and base["tokens_per_s"] else "-",
                         f"{tps / hf['tokens_per_s']:.2f}x" if hf and tps and hf["tokens_per_s"] else "-"])
        if base:
            rows.append([t, "transformers generate", base["tokens"], f"{base['seconds']:.2f}",
                         f"{base['tokens_per_s']:.0f}" if base["tokens_per_s"] else "-", "-", "1.00x", "-"])
    print_table(f"generation side by side: {args.model}, {args.benchmark} (limit {args.limit}), max_tokens "
                f"{args.max_tokens}, n {args.n}",
                ["threads", "backend", "output tokens", "seconds", "tokens/s", "load s", "vs generate", "vs hf"], rows,
                note="each backend generates the same prompts in its own process, one after another; the baseline "
                     "(plain transformers generate) runs the first --baseline-limit prompts of the first language")
    if args.json:
        from xling.common.io import atomic_write_json

        atomic_write_json(args.json, {f"{b}-{t}": r for (b, t), r in results.items()})
    return 0


def _cuda() -> bool:
    from xling.generate.core import cuda_available

    return cuda_available()


if __name__ == "__main__":
    sys.exit(main())
