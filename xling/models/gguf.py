"""Causal LMs from GGUF checkpoints (llama.cpp's file format), through transformers' GGUF loading.

A model given as a `.gguf` file, or as a folder that holds one `.gguf` file and no `config.json`, is
read once by transformers (`AutoModelForCausalLM.from_pretrained(folder, gguf_file=NAME)`, which
dequantizes the weights - Q4, Q8 or F16 alike - to float, and `AutoTokenizer.from_pretrained(folder,
gguf_file=NAME)`, which rebuilds the tokenizer and its chat template from the file's metadata) and
saved as an ordinary checkpoint under `$XLING_CACHE/gguf/<name>-<fingerprint>/`. Every backend then
loads it like any model folder: transformers generation, TRL + PEFT training, vLLM, Unsloth.

    folder = resolve("path/to/SmolLM2-135M-Instruct.Q4_1.gguf")   # or its folder; other names pass through

The fingerprint is the file's resolved path, size and modification time, so a replaced file is
converted again; the conversion is written to a temporary folder and renamed when complete, so an
interrupted one leaves nothing behind. Reading GGUF needs the `gguf` package (pinned in
requirements.txt), not a llama.cpp build. Quantized weights come back as float: a Q4 file of a 135M
model becomes a ~0.5 GB float32 checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from xling.common import store
from xling.common.errors import XlingError

SUFFIX = ".gguf"


def gguf_file(name: str | os.PathLike) -> Path | None:
    """The GGUF file that `name` points at, or None when it is not a GGUF model.

    `name` is a `.gguf` file, or a folder with one `.gguf` file and no `config.json` (a folder with a
    `config.json` is an ordinary checkpoint, whatever else it holds). A folder with several `.gguf`
    files is an error that lists them: give the one to load.
    """
    path = Path(name).expanduser()
    if path.is_file():
        return path if path.suffix.lower() == SUFFIX else None
    if not path.is_dir() or (path / "config.json").is_file():
        return None
    found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() == SUFFIX)
    if len(found) > 1:
        raise XlingError(f"{path} holds {len(found)} GGUF files ({', '.join(p.name for p in found[:6])}); "
                         "give the path of the one to load")
    return found[0] if found else None


def fingerprint(file: Path) -> str:
    stat = file.stat()
    return store.fingerprint([str(file.resolve()), stat.st_size, int(stat.st_mtime)], 12)


def cache_dir(file: Path) -> Path:
    from xling.data import cache_root

    return cache_root() / "gguf" / f"{file.stem}-{fingerprint(file)}"


def load(file: str | os.PathLike, dtype: str = "float32"):
    """(model, tokenizer) read from a GGUF file by transformers (`gguf_file=`), weights in `dtype`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    file = Path(file).expanduser().resolve()
    if not file.is_file():
        raise XlingError(f"{file}: no such GGUF file")
    if not _has_gguf_reader():
        raise XlingError("reading GGUF files needs the gguf package: pip install gguf==0.19.0 (it is in "
                         "requirements.txt)")
    folder, name = str(file.parent), file.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=getattr(torch, dtype),
                                                     quantization_config=GgufConfig(dequantize=True))
    except Exception as e:  # a malformed file, an architecture transformers does not read, ...
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise XlingError(f"transformers cannot load {file} as a causal LM ({type(e).__name__}: {first}); "
                         "its GGUF support covers llama, mistral, qwen2, qwen3, gemma, phi3 and a few other "
                         "architectures") from None
    special_tokens(file, tokenizer, model)
    dense(model)
    return model, tokenizer


def dense(model) -> None:
    """Drop the GGUF quantizer from a model whose weights were all unpacked to float (what
    `GgufConfig(dequantize=True)` asks for), so that it saves as an ordinary checkpoint
    (transformers refuses to `save_pretrained` a model that still carries it)."""
    packed = [name for name, m in model.named_modules() if type(m).__name__.startswith("Gguf")]
    if packed:
        raise XlingError(f"transformers kept {len(packed)} GGUF layers packed (e.g. {packed[0]}); xling needs a "
                         "dense model")
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)


SPECIAL = {"bos_token": "bos_token_id", "eos_token": "eos_token_id", "pad_token": "padding_token_id"}


def special_tokens(file: Path, tokenizer, model) -> dict[str, str]:
    """Set the tokenizer's (and the generation config's) BOS, EOS and padding tokens from the file's
    `tokenizer.ggml.*_token_id` metadata.

    transformers 5.17's converter for llama-architecture GGUF vocabularies swaps BOS and EOS
    (integrations/ggml.py, GGUFLlamaConverter.tokenizer: `eos_token = proto.tokens[proto.bos_token_id]`
    and `self.additional_kwargs["eos_token"] = bos_token`): SmolLM2's tokenizer would stop at
    `<|im_start|>`. The file's own ids are the truth; returns what was set.
    """
    from transformers.integrations.gguf import read_gguf_metadata

    metadata, _ = read_gguf_metadata(str(file))
    out = {}
    for attr, key in SPECIAL.items():
        token_id = metadata.get(f"tokenizer.ggml.{key}")
        if isinstance(token_id, int) and 0 <= token_id < len(tokenizer):
            token = tokenizer.convert_ids_to_tokens(token_id)
            setattr(tokenizer, attr, token)
            out[attr] = token
            gen = getattr(model, "generation_config", None)
            if gen is not None:
                setattr(gen, f"{attr}_id", token_id)
            setattr(model.config, f"{attr}_id", token_id)
    return out


def _has_gguf_reader() -> bool:
    import importlib.util

    return importlib.util.find_spec("gguf") is not None


def convert(file: Path, out: Path) -> Path:
    """Load `file` with transformers and save it as a checkpoint folder `out` (atomically)."""
    from xling.common.console import console

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        with console.status(f"reading {file.name} (GGUF) with transformers"):
            model, tokenizer = load(file)
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            (tmp / "xling_gguf.json").write_text(json.dumps({"gguf_file": str(file.resolve()),
                                                             "size": file.stat().st_size}, indent=2) + "\n")
        shutil.rmtree(out, ignore_errors=True)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    console.print(f"GGUF model {file.name}: converted once to {out}", markup=False, soft_wrap=True)
    return out


def resolve(name: str) -> str:
    """`name` unchanged, or, when it names a GGUF model, the folder of its converted checkpoint."""
    file = gguf_file(name)
    if file is None:
        return name
    out = cache_dir(file)
    if not (out / "xling_gguf.json").is_file():
        convert(file, out)
    return str(out)
