"""The toy world of the classroom demo: a small causal LM pretrained on CPU on the built-in problems.

A random model answers nothing, so on a machine without a GPU no transfer can be watched. `toy`
is a small Llama-architecture model with its own tokenizer, pretrained in a few minutes on CPU on the
`synth` problems (`xling.data.synth`, split `pretrain`: held apart from the GRPO `train` and evaluation
`test` problems) with an English-heavy mixture, as real models are pretrained: plenty of English,
less Spanish, French, German, Russian, Chinese and Japanese, little Bengali, Thai, Swahili and
Telugu. Every example is a chat in the format the prompts use (`xling.data.prompts`: the language's
system instruction, the question, and the worked solution in that language ending in `\\boxed{}`;
part of them with the prompt-hacking pre-fill), so the model can be evaluated and trained with GRPO
like an instruct model. It is a toy world, honestly labelled as one: its "language ability" is what
the mixture gave it.

It is also given one habit that rewards can fix (`slip`): in a share of the solutions, in every
language, the boxed answer is the first number of the working instead of its result. GRPO with the
accuracy reward unlearns it in the languages it trains on; how much it also falls in the languages
it never trained on is the transfer a class can watch (`xling.tasks.demo`).

The tokenizer is a byte-level BPE trained on the pretraining text itself, with every number below
1,000 one token (`numbers="groups"`, as Llama 3's tokenizer does) or every digit its own token
(`numbers="digits"`), and merges across spaces (the fixed instruction sentences and template phrases
become a few tokens, which keeps sequences short on CPU).

    path = build_toy(ToyConfig())   # pretrained once, cached under $XLING_CACHE/toy/<key>/

The cache folder is keyed on every setting (`ToyConfig.key()`), written to a temporary folder and
renamed when complete, so a killed build leaves nothing half-written and a second call loads it.
`model.name=toy` (training) and `model=toy` / `base=toy` (evaluate) resolve to it.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from xling.common.config import Invalid
from xling.common.io import build_folder
from xling.common.errors import XlingError
from xling.data.languages import CODES, LANGUAGES, unknown_language_message
from xling.data.prompts import render_chatml
from xling.common.store import fingerprint

NAME = "toy"
VERSION = 1  # bump when the corpus or the training code changes what a setting produces

# The pretraining language mixture (shares of the examples): English-heavy, as real corpora are.
MIXTURE: dict[str, float] = {
    "en": 0.72,
    "es": 0.04, "fr": 0.04, "de": 0.04, "ru": 0.04, "zh": 0.04, "ja": 0.04,
    "bn": 0.01, "th": 0.01, "sw": 0.01, "te": 0.01,
}
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


@dataclass(kw_only=True)
class ToyConfig:
    """How the toy model is built and pretrained (every field enters the cache key)."""

    examples: int = 16000  # pretraining examples: synth `pretrain` problems, each in one language
    mixture: dict[str, float] = field(default_factory=lambda: dict(MIXTURE))  # language -> share
    prefix_share: float = 0.5  # share of examples whose answer starts with the prompt-hacking pre-fill
    vocab_size: int = 4096
    hidden_size: int = 128
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    intermediate_size: int = 512
    epochs: float = 4.0
    batch_size: int = 32
    learning_rate: float = 3e-3
    warmup: float = 0.05  # share of the steps
    loss_on: str = "answer"  # answer: the assistant turn only; all: every token
    numbers: str = "groups"  # groups: numbers below 1,000 are one token each; digits: one token per digit
    slip: float = 0.5  # share of solutions whose boxed answer is the working's first number, not its result
    drills: int = 0  # arithmetic drills added to the corpus: lines of calculations from more pretrain problems' workings
    drill_facts: int = 8  # calculations per drill
    bucket: int = 32  # batches formed from windows of bucket x batch_size examples grouped by length class (less padding)
    seed: int = 0

    def check(self) -> None:
        if self.examples < 1:
            raise Invalid("examples", "give a positive number of pretraining examples")
        if not self.mixture:
            raise Invalid("mixture", "give at least one language and its share, e.g. {en: 1.0}")
        for code, share in self.mixture.items():
            if code not in LANGUAGES:
                raise Invalid("mixture", unknown_language_message(code))
            if not (isinstance(share, (int, float)) and share >= 0 and math.isfinite(share)):
                raise Invalid("mixture", f"the share of {code} must be a number >= 0, got {share!r}")
        if sum(self.mixture.values()) <= 0:
            raise Invalid("mixture", "the shares are all 0; give at least one positive share")
        if not 0 <= self.slip < 1:
            raise Invalid("slip", "is a share of the solutions, in [0, 1)")
        if not 0 <= self.prefix_share <= 1:
            raise Invalid("prefix_share", "must be in [0, 1]")
        if self.vocab_size < 300:
            raise Invalid("vocab_size", "must be at least 300 (the 256 bytes, the special tokens and some merges)")
        for key in ("hidden_size", "layers", "heads", "kv_heads", "intermediate_size", "batch_size"):
            if getattr(self, key) < 1:
                raise Invalid(key, "must be at least 1")
        if self.hidden_size % self.heads or self.heads % self.kv_heads or (self.hidden_size // self.heads) % 2:
            raise Invalid("heads", f"hidden_size={self.hidden_size} must split into heads={self.heads} of even size, "
                          f"and heads into kv_heads={self.kv_heads} groups")
        if not self.epochs > 0:
            raise Invalid("epochs", "must be positive")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise Invalid("learning_rate", "must be a positive number, e.g. 3e-3")
        if not 0 <= self.warmup < 1:
            raise Invalid("warmup", "is a share of the steps, in [0, 1)")
        if self.loss_on not in ("answer", "all"):
            raise Invalid("loss_on", "choose answer (the assistant turn) or all (every token)")
        if self.bucket < 1:
            raise Invalid("bucket", "must be at least 1 (1: batches in the shuffled order, not grouped by length)")
        if self.drills < 0 or self.drill_facts < 1:
            raise Invalid("drills", "drills must be >= 0 and drill_facts >= 1")
        if self.numbers not in ("digits", "groups"):
            raise Invalid("numbers", "choose digits (one token per digit) or groups (up to three digits per token)")

    def key(self) -> str:
        """The cache key: a hash of every setting and of the toy builder's version (settings added later are
        left out at their defaults, so that a toy built before they existed keeps its key)."""
        later = {"drills": 0, "drill_facts": 8, "bucket": 1}
        return fingerprint({"version": VERSION, **{k: v for k, v in asdict(self).items()
                                                  if not (k in later and v == later[k])}}, 12)


# -- the corpus ----------------------------------------------------------------------------------

def mixture_counts(total: int, mixture: dict[str, float]) -> dict[str, int]:
    """How many of `total` examples each language gets: shares rounded by largest remainder (exact sum)."""
    weights = {c: float(mixture[c]) for c in CODES if mixture.get(c, 0) > 0}
    wsum = sum(weights.values())
    exact = {c: total * w / wsum for c, w in weights.items()}
    counts = {c: int(v) for c, v in exact.items()}
    left = total - sum(counts.values())
    for c in sorted(exact, key=lambda c: (-(exact[c] - counts[c]), CODES.index(c)))[:left]:
        counts[c] += 1
    return counts


@dataclass(frozen=True)
class ToyExample:
    """One pretraining chat: the prompt the model is given and the answer it learns to write."""

    id: str
    lang: str
    prefix: bool
    messages: tuple  # system, user (, assistant pre-fill); empty for a drill
    answer: str  # the text after the prompt (after the pre-fill, when there is one); a drill's whole text


def corpus(cfg: ToyConfig) -> list[ToyExample]:
    """The pretraining examples: `pretrain` problem i in one language, languages in the mixture's counts.

    The language of each problem and whether it carries the pre-fill are drawn with the seed, so
    the corpus is the same in every run; no problem appears in two languages.
    """
    from xling.data import synth
    from xling.data.prompts import build_messages

    counts = mixture_counts(cfg.examples, cfg.mixture)
    langs = [c for c in CODES for _ in range(counts.get(c, 0))]
    rng = random.Random(f"xling-toy:{cfg.seed}")
    rng.shuffle(langs)
    with_prefix = set(rng.sample(range(cfg.examples), round(cfg.prefix_share * cfg.examples)))
    slips = set(rng.sample(range(cfg.examples), round(cfg.slip * cfg.examples))) if cfg.slip else set()
    problems = synth.generate_one_each(langs, split="pretrain", seed=cfg.seed)
    out = []
    for i, ex in enumerate(problems):
        prefix = i in with_prefix
        messages = build_messages(ex, prefix=prefix)
        solution = slipped(ex.meta["solution"]) if i in slips else ex.meta["solution"]
        answer = ("\n" if prefix else "") + solution
        out.append(ToyExample(ex.id, ex.lang, prefix, tuple(messages), answer))
    return out + drills(cfg)


def drills(cfg: ToyConfig) -> list[ToyExample]:
    """`cfg.drills` plain-text arithmetic drills, each `drill_facts` calculations one a line (`18 + 8 = 26`),
    taken in order from the workings of the `pretrain` problems after the corpus's own (numbers as the
    problems draw them; no prompt, every token learned)."""
    from xling.data import synth

    if not cfg.drills:
        return []
    need, facts, n = cfg.drills * cfg.drill_facts, [], cfg.examples
    while len(facts) < need:
        more = max(1000, (need - len(facts)))
        for p in synth._pretrain_draws(n + more, cfg.seed)[n:]:
            facts += synth._CALCULATION.findall(synth._solution(p["template"], p["values"], p["object"], p["answer"]))
        n += more
    return [ToyExample(f"drill-{i}", "en", False, (), "\n".join(facts[i * cfg.drill_facts:(i + 1) * cfg.drill_facts]))
            for i in range(cfg.drills)]


def slipped(solution: str) -> str:
    """The solution with a habit that rewards can unlearn: its boxed answer is the first number of the
    working (the first operand of its first calculation) instead of the result."""
    import re

    first = re.search(r"\d+", solution)
    return re.sub(r"\\boxed\{[^{}]*\}", lambda m: f"\\boxed{{{first.group(0)}}}", solution) if first else solution


def tokenizer_texts(examples: Sequence[ToyExample]) -> list[str]:
    """The text the tokenizer is trained on: every rendered prompt and answer, and each language's
    fixed strings (so that a language the mixture leaves out still encodes its instruction compactly)."""
    from xling.data.prompts import system_prompt

    texts = []
    for ex in examples:
        texts += [render_chatml(list(ex.messages)), ex.answer] if ex.messages else [ex.answer]
    for code, lang in LANGUAGES.items():
        texts += [system_prompt(code), lang.prefix]
    return texts


def build_tokenizer(texts: Sequence[str], vocab_size: int, numbers: str = "groups"):
    """A fast byte-level BPE tokenizer with merges across spaces and ChatML special tokens; numbers are
    split into single digits (`digits`) or groups of up to three digits (`groups`, as Llama 3's
    tokenizer does), every number below 1,000 then being one token."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from xling.data.prompts import CHATML

    tok = Tokenizer(models.BPE())
    split = (pre_tokenizers.Digits(individual_digits=True) if numbers == "digits"
             else pre_tokenizers.Split(Regex(r"\d{1,3}"), behavior="isolated"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        split, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    if numbers == "groups":  # every number below 1,000 often enough to become a token
        texts = list(texts) + [" ".join(str(n) for n in range(1000))] * 50
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   bos_token=None, model_max_length=2048)
    fast.chat_template = CHATML
    return fast


def encode(examples: Sequence[ToyExample], tokenizer, loss_on: str = "answer") -> list[tuple[list[int], list[int]]]:
    """(token ids, which of them are learned: 1/0) per example. Prompt and answer are tokenized apart,
    as at generation time (the prompt alone, then the model's tokens), so no merge crosses the
    boundary; `answer` learns the answer and the end token, `all` every token but the first."""
    prompts = tokenizer([render_chatml(list(ex.messages)) if ex.messages else "" for ex in examples],
                        add_special_tokens=False)["input_ids"]
    answers = tokenizer([ex.answer for ex in examples], add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id
    out = []
    for ex, p, a in zip(examples, prompts, answers):
        ids = p + a + [eos]
        learn = ([0] + [1] * (len(ids) - 1) if loss_on == "all" or not ex.messages
                 else [0] * len(p) + [1] * (len(a) + 1))
        out.append((ids, learn))
    return out


# -- pretraining ---------------------------------------------------------------------------------

def _model(cfg: ToyConfig, tokenizer):
    """A Llama-architecture model (transformers loads a Llama folder's tokenizer as saved; for a Qwen2
    folder it rebuilds the pre-tokenizer with Qwen's regex, which would undo this tokenizer's merges)."""
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads, num_key_value_heads=cfg.kv_heads,
        max_position_embeddings=2048, tie_word_embeddings=True, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=None, rope_theta=10000.0,
    )
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id,
                                               pad_token_id=tokenizer.pad_token_id, do_sample=True)
    return model


