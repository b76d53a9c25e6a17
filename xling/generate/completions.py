"""The completion cache: one JSONL per (model, adapter, benchmark, language), resumable.

A shard file holds one line per sample: ``{"id", "sample", "text", "finish_reason", "tokens",
"prompt", "seed", "backend"}``. Lines are appended (and fsynced) as each generation call returns,
so a crash loses at most the call in flight. On reading, a torn last line is cut off (and any
malformed line ignored); an item counts as done when samples 0…n−1 are all there, and the last
line of a (id, sample) wins. A re-run generates only the missing items; a finished shard is never
touched. The folder of a model's shards is named after a hash of everything that changes the
completions (model, adapter, template, prompt, sampling settings, seed), so changing a setting
starts fresh files instead of mixing old and new completions.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ..io import _json_safe


def slug(text: str, limit: int = 48) -> str:
    """A file-name-safe version of a model name."""
    s = re.sub(r"[^A-Za-z0-9._+-]+", "_", str(text)).strip("._")
    return (s or "model")[:limit]


def fingerprint(settings: dict) -> str:
    return hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:10]


def stable_seed(*parts: object) -> int:
    """A 31-bit seed from any values (stable across runs and machines)."""
    digest = hashlib.sha1("\x1f".join(map(str, parts)).encode()).hexdigest()
    return int(digest[:8], 16) & 0x7FFFFFFF


def repair_tail(path: Path) -> int:
    """Cut a torn last line (no newline at the end, as a crash mid-write leaves it); bytes cut."""
    if not path.exists():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with open(path, "rb+") as f:
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return 0
        # find the last newline
        pos, block = size, 4096
        keep = 0
        while pos > 0:
            start = max(0, pos - block)
            f.seek(start)
            chunk = f.read(pos - start)
            k = chunk.rfind(b"\n")
            if k >= 0:
                keep = start + k + 1
                break
            pos = start
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
    return size - keep


def read_shard(path: Path) -> dict[tuple[str, int], dict]:
    """(id, sample) -> record, ignoring malformed lines (a torn write); later lines win."""
    out: dict[tuple[str, int], dict] = {}
    if not path.exists():
        return out
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict) and "id" in rec and isinstance(rec.get("sample"), int) and "text" in rec:
                out[(str(rec["id"]), rec["sample"])] = rec
    return out


def append_records(path: Path, records: Iterable[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    repair_tail(path)
    data = "".join(json.dumps(_json_safe(r), ensure_ascii=False) + "\n" for r in records)
    with open(path, "a", encoding="utf-8") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


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
    done: dict[str, list[dict]] = field(default_factory=dict)  # id -> n records, sample order

    def load(self) -> "Shard":
        recs = read_shard(self.path)
        self.done = {}
        for i in self.ids:
            samples = [recs.get((i, k)) for k in range(self.n)]
            if all(s is not None for s in samples):
                self.done[i] = samples  # type: ignore[assignment]
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


@dataclass
class GenerationSettings:
    n: int
    temperature: float
    top_p: float
    max_tokens: int
    chunk: int  # conversations per generation call


def generate_shards(shards: Sequence[Shard], get_generator: Callable[[], object], settings_for: Callable[[Shard], GenerationSettings],
                    progress: Callable[[int, int], None] | None = None, chunk: int = 64) -> dict:
    """Fill every shard's missing items, calling the generator in chunks of `chunk` conversations.

    Items of consecutive shards with the same sampling settings share a call (large calls keep
    vLLM busy); each call's results are appended to their shards before the next call starts.
    `get_generator` is called only if something is missing. Returns counts.
    """
    for s in shards:
        s.load()
    finished_before = sum(s.complete for s in shards)
    work: list[tuple[Shard, str]] = [(s, i) for s in shards for i in s.pending]
    stats = {"shards": len(shards), "shards_cached": finished_before, "items_cached": sum(len(s.done) for s in shards),
             "items_generated": 0, "calls": 0, "tokens": 0}
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
        for (shard, i), samples, seed in zip(batch, out, seeds):
            if len(samples) != first.n:
                raise RuntimeError(f"the generator returned {len(samples)} samples for {first.n} asked")
            prompt = _prompt_text(generator, shard.conversations[i])
            recs = [{"id": i, "sample": k, "text": s.text, "finish_reason": s.finish_reason, "tokens": s.tokens,
                     "seed": seed, "prompt": prompt} for k, s in enumerate(samples)]
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
