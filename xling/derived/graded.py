"""Sample answers to problems chunk by chunk and grade them: the loop the pivot stage and RFT share.

    def save(chunk):  # [(problem, its n samples, their grades)]
        store.append([record(problem, samples, grades) for problem, samples, grades in chunk])

    sample_graded(todo, make_generator, save, messages=..., seed_of=..., gold=..., n=4, temperature=1.0,
                  top_p=1.0, max_tokens=1024, seed=0, chunk=64, label="sample")

Each chunk of `chunk` problems is one call of a `xling.generate` generator (`make_generator()` is
called once, and only when there is something to do), each problem seeded by `seed_of(problem)`
whatever chunk it falls in; its n samples are graded by the one grader (`xling.grading.answers`)
against `gold(problem)` = (answer, language, kind). `save` stores a chunk's records before the next
chunk is sampled, so an interruption loses at most the chunk in flight. The generator and the
grader are closed at the end, also when something fails or the run is interrupted.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from xling.common.console import console
from xling.common.errors import XlingError


Chunk = list[tuple[Any, list, list]]  # (problem, its n samples, their grades) per problem of a chunk


def sample_graded(problems: Sequence[Any], make_generator: Callable[[], Any], save: Callable[[Chunk], None], *,
                  messages: Callable[[Any], list[dict]], seed_of: Callable[[Any], int],
                  gold: Callable[[Any], tuple[str, str, str]], n: int, temperature: float, top_p: float,
                  max_tokens: int, seed: int, chunk: int, label: str) -> None:
    """Sample and grade `problems` chunk by chunk, `save` each chunk, with a progress bar named `label`."""
    if not problems:
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from xling.grading.answers import Grader

    generator = make_generator()
    golds = [gold(p) for p in problems]
    grader = Grader(timeout=5.0, workers=None if any(kind == "math" for _, _, kind in golds) else 0)
    try:
        with Progress(TextColumn(f"[bold]{label}[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("eta"),
                      TimeRemainingColumn(), console=console, transient=True) as progress:
            bar = progress.add_task(label, total=len(problems))
            for start in range(0, len(problems), max(1, chunk)):
                part = problems[start:start + max(1, chunk)]
                part_golds = golds[start:start + len(part)]
                outs = generator.chat([messages(p) for p in part], n=n, temperature=temperature, top_p=top_p,
                                      max_tokens=max_tokens, seed=seed, seeds=[seed_of(p) for p in part])
                if len(outs) != len(part):
                    raise XlingError(f"the generator returned {len(outs)} results for {len(part)} problems")
                texts, answers, langs, kinds = [], [], [], []
                for samples, (answer, lang, kind) in zip(outs, part_golds):
                    for s in samples:
                        texts.append(s.text)
                        answers.append(answer)
                        langs.append(lang)
                        kinds.append(kind)
                grades = iter(grader.grade_batch(texts, answers, langs, kinds))
                save([(p, list(samples), [next(grades) for _ in samples]) for p, samples in zip(part, outs)])
                progress.advance(bar, len(part))
    finally:
        grader.close()
        close = getattr(generator, "close", None)
        if callable(close):
            close()
