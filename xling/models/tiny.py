"""A tiny random Qwen2 causal LM with a locally trained tokenizer, for CPU runs and tests.

Nothing is downloaded: the byte-level BPE tokenizer is trained with `tokenizers` on text built
from the language table, so every script of the 11 languages encodes, and the model is a
randomly initialised `Qwen2ForCausalLM` of a few hundred thousand parameters. It loads with
`from_pretrained` like any hub model, so the training and generation code paths are the real ones.
`build_tiny_embedder` makes a sentence-transformers model the same way (random static token
embeddings, mean-pooled) for the semantic rewards; `cached_tiny_model` / `cached_tiny_embedder`
build them once under the xling cache.
"""

from __future__ import annotations

import json

from pathlib import Path

# ChatML, as the Qwen2.5 instruct models use it (no default system prompt).
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Attention heads of 32 dimensions: the smallest head size every generation backend accepts (vLLM's CPU
# attention takes 32, 64, 80, ... only).
HEAD_SIZE = 32


def _corpus() -> list[str]:
    from xling.data.languages import LANGUAGES

    lines = []
    for lang in LANGUAGES.values():
        lines += [lang.name, lang.native, lang.think, lang.prefix, *lang.answer_cues]
        if lang.digits:
            lines.append(" ".join(lang.digits))
    lines += [
        "Solve the following mathematics problem step by step. At the end, provide your final "
        "answer enclosed in \\boxed{}.",
        "<think> Let me think step by step. 3 + 4 = 7, 7 * 2 = 14, 14 - 5 = 9. </think>",
        "The answer is \\boxed{42}. \\frac{1}{2} + \\sqrt{3} = x^2, 1,000 + 2.5% = $70.000",
        "system user assistant 0 1 2 3 4 5 6 7 8 9 10 100 1000 + - * / = ( ) { } [ ] , . : ; ? !",
    ]
    return lines * 20


def build_tokenizer(chat_template: bool = True, vocab_size: int = 1024):
    """A fast tokenizer (byte-level BPE) with Qwen's special tokens and, optionally, ChatML."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>" if chat_template else "<|endoftext|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        model_max_length=4096,
    )
    if chat_template:
        fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_model(path: str | Path, chat_template: bool = True, hidden_size: int = 64,
                     layers: int = 2, seed: int = 0) -> Path:
    """Write a tiny random Qwen2 model and its tokenizer to `path` and return it.

    `chat_template=False` makes a "base" model whose tokenizer has no chat template (base models
    then borrow an instruct model's template, as the paper does).
    """
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    path = Path(path)
    tokenizer = build_tokenizer(chat_template=chat_template)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=max(1, hidden_size // HEAD_SIZE),
        num_key_value_heads=max(1, hidden_size // HEAD_SIZE // 2),
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, do_sample=True,
    )
    path.mkdir(parents=True, exist_ok=True)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Writing model shards" bar in xling's output
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def build_tiny_embedder(path: str | Path, dim: int = 32, seed: int = 0) -> Path:
    """Write a tiny sentence-transformers model (the tiny tokenizer + random static embeddings) to `path`.

    Texts that share tokens get similar embeddings, so its cosines order texts by overlap: enough to
    run the semantic rewards end to end on CPU; it judges nothing.
    """
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding

    tokenizer = build_tokenizer(chat_template=False)
    weights = torch.randn(len(tokenizer), dim, generator=torch.Generator().manual_seed(seed))
    model = SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_weights=weights)], device="cpu")
    path = Path(path)
    model.save(str(path))
    return path


def is_current(path: Path) -> bool:
    """A finished build of today's tiny models: the embedder, or a model whose heads are HEAD_SIZE wide
    (a cache built when they were 16 wide is built again)."""
    if (path / "modules.json").is_file():
        return True
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        return config["hidden_size"] // config["num_attention_heads"] == HEAD_SIZE
    except (OSError, ValueError, KeyError, TypeError, ZeroDivisionError):
        return False


def _cached(name: str, build) -> Path:
    from xling.data import cache_root
    from xling.common.io import build_folder

    path = cache_root() / "tiny" / name
    if not is_current(path):
        build_folder(path, build)
    return path


def cached_tiny_model(name: str = "tiny") -> Path:
    """A tiny model built once under $XLING_CACHE/tiny/NAME (as `evaluate model=tiny`): `tiny`, the
    instruct model (ChatML), or `tiny-base`, whose tokenizer has no chat template."""
    if name not in ("tiny", "tiny-base"):
        raise ValueError(f"no tiny model named {name!r}")
    instruct = name == "tiny"
    return _cached(name, lambda p: build_tiny_model(p, chat_template=instruct, seed=0 if instruct else 1))


def cached_tiny_embedder() -> Path:
    """The tiny sentence-embedding model, built once under $XLING_CACHE/tiny/embedder."""
    return _cached("embedder", build_tiny_embedder)
