"""Benchmark of grading: how right is the grader, and how much of a GRPO step does it cost?

    python -m xling.perf.grading [--only accuracy|speed] [--n 2048] [--chars 2000] [--workers N] [--json FILE]

Accuracy: the labelled set of `xling.perf.labelled` (real-looking completions in the 11 languages:
boxed, unboxed LaTeX, hedged, multi-part, revised, letters, numbers with separators), graded by
xling's grader and by math-verify called directly (gold first); agreements with the labels per kind
and form, and the wrong answers each marked right (generous) and right ones marked wrong (strict).

Speed: builds `--n` synthetic completions of about `--chars` characters in all 11 languages, with the
answer formats models produce (boxes, boxes with units, localized cues, a bare last number, several
boxes, locale number formats, native digits), and measures completions per second, in this process
(serial, one core) and with the worker pool, for: extraction alone; extraction + verification of
the `number` kind and of the `math` kind (math-verify; gold answers that need it: fractions,
radicals, intervals); and each language-ID backend. It prints per-core figures and a projection to
a 16-core GPU host, and what grading one step of 2,048 completions costs there.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import sys
import time
from typing import Callable

from xling.grading.answers import Grader, extract
from xling.grading.workers import WorkerPool
from xling.common.console import console, print_table
from xling.data.languages import CODES, LANGUAGES
from xling.grading.langid import BACKENDS, DEFAULT_MIN_CHARS, _prepare, detect_batch

STEP = 2048  # completions per GRPO step (128 questions x 16 rollouts)
TARGET_CORES = 16
EFFICIENCY = 0.8  # assumed parallel efficiency of the worker processes on the target host

# Reasoning text per language: sentences without numbers, and steps with slots {a} {b} {c}.
TEXT = {
    "en": (["Let us read the problem carefully and write down what we know.",
            "We need to keep track of every quantity before combining them.",
            "Next, we check that the units match so that the sum makes sense."],
           ["If there are {a} boxes with {b} items each, then there are {a} × {b} = {c} items.",
            "Adding {a} and {b} gives {c} in total.", "After removing {b} from {a}, we are left with {c}."]),
    "es": (["Leamos el problema con atención y anotemos los datos que conocemos.",
            "Debemos llevar la cuenta de cada cantidad antes de combinarlas.",
            "Después comprobamos que las unidades coinciden para que la suma tenga sentido."],
           ["Si hay {a} cajas con {b} objetos cada una, entonces hay {a} × {b} = {c} objetos.",
            "Sumando {a} y {b} obtenemos {c} en total.", "Al quitar {b} de {a}, nos quedan {c}."]),
    "ru": (["Внимательно прочитаем условие задачи и запишем, что нам известно.",
            "Нужно учесть каждую величину, прежде чем их объединять.",
            "Затем проверим, что единицы измерения совпадают, чтобы сумма имела смысл."],
           ["Если есть {a} коробок по {b} предметов в каждой, то всего {a} × {b} = {c} предметов.",
            "Сложив {a} и {b}, получаем {c}.", "Если убрать {b} из {a}, останется {c}."]),
    "de": (["Lesen wir die Aufgabe sorgfältig und schreiben wir auf, was wir wissen.",
            "Wir müssen jede Größe im Blick behalten, bevor wir sie zusammenfassen.",
            "Danach prüfen wir, ob die Einheiten übereinstimmen, damit die Summe sinnvoll ist."],
           ["Wenn es {a} Kisten mit je {b} Gegenständen gibt, dann sind es {a} × {b} = {c} Gegenstände.",
            "Addieren wir {a} und {b}, erhalten wir insgesamt {c}.",
            "Nachdem wir {b} von {a} abgezogen haben, bleiben {c} übrig."]),
    "fr": (["Lisons attentivement l'énoncé et notons ce que nous savons.",
            "Nous devons suivre chaque quantité avant de les combiner.",
            "Ensuite, nous vérifions que les unités correspondent pour que la somme ait un sens."],
           ["S'il y a {a} boîtes de {b} objets chacune, alors il y a {a} × {b} = {c} objets.",
            "En ajoutant {a} et {b}, on obtient {c} au total.", "Après avoir retiré {b} de {a}, il reste {c}."]),
    "bn": (["আসুন প্রশ্নটি মনোযোগ দিয়ে পড়ি এবং যা জানি তা লিখে রাখি।",
            "সবগুলো একসাথে করার আগে প্রতিটি পরিমাণের হিসাব রাখতে হবে।",
            "এরপর আমরা দেখি এককগুলো মিলে যাচ্ছে কিনা, যাতে যোগফলটি অর্থবহ হয়।"],
           ["যদি {a}টি বাক্সে প্রতিটিতে {b}টি করে জিনিস থাকে, তবে মোট {a} × {b} = {c}টি জিনিস আছে।",
            "{a} এবং {b} যোগ করলে মোট {c} হয়।", "{a} থেকে {b} বাদ দিলে থাকে {c}।"]),
    "th": (["เรามาอ่านโจทย์อย่างละเอียดและจดสิ่งที่เรารู้ไว้ก่อน",
            "เราต้องติดตามปริมาณแต่ละอย่างก่อนที่จะนำมารวมกัน",
            "จากนั้นเราตรวจสอบว่าหน่วยตรงกันเพื่อให้ผลรวมมีความหมาย"],
           ["ถ้ามีกล่อง {a} กล่อง กล่องละ {b} ชิ้น ก็จะมีทั้งหมด {a} × {b} = {c} ชิ้น",
            "เมื่อนำ {a} บวกกับ {b} จะได้ทั้งหมด {c}", "เมื่อนำ {b} ออกจาก {a} จะเหลือ {c}"]),
    "sw": (["Hebu tusome swali kwa makini na tuandike tunachokijua.",
            "Tunahitaji kufuatilia kila kiasi kabla ya kuviunganisha.",
            "Kisha tunahakikisha kwamba vipimo vinalingana ili jumla iwe na maana."],
           ["Ikiwa kuna masanduku {a} yenye vitu {b} kila moja, basi kuna vitu {a} × {b} = {c}.",
            "Tukijumlisha {a} na {b} tunapata {c} kwa jumla.", "Baada ya kutoa {b} kutoka {a}, tunabaki na {c}."]),
    "zh": (["我们先仔细读题，把已知条件写下来。", "在合并之前，我们需要记录每一个数量。",
            "接着检查单位是否一致，这样求和才有意义。"],
           ["如果有 {a} 个盒子，每个盒子有 {b} 件物品，那么一共有 {a} × {b} = {c} 件物品。",
            "把 {a} 和 {b} 相加，总共得到 {c}。", "从 {a} 中减去 {b}，还剩下 {c}。"]),
    "ja": (["まず問題をよく読み、分かっていることを書き出しましょう。", "まとめる前に、それぞれの数量を確認する必要があります。",
            "次に、合計が意味を持つように単位がそろっているかを確かめます。"],
           ["箱が {a} 個あり、それぞれに {b} 個の品物が入っているなら、全部で {a} × {b} = {c} 個です。",
            "{a} と {b} を足すと、合計は {c} になります。", "{a} から {b} を引くと、残りは {c} です。"]),
    "te": (["ముందుగా ప్రశ్నను జాగ్రత్తగా చదివి, మనకు తెలిసిన విషయాలను రాసుకుందాం.",
            "అన్నింటినీ కలిపే ముందు ప్రతి పరిమాణాన్ని లెక్కలో ఉంచుకోవాలి.",
            "తర్వాత మొత్తానికి అర్థం ఉండేలా యూనిట్లు సరిపోతున్నాయో లేదో చూస్తాం."],
           ["{a} పెట్టెలు ఉండి, ఒక్కో పెట్టెలో {b} వస్తువులు ఉంటే, మొత్తం {a} × {b} = {c} వస్తువులు ఉంటాయి.",
            "{a} మరియు {b} కలిపితే మొత్తం {c} వస్తుంది.", "{a} నుండి {b} తీసివేస్తే {c} మిగులుతుంది."]),
}

# Math-kind answers that need math-verify: (gold, equivalent forms, a wrong form), from p, q, r.
MATH_FORMS: list[tuple[Callable, list[Callable], Callable]] = [
    (lambda p, q, r: f"\\frac{{{p}}}{{{q}}}",
     [lambda p, q, r: f"\\dfrac{{{p}}}{{{q}}}", lambda p, q, r: f"{p}/{q}", lambda p, q, r: f"\\frac{{{2 * p}}}{{{2 * q}}}"],
     lambda p, q, r: f"\\frac{{{p + r}}}{{{q}}}"),
    (lambda p, q, r: f"\\sqrt{{{p}}}",
     [lambda p, q, r: f"{p}^{{1/2}}", lambda p, q, r: f"\\sqrt {p}"], lambda p, q, r: f"\\sqrt{{{p + r}}}"),
    (lambda p, q, r: f"(-\\infty, {p}]",
     [lambda p, q, r: f"(-\\infty,{p}]", lambda p, q, r: f"\\left(-\\infty, {p}\\right]"],
     lambda p, q, r: f"(-\\infty, {p + r})"),
    (lambda p, q, r: f"{p}\\sqrt{{2}}",
     [lambda p, q, r: f"\\sqrt{{2}}\\cdot {p}", lambda p, q, r: f"\\sqrt{{{2 * p * p}}}"],
     lambda p, q, r: f"{p + r}\\sqrt{{2}}"),
    (lambda p, q, r: f"\\frac{{{p}\\pi}}{{{q}}}",
     [lambda p, q, r: f"\\frac{{{p}}}{{{q}}}\\pi", lambda p, q, r: f"\\dfrac{{{p}\\pi}}{{{q}}}"],
     lambda p, q, r: f"\\frac{{{p + r}\\pi}}{{{q}}}"),
]
ROLLOUTS = 16  # completions per question in a GRPO step


def locale_number(n: int, lang: str, rng: random.Random) -> str:
    """`n` as a speaker of `lang` might write it."""
    text = str(n)
    if n >= 1000:
        sep = {"de": ".", "es": ".", "fr": "\u202f", "ru": " "}.get(lang, ",")
        text = f"{n:,}".replace(",", sep)
    digits = LANGUAGES[lang].digits
    if digits and rng.random() < 0.5:
        text = text.translate({ord(str(i)): d for i, d in enumerate(digits)})
    return text


def reasoning(lang: str, chars: int, rng: random.Random) -> str:
    """About `chars` characters of step-by-step reasoning in `lang`, with locale numbers."""
    intros, steps = TEXT[lang]
    parts: list[str] = []
    while sum(len(p) + 1 for p in parts) < chars - 120:
        if rng.random() < 0.4:
            parts.append(rng.choice(intros))
        else:
            a, b = rng.randint(2, 90), rng.randint(2, 60)
            c = a * b * (1000 if rng.random() < 0.2 else 1)
            parts.append(rng.choice(steps).format(a=locale_number(a, lang, rng), b=locale_number(b, lang, rng),
                                                  c=locale_number(c, lang, rng)))
    return " ".join(parts)


def number_completion(lang: str, chars: int, rng: random.Random) -> tuple[str, str]:
    """(a synthetic MGSM-style completion, its gold answer), in one of five answer formats."""
    value = rng.randint(1, 5000) * (1000 if rng.random() < 0.15 else 1)
    shown = value if rng.random() < 0.7 else value + rng.randint(1, 9)
    number = locale_number(shown, lang, rng)
    cue = LANGUAGES[lang].answer_cues[0]
    end = [f"\\boxed{{{number}}}", f"$\\boxed{{{number} \\text{{ units}}}}$", f"{cue.capitalize()} {number}.",
           f"\\boxed{{{rng.randint(1, 99)}}} ... \\boxed{{{number}}}", f"= {number}"][rng.randrange(5)]
    return f"{reasoning(lang, chars, rng)}\n\n{end}", str(value)


def corpus(n: int, chars: int, kind: str, seed: int) -> tuple[list[str], list[str], list[str]]:
    """(completions, gold answers, languages). The math kind is shaped like a GRPO step: questions
    with `ROLLOUTS` completions each, their final answers in varied equivalent or wrong forms."""
    rng = random.Random(seed)
    langs = [CODES[(i // (ROLLOUTS if kind == "math" else 1)) % len(CODES)] for i in range(n)]
    texts, golds = [], []
    question = None
    for i, lang in enumerate(langs):
        if kind != "math":
            text, gold = number_completion(lang, chars, rng)
        else:
            if i % ROLLOUTS == 0:
                question = (rng.choice(MATH_FORMS), rng.randint(2, 40), rng.randint(41, 97))
            (gold_f, same_fs, wrong_f), p, q = question
            r = rng.randint(1, 9)
            gold = gold_f(p, q, r)
            pred = (rng.choice(same_fs) if rng.random() < 0.6 else wrong_f)(p, q, r)
            text = f"{reasoning(lang, chars, rng)}\n\nTherefore the final answer is $\\boxed{{{pred}}}$."
        texts.append(text)
        golds.append(gold)
    return texts, golds, langs


def timed(fn: Callable[[], object], n: int, repeat: int) -> tuple[float, float]:
    """(completions per second, this process's CPU seconds per completion), best of `repeat` runs."""
    best: tuple[float, float] | None = None
    for _ in range(max(1, repeat)):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if best is None or wall < best[0]:
            best = (wall, cpu)
    assert best is not None
    return n / max(best[0], 1e-9), best[1] / n


def measure(n: int, chars: int, workers: int, backends: list[str], kinds: list[str], seed: int,
            repeat: int = 2) -> list[dict]:
    """Rows of completions per second: `serial` (this process, one core) and `pool` (as the
    rewards run it), with `parent_cpu`, the CPU seconds per completion spent outside the workers."""
    # Worker processes look functions up by module: under `python -m` this one is __main__, so use
    # the importable copy of it.
    this = importlib.import_module("xling.perf.grading")
    rows: list[dict] = []
    pool = WorkerPool(workers)
    t0 = time.perf_counter()
    pool.map(len, [("warm",)] * workers, timeout=60)
    console.print(f"worker pool: {workers} processes started in {time.perf_counter() - t0:.2f}s", markup=False)

    def row(stage: str, serial_fn: Callable, pool_fn: Callable | None, parent_cpu: float | None = None) -> None:
        serial, _ = timed(serial_fn, n, repeat)
        out = {"stage": stage, "serial": serial}
        if pool_fn is not None:
            out["pool"], out["parent_cpu"] = timed(pool_fn, n, repeat)
            if parent_cpu is not None:
                out["parent_cpu"] = parent_cpu
        rows.append(out)

    texts, golds, langs = corpus(n, chars, "number", seed)
    row("extraction", lambda: [extract(t, "number", l) for t, l in zip(texts, langs)], None)
    if "number" in kinds:
        row("grade number", lambda: Grader(workers=0).grade_batch(texts, golds, langs, "number"),
            lambda: Grader(pool=pool, parallel_min=1).grade_batch(texts, golds, langs, "number"))
    if "math" in kinds:
        mtexts, mgolds, mlangs = corpus(n, chars, "math", seed + 1)
        # fresh graders, so no run finds the (gold, prediction) verdicts of an earlier one cached
        row("grade math (math-verify)", lambda: Grader(workers=0).grade_batch(mtexts, mgolds, mlangs, "math"),
            lambda: Grader(pool=pool, parallel_min=1).grade_batch(mtexts, mgolds, mlangs, "math"))
    for backend in backends:
        detect_batch(texts[:4], backend)  # load the models outside the timing
        if backend == "lingua":  # in this process: cleaning here, then lingua's own threads
            _, prep = timed(lambda: [_prepare(t, DEFAULT_MIN_CHARS, False, CODES) for t in texts], n, 1)
            row("language ID lingua", lambda: [detect_batch([t], backend) for t in texts],
                lambda: detect_batch(texts, backend), parent_cpu=prep)
        else:
            pool.map(this._warm_langid, [(backend,)] * workers, timeout=120)
            row(f"language ID {backend}", lambda: [detect_batch([t], backend) for t in texts],
                lambda: detect_batch(texts, backend, pool=pool))
    pool.close()
    for r in rows:
        project(r)
    return rows


def project(row: dict, cores: int = TARGET_CORES, efficiency: float = EFFICIENCY) -> None:
    """Add the projected rate on `cores`: the CPU time per completion spent outside the workers
    (measured) stays serial, the rest (the serial rate's) is spread over `cores` at `efficiency`."""
    if "parent_cpu" not in row:
        return
    work = 1 / row["serial"]
    parent = min(row["parent_cpu"], work) if row["stage"].endswith("lingua") else row["parent_cpu"]
    rest = work - parent if row["stage"].endswith("lingua") else work
    per_item = parent + rest / (cores * efficiency)
    row["projected"] = 1 / per_item
    row["step_seconds"] = STEP * per_item


def _warm_langid(backend: str) -> None:
    detect_batch(["Warming up the language identifier with a plain English sentence."], backend)


def accuracy_figures(sample: int = 1) -> dict:
    """Grade the labelled set (every `sample`-th case) with xling and with math-verify."""
    from xling.perf.labelled import accuracy, cases

    labelled = cases()[::max(1, sample)]
    result = accuracy(labelled)
    return {"n": len(labelled), "rows": result["rows"], "seconds": result["seconds"]}


def accuracy_table(sample: int = 1) -> dict:
    """`accuracy_figures` in a worker process of its own (what it loads must not weigh on the speed
    figures), printed per kind and form; returns the figures."""
    this = importlib.import_module("xling.perf.grading")
    with WorkerPool(1) as worker:
        (result, error), = worker.map(this.accuracy_figures, [(sample,)], timeout=3600)
    if error:
        raise RuntimeError(f"the accuracy benchmark failed: {error}")
    rows = []
    for key in sorted(result["rows"], key=lambda k: (k.split(" / ")[0], " / " in k, k)):
        r = result["rows"][key]
        cells = [key if " / " not in key else "  " + key.split(" / ", 1)[1], str(r["n"])]
        for name in ("xling", "math-verify"):
            c = r[name]
            cells += [f"{100 * c['agree'] / r['n']:.1f}", str(c["generous"]), str(c["strict"])]
        rows.append(cells)
    print_table(f"accuracy on {result['n']} labelled completions: agreement with the label (%), wrong answers marked "
                "right (generous), right answers marked wrong (strict)",
                ["kind / form", "n", "xling %", "generous", "strict", "math-verify %", "generous", "strict"], rows,
                note="math-verify: verify(parse(gold), parse(completion)), gold first, the gold in $...$; for letters "
                     "with its StringExtractionConfig(A-J). Forms 'other (not written for)' were labelled before xling "
                     f"graded them. Seconds: xling {result['seconds']['xling']:.1f}, math-verify "
                     f"{result['seconds']['math-verify']:.1f} (one process).")
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m xling.perf.grading", description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=STEP, help="completions to grade (default %(default)s)")
    ap.add_argument("--chars", type=int, default=2000, help="characters per completion (default %(default)s)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes (default: all cores)")
    ap.add_argument("--backends", default=",".join(BACKENDS), help="language-ID backends (default %(default)s)")
    ap.add_argument("--kinds", default="number,math", help="answer kinds to time (default %(default)s)")
    ap.add_argument("--repeat", type=int, default=2, help="runs per measurement, the best counts (default %(default)s)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--only", choices=("accuracy", "speed"), help="run one part only (default: both)")
    ap.add_argument("--sample", type=int, default=1, help="accuracy on every Nth labelled case (default: all)")
    args = ap.parse_args(argv)
    backends = [b for b in args.backends.split(",") if b]
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or args.n < 1 or args.workers < 1 or args.chars < 100:
        ap.error(f"unknown backend {unknown[0]}" if unknown else "--n and --workers must be positive, --chars at least 100")
    figures: dict = {}
    if args.only != "speed":
        figures["accuracy"] = accuracy_table(args.sample)
    if args.only == "accuracy":
        if args.json:
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump(figures, f, indent=2)
        return 0
    cores = os.cpu_count() or 1
    console.print(f"{args.n} synthetic completions of ~{args.chars} characters in {len(CODES)} languages; "
                  f"{args.workers} workers on {cores} cores", markup=False)
    rows = measure(args.n, args.chars, args.workers, backends, args.kinds.split(","), args.seed, args.repeat)
    table = [[r["stage"], f"{r['serial']:,.0f}", f"{r['pool']:,.0f}" if r.get("pool") else "-",
              f"{1000 * r['parent_cpu']:.3f}" if "parent_cpu" in r else "-",
              f"{r['projected']:,.0f}" if "projected" in r else "-",
              f"{r['step_seconds']:.2f}" if "step_seconds" in r else "-"] for r in rows]
    print_table(f"completions per second: serial = one core here; pool = {args.workers} workers on {cores} cores",
                ["stage", "serial /s (per core)", "pool /s", "parent ms/compl.", f"{TARGET_CORES} cores /s (proj.)",
                 f"s per {STEP} on {TARGET_CORES} cores"], table,
                note=f"projection: the parent's CPU time per completion stays serial, the rest runs on {TARGET_CORES} "
                     f"workers at {EFFICIENCY:.0%} efficiency; {STEP} completions = one GRPO step (128 questions x 16). "
                     "Best of --repeat runs.")
    by = {r["stage"]: r for r in rows}
    for backend in backends:
        parts = [p for p in (by.get("grade math (math-verify)"), by.get(f"language ID {backend}")) if p and "step_seconds" in p]
        total = sum(p["step_seconds"] for p in parts)
        console.print(f"paper reward (accuracy on math + format + language via {backend}): {total:.2f}s per "
                      f"{STEP}-completion step on {TARGET_CORES} cores (projected)", markup=False)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"n": args.n, "chars": args.chars, "workers": args.workers, "cores": cores, "rows": rows, **figures},
                      f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