def _batches(encoded: list[tuple[list[int], list[int]]], cfg: ToyConfig, steps: int, pad: int):
    """`steps` batches of `batch_size` examples, in a seeded order (epoch after epoch), right-padded;
    labels are -100 on padding and on the tokens not learned. With `bucket` > 1, each window of
    `bucket` batches of that order is grouped by length class (32 tokens wide: most examples fall in
    one class, the long scripts' and the longest problems' in the next), keeping the shuffled order
    within a class, cut into batches and those shuffled: batches as mixed as before, less padding.
    (Sorting by exact length instead made batches of one problem type and language, and a much
    worse toy.)"""
    import torch

    rng = random.Random(f"xling-toy-order:{cfg.seed}")
    order: list[int] = []
    ready: list[list[int]] = []
    for _ in range(steps):
        if not ready:
            while len(order) < cfg.batch_size * cfg.bucket:
                perm = list(range(len(encoded)))
                rng.shuffle(perm)
                order += perm
            window, order = order[:cfg.batch_size * cfg.bucket], order[cfg.batch_size * cfg.bucket:]
            if cfg.bucket > 1:
                window.sort(key=lambda i: len(encoded[i][0]) // 32)
            ready = [window[j:j + cfg.batch_size] for j in range(0, len(window), cfg.batch_size)]
            if cfg.bucket > 1:
                rng.shuffle(ready)
        batch = ready.pop(0)
        width = max(len(encoded[i][0]) for i in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, i in enumerate(batch):
            seq, learn = encoded[i]
            ids[row, :len(seq)] = torch.tensor(seq)
            mask[row, :len(seq)] = 1
            labels[row, :len(seq)] = torch.where(torch.tensor(learn, dtype=torch.bool), torch.tensor(seq), -100)
        yield ids, mask, labels


def _loss(model, ids, mask, labels):
    """Next-token cross-entropy on the labelled positions only: the output layer (a large share of a
    small model's compute) runs on the answer tokens, not on the prompt and the padding."""
    import torch.nn.functional as F

    hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state
    target = labels[:, 1:]
    keep = target != -100
    logits = model.lm_head(hidden[:, :-1][keep])
    return F.cross_entropy(logits.float(), target[keep])


def steps_for(cfg: ToyConfig) -> int:
    return max(1, math.ceil(cfg.epochs * (cfg.examples + cfg.drills) / cfg.batch_size))


def pretrain(cfg: ToyConfig, out: Path, progress: Callable[[str, int, int, dict], None] | None = None) -> dict:
    """Build the tokenizer and model, pretrain, and save them to `out`; returns the training record."""
    import torch

    cfg.check()
    report = progress or (lambda phase, done, total, info: None)
    t0 = time.monotonic()
    report("corpus", 0, 1, {"examples": cfg.examples})
    examples = corpus(cfg)
    report("tokenizer", 0, 1, {"vocabulary": cfg.vocab_size})
    tokenizer = build_tokenizer(tokenizer_texts(examples), cfg.vocab_size, cfg.numbers)
    encoded = encode(examples, tokenizer, cfg.loss_on)
    torch.manual_seed(cfg.seed)
    model = _model(cfg, tokenizer)
    model.train()
    steps = steps_for(cfg)
    warm = max(1, round(cfg.warmup * steps))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, betas=(0.9, 0.98), weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, 0.5 * (1 + math.cos(math.pi * min(1.0, (s - warm) / max(1, steps - warm))))
                           if s >= warm else (s + 1) / warm))
    losses: list[float] = []
    tokens = 0
    t_train, cpu_train = time.monotonic(), time.process_time()
    report("pretraining", 0, steps, {})
    for step, (ids, mask, labels) in enumerate(_batches(encoded, cfg, steps, tokenizer.pad_token_id), 1):
        loss = _loss(model, ids, mask, labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        tokens += int(mask.sum())
        report("pretraining", step, steps, {"loss": sum(losses[-20:]) / len(losses[-20:])})
    train_s, train_cpu = time.monotonic() - t_train, time.process_time() - cpu_train
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    save_quietly(model, tokenizer, out)
    counts = mixture_counts(cfg.examples, cfg.mixture)
    lengths = [len(s) for s, _ in encoded]
    record = {
        "name": NAME, "key": cfg.key(), "settings": asdict(cfg), "version": VERSION,
        "parameters": sum(p.numel() for p in model.parameters()), "vocab": len(tokenizer),
        "examples_per_lang": counts, "drills": cfg.drills, "with_prefix": sum(e.prefix for e in examples),
        "steps": steps, "tokens_seen": tokens, "mean_tokens_per_example": sum(lengths) / len(lengths),
        "loss_first": sum(losses[:20]) / len(losses[:20]), "loss_last": sum(losses[-20:]) / len(losses[-20:]),
        "pretrain_s": round(train_s, 1), "pretrain_cpu_s": round(train_cpu, 1),
        "total_s": round(time.monotonic() - t0, 1), "torch_threads": torch.get_num_threads(),
        "load_average": [round(x, 2) for x in os.getloadavg()], "built": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (out / "toy.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def save_quietly(model, tokenizer, out: Path) -> None:
    """save_pretrained without transformers' "Writing model shards" progress bar (the toy has one shard)."""
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
    finally:
        if shown:
            hf_logging.enable_progress_bar()


# -- the cache -----------------------------------------------------------------------------------

def cache_dir(cfg: ToyConfig) -> Path:
    from xling.data import cache_root

    return cache_root() / NAME / cfg.key()


def is_built(path: Path) -> bool:
    return (path / "toy.json").is_file() and (path / "config.json").is_file()


def build_toy(cfg: ToyConfig | None = None, *, quiet: bool = False) -> Path:
    """The pretrained toy model's folder: from the cache when built before, else pretrained now.

    It is pretrained into a temporary folder beside the cache folder and renamed into place when
    complete; an interrupted build leaves no folder under the key (its temporary folder is removed).
    """
    cfg = cfg or ToyConfig()
    try:
        cfg.check()
    except Invalid as e:
        raise XlingError(f"toy model setting '{e.key}': {e.message}") from None
    path = cache_dir(cfg)
    if is_built(path):
        return path
    records = []

    def pretrained(tmp: Path) -> None:
        if quiet:
            records.append(pretrain(cfg, tmp))
        else:
            with _progress() as report:
                records.append(pretrain(cfg, tmp, report))

    build_folder(path, pretrained, done=is_built)  # one built meanwhile by another process is kept
    record = records[0]
    if not quiet:
        from xling.common.console import console

        console.print(f"toy model: {record['parameters'] / 1e6:.2f}M parameters, vocabulary {record['vocab']}, "
                      f"{record['steps']} steps on {cfg.examples} examples in {record['pretrain_s']:.0f}s "
                      f"(loss {record['loss_first']:.2f} -> {record['loss_last']:.2f}); cached in {path}",
                      markup=False, soft_wrap=True)
    return path


class _progress:
    """A rich progress display: the phase, its step and its ETA."""

    def __enter__(self):
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        from xling.common.console import console

        self.prog = Progress(TextColumn("toy model: {task.description}"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("elapsed"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                             TextColumn("{task.fields[info]}"), console=console, transient=False)
        self.prog.__enter__()
        self.tasks: dict[str, Any] = {}
        return self.report

    def report(self, phase: str, done: int, total: int, info: dict) -> None:
        if phase not in self.tasks:
            for task in self.tasks.values():  # a new phase: the earlier ones are done
                self.prog.update(task, completed=self.prog.tasks[task].total)
            self.tasks[phase] = self.prog.add_task(phase, total=total, info="")
        text = "  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in info.items())
        self.prog.update(self.tasks[phase], completed=done, total=total, info=text)

    def __exit__(self, *exc):
        if exc[0] is None:
            for task in self.tasks.values():
                self.prog.update(task, completed=self.prog.tasks[task].total)
        return self.prog.__exit__(*exc)


def read_record(path: str | Path) -> dict | None:
    """The training record of a toy model folder (None for any other folder)."""
    file = Path(path) / "toy.json"
    if not file.is_file():
        return None
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        raise XlingError(f"{file} is not a readable toy-model record; delete {Path(path)} to rebuild it") from None
