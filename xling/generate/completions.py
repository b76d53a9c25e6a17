"""The completion cache: one JSONL per (model, adapter, benchmark, language), resumable.

A shard file holds one line per sample: ``{"id", "sample", "text", "finish_reason", "tokens",
"prompt", "seed", "backend"}``. Lines are appended (and fsynced) as each generation call returns,
so a crash loses at most the call in flight. A shard is a `xling.common.store` keyed by (id, sample):
a torn last line is not read and is cut off before the next append, any malformed line is
ignored, and the last line of a (id, sample) wins; an item counts as done when samples 0…n−1 are
all there. A record whose `prompt` differs from the prompt the shard renders
now (a changed chat template or tokenizer), or whose `backend` is not the shard's, is stale: its
item is generated again and the new lines win, so old and new completions are never mixed in an
item. A re-run generates only the missing and stale items; a finished shard is never touched.

The folder of a model's shards is named after a hash (`xling.common.store.fingerprint`, 10 hex
digits) of everything that changes the completions
(see `xling.evaluation.runner.generation_settings`): model and adapter, backend, dtype and device,
template, prompt, sampling settings and seed. A local model or adapter folder enters the hash by
its path and by `local_fingerprint`, the names, sizes and modification times of its weight and
config files, so retraining an adapter into the same folder starts fresh files; a hub id enters
by name only (a new revision of the same id is not noticed: clear the cache or pin a local copy).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from xling.common.store import Store
from xling.generate.sampling import SamplingSection


def slug(text: str, limit: int = 48) -> str:
    """A file-name-safe version of a model name."""
    s = re.sub(r"[^A-Za-z0-9._+-]+", "_", str(text)).strip("._")
    return (s or "model")[:limit]


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
CONFIG_FILES = ("config.json", "generation_config.json", "adapter_config.json")


def local_fingerprint(path: str | Path | None) -> list | None:
    """[name, size, mtime_ns] of the weight and config files of a local model or adapter folder.

    Weights are the top-level files ending in .safetensors, .bin, .pt, .pth or .gguf (and their
    *.index.json), config files are config.json, generation_config.json and adapter_config.json.
    None where `path` is not a local folder or file (a hub id): it is then known by name only.
    """
    if not path:
        return None
    p = Path(path).expanduser()
    if p.is_file():
        p = p.parent
    if not p.is_dir():
        return None
    out = []
    for f in sorted(p.iterdir()):
        name = f.name
        if not (name.endswith(WEIGHT_SUFFIXES) or name in CONFIG_FILES or name.endswith(".index.json")):
            continue
        try:
            st = f.stat()
        except OSError:
            continue
        if f.is_file():
            out.append([name, st.st_size, st.st_mtime_ns])
    return out


def stable_seed(*parts: object) -> int:
    """A 31-bit seed from any values (stable across runs and machines)."""
    digest = hashlib.sha1("\x1f".join(map(str, parts)).encode()).hexdigest()
    return int(digest[:8], 16) & 0x7FFFFFFF


def shard_store(path: Path) -> Store:
    """The store of one shard: records keyed by (id, sample), each with its text."""
    return Store(path, key=lambda rec: (str(rec["id"]), rec["sample"]),
                 valid=lambda rec: isinstance(rec.get("sample"), int) and "text" in rec)


def read_shard(path: Path) -> dict[tuple[str, int], dict]:
    """(id, sample) -> record, ignoring malformed lines and a torn last line; later lines win."""
    return shard_store(path).records  # type: ignore[return-value]


def append_records(path: Path, records: Iterable[dict]) -> None:
    """Append records to a shard (a torn last line cut first); a shard that cannot be written is a
    one-line XlingError naming it."""
    shard_store(path).append(records)


@dataclass
class Shard:
    """The completions of one model on one benchmark in one language."""

    model: str  # display name
    benchmark: str
    lang: str
    path: Path
    ids: list[str]
    conversations: dict[str, list[dict]]  # id -> messages
    n: int
    seed: int
    prompts: dict[str, str] | None = None  # id -> the prompt text rendered now (None: not checked)
    backend: str | None = None  # the backend that must have written the records (None: not checked)
    done: dict[str, list[dict]] = field(default_factory=dict)  # id -> n records, sample order
    stale: int = 0  # items with a record whose prompt or backend is not this shard's (generated again)

    def fresh(self, item_id: str, rec: dict | None) -> bool:
        """Whether a record is there and was generated from this shard's prompt on its backend."""
        if rec is None:
            return False
        if self.prompts is not None and rec.get("prompt") != self.prompts.get(item_id):
            return False
        return self.backend is None or rec.get("backend") == self.backend

    def load(self) -> "Shard":
        recs = read_shard(self.path)
        self.done, self.stale = {}, 0
        for i in self.ids:
            samples = [recs.get((i, k)) for k in range(self.n)]
            if all(self.fresh(i, s) for s in samples):
                self.done[i] = samples  # type: ignore[assignment]
            elif any(s is not None and not self.fresh(i, s) for s in samples):
                self.stale += 1
        return self

    @property
    def pending(self) -> list[str]:
        return [i for i in self.ids if i not in self.done]

    @property
    def complete(self) -> bool:
        return not self.pending

    def records(self) -> list[list[dict]]:
        """The n records of every item, in item order (the shard must be complete)."""
        return [self.done[i] for i in self.ids]


@dataclass(kw_only=True)
class GenerationSettings(SamplingSection):
    """What one generation call of a shard's items samples with (`xling.generate.sampling.SamplingSection`)."""

    n: int  # samples per conversation
    chunk: int  # conversations per generation call


def generate_shards(shards: Sequence[Shard], get_generator: Callable[[], object], settings_for: Callable[[Shard], GenerationSettings],
                    progress: Callable[[int, int], None] | None = None, chunk: int = 64) -> dict:
    """Fill every shard's missing items, calling the generator in chunks of `chunk` conversations.

    Items of consecutive shards with the same sampling settings share a call (large calls keep
    vLLM busy); each call's results are appended to their shards before the next call starts.
    `get_generator` is called only if something is missing (or stale). Returns counts.
    """
    for s in shards:
        s.load()
    finished_before = sum(s.complete for s in shards)
    work: list[tuple[Shard, str]] = [(s, i) for s in shards for i in s.pending]
    stats = {"shards": len(shards), "shards_cached": finished_before, "items_cached": sum(len(s.done) for s in shards),
             "items_stale": sum(s.stale for s in shards), "items_generated": 0, "calls": 0, "tokens": 0}
    if not work:
        return stats
    generator = get_generator()
    total = len(work)
    pos = 0
    while pos < len(work):
        first = settings_for(work[pos][0])
        batch = [work[pos]]
        pos += 1
        while pos < len(work) and len(batch) < max(1, chunk) and settings_for(work[pos][0]) == first:
            batch.append(work[pos])
            pos += 1
        convs = [shard.conversations[i] for shard, i in batch]
        seeds = [stable_seed(shard.seed, shard.benchmark, shard.lang, i) for shard, i in batch]
        out = generator.chat(convs, n=first.n, temperature=first.temperature, top_p=first.top_p,  # type: ignore[attr-defined]
                             max_tokens=first.max_tokens, seed=seeds[0], seeds=seeds)
        stats["calls"] += 1
        by_shard: dict[int, list[dict]] = {}
        backend = getattr(generator, "backend", None)
        for (shard, i), samples, seed in zip(batch, out, seeds):
            if len(samples) != first.n:
                raise RuntimeError(f"the generator returned {len(samples)} samples for {first.n} asked")
            prompt = _prompt_text(generator, shard.conversations[i])
            if shard.prompts is not None and prompt != shard.prompts.get(i):
                raise RuntimeError(f"{shard.model} {shard.benchmark}/{shard.lang} {i}: the generator rendered another "
                                   "prompt than the cache expects (tokenizer or chat template differ)")
            if shard.backend is not None and backend != shard.backend:
                raise RuntimeError(f"the generator's backend is {backend}, the cache's {shard.backend}")
            recs = [{"id": i, "sample": k, "text": s.text, "finish_reason": s.finish_reason, "tokens": s.tokens,
                     "seed": seed, "prompt": prompt, "backend": backend} for k, s in enumerate(samples)]
            by_shard.setdefault(id(shard), []).extend(recs)
            shard.done[i] = recs
            stats["tokens"] += sum(s.tokens for s in samples)
        for shard in {id(s): s for s, _ in batch}.values():
            append_records(shard.path, by_shard[id(shard)])
        stats["items_generated"] += len(batch)
        if progress:
            progress(len(batch), total)
    return stats


def _prompt_text(generator: object, conversation: list[dict]) -> str | list[dict]:
    render = getattr(generator, "render", None)
    if callable(render):
        try:
            return render(conversation)
        except Exception:
            pass
    return conversation
