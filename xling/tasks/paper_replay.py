"""Task `paper-replay`: the paper's parallel-scaling numbers, recomputed end to end.

From the published accuracies (Qwen2.5-7B-Instruct, multilingual MATH500, English + k parallel
languages, k = 0…7) it recomputes relative gains, MTI and mean accuracy, fits the Parallel
Scaling Law to both, and reports the First-Parallel Leap and the Monolingual Generalization Gap,
with a plot like the paper's Figure 4. It also writes the numbers as an accuracy table, so that
`python run.py transfer` can be tried on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from xling.analysis import metrics as M
from xling.common.config import Invalid, Recipe
from xling.common.console import console, fmt, print_table
from xling.common.errors import XlingError
from xling.common.io import read_json
from xling.data.languages import check_codes
from xling.analysis.scaling import PowerLawFit
from xling.report.table import Row, write_table

BUILT_IN = Path(__file__).resolve().parent.parent / "resources" / "paper_parallel_scaling.json"


@dataclass(kw_only=True)
class Config(Recipe):
    data: str | None = None  # JSON with the published numbers; None: the built-in copy
    fit_from: int = 2  # smallest X (training languages, English included) used in the fits
    plot: bool = True  # draw the scaling figure

    def check(self) -> None:
        if not 1 <= self.fit_from <= 6:
            raise Invalid("fit_from", f"must be between 1 and 6 (three points at least), got {self.fit_from}")


def load_numbers(path: str | Path | None) -> dict:
    data = read_json(path or BUILT_IN)
    need = ("langs", "order", "base", "trained")
    missing = [k for k in need if k not in data]
    if missing:
        raise XlingError(f"{path}: missing field(s) {', '.join(missing)}")
    langs = check_codes(data["langs"])
    check_codes(data["order"])
    rows = {int(k): v for k, v in data["trained"].items()}
    for name, vals in [("base", data["base"])] + [(f"trained[{k}]", v) for k, v in rows.items()]:
        if not isinstance(vals, list) or len(vals) != len(langs):
            got = f"{len(vals)} values" if isinstance(vals, list) else f"a {type(vals).__name__}"
            raise XlingError(f"{path}: {name} has {got} for {len(langs)} languages")
        wrong = [f"{lang}={v!r}" for lang, v in zip(langs, vals)
                 if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 100]
        if wrong:
            raise XlingError(f"{path}: {name} has accuracies that are not numbers from 0 to 100: {', '.join(wrong[:5])}")
    if sorted(rows) != list(range(len(rows))):
        raise XlingError(f"{path}: trained rows must be k = 0…K without gaps, got {sorted(rows)}")
    data["trained"] = rows
    return data


def members(data: dict) -> list:
    """k0…kK: English + the first k languages of the paper's order, compared with `base`; X = k + 1."""
    from xling.analysis.members import Member

    return [Member.of(f"k{k}", "base", ["en", *data["order"][:k]], k + 1) for k in sorted(data["trained"])]


def study(data: dict, fit_from: int = 2):
    """The published table as a study (`xling.analysis.study`): the same code that analyses every evaluation."""
    from xling.analysis import study as A

    langs = list(data["langs"])
    bench = data.get("benchmark", "math500")
    acc = {"base": {bench: dict(zip(langs, data["base"]))}}
    acc.update({f"k{k}": {bench: dict(zip(langs, accs))} for k, accs in data["trained"].items()})
    return A.analyze(None, members(data), {bench: langs}, accuracies=acc, fit_from=fit_from)


def replay(data: dict, fit_from: int = 2) -> dict:
    """Everything the paper derives from its parallel-scaling table."""
    from xling.analysis.study import scaling_of

    result = study(data, fit_from)
    bench = next(iter(result.summary.langs))
    per_k = {}
    for k in sorted(data["trained"]):
        r = result.summary.comparisons[f"k{k}"]
        per_k[k] = {
            "X": k + 1,
            "train_langs": r["train_langs"],
            "gain": r["gain"][bench],
            "train_gain": r["train_gain"][bench],
            "ti": r["ti"][bench],
            "mti": r["mti"][bench],
            "gen": r["gen"][bench],
            "accuracy": result.summary.mean_accuracy[f"k{k}"],
        }
    # The paper fits its published MTIs; where they are given, so does the replay, and the fit
    # of the recomputed MTIs is reported beside it.
    published = data.get("published_mti")
    if published:
        if not isinstance(published, list) or len(published) != len(per_k):
            raise XlingError(f"published_mti has {len(published) if isinstance(published, list) else 'no list of'} "
                             f"values for {len(per_k)} rows k")
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in published):
            raise XlingError(f"published_mti holds values that are not numbers: {published}")
        series = {"mti": published, "accuracy": [r["accuracy"] for r in per_k.values()],
                  "mti_recomputed": [r["mti"] for r in per_k.values()]}
    else:
        series = {"mti": [r["mti"] for r in per_k.values()], "accuracy": [r["accuracy"] for r in per_k.values()]}
    xs_all = [r["X"] for r in per_k.values()]
    fits: dict[str, PowerLawFit] = {}
    for metric, ys_all in series.items():
        if any(y is None for x, y in zip(xs_all, ys_all) if x >= fit_from):
            raise XlingError(f"{metric} is undefined for some k; it cannot be fitted")
        res = scaling_of(dict(zip(xs_all, ys_all)), fit_from)
        if res["fit"] is None:
            raise XlingError(f"{metric}: {res['note']}")
        fits[metric] = PowerLawFit(**{k: v for k, v in res["fit"].items() if k != "predicted"})
    by_x = {m: dict(zip(xs_all, ys)) for m, ys in series.items()}
    return {
        "per_k": per_k,
        "fits": fits,
        "leap": {m: M.first_parallel_leap(by_x[m]) for m in by_x},
        "gap": {m: M.generalization_gap(fits[m].alpha, by_x[m][1]) for m in by_x},
        "english_only": {m: by_x[m][1] for m in by_x},
        "series": by_x,
    }


def show(data: dict, result: dict) -> None:
    langs = list(data["langs"])
    per_k = result["per_k"]
    rows = []
    for k, r in per_k.items():
        cells = [f"{100 * g:+.1f}{'*' if lang in r['train_langs'] else ''}" if g is not None else "None"
                 for lang, g in r["gain"].items()]
        rows.append([f"k={k}", *cells])
    print_table("Relative gain over the base model, % (* = training language)", ["", *langs], rows)
    published = data.get("published_mti") or []
    rows = []
    for k, r in per_k.items():
        pub = published[k] if k < len(published) else None
        rows.append([f"k={k}", r["X"], ",".join(r["train_langs"]), fmt(r["train_gain"], 4), fmt(r["mti"]),
                     fmt(pub), "" if pub is None else f"{r['mti'] - pub:+.3f}".replace("-0.000", "+0.000"), fmt(r["accuracy"], 2)])
    print_table("Transfer by number of training languages X = k + 1",
                ["", "X", "train langs", "train gain", "MTI", "published", "diff", "mean acc %"], rows)
    rows = []
    for metric, fit in result["fits"].items():
        rows.append([metric.replace("mti", "MTI").replace("_", " "), f"{fit.alpha:.2f} ± {fmt(fit.alpha_se, 2, 'n/a')}",
                     f"{fit.beta:.3f} ± {fmt(fit.beta_se, 3, 'n/a')}",
                     fmt(fit.r2, 3), fmt(fit.alpha, 2), fmt(result["english_only"][metric], 2),
                     f"{result['gap'][metric]:+.2f}", f"{result['leap'][metric]:+.2f}"])
    xs = result["fits"]["mti"].x
    print_table(f"Parallel Scaling Law f(X) = α·X^β, fitted on X = {int(xs[0])}…{int(xs[-1])}",
                ["metric", "α", "β", "R²", "f(1) expected", "X=1 actual", "gap", "first leap"], rows,
                note="MTI: the published MTIs, as the paper fits them; MTI recomputed: the MTIs recomputed "
                     "above.\ngap = f(1) − English-only value (Monolingual Generalization Gap); "
                     "first leap = value(X=2) − value(X=1).")


def write_accuracy_table(data: dict, path: Path) -> Path:
    langs = list(data["langs"])
    bench = data.get("benchmark", "math500")
    rows = [Row("base", bench, lang, acc) for lang, acc in zip(langs, data["base"])]
    for k, accs in sorted(data["trained"].items()):
        rows += [Row(f"k{k}", bench, lang, acc) for lang, acc in zip(langs, accs)]
    return write_table(path, rows)


def run(cfg: Config, run_dir: Path) -> dict:
    data = load_numbers(cfg.data)
    result = replay(data, cfg.fit_from)
    show(data, result)
    table = write_accuracy_table(data, run_dir / "accuracy.csv")
    from xling.analysis.members import write_members

    write_members(run_dir / "models.csv", members(data))
    console.print(f"accuracy table: {table}, its members: {run_dir / 'models.csv'}  (try: python run.py analyze "
                  f"table={table}, or python run.py transfer table={table} base=base trained=k1 train_langs=en,ru)",
                  markup=False)
    if cfg.plot:
        from xling.report.plots import ScalingPanel, plot_scaling

        per_k = result["per_k"]
        xs = [r["X"] for r in per_k.values()]
        panels = [
            ScalingPanel(label, xs, [result["series"][m][x] for x in xs], result["fits"][m], result["english_only"][m])
            for m, label in (("mti", "MTI"), ("accuracy", "mean accuracy (%)"))
        ]
        title = f"Parallel Scaling Law — {data.get('model', '')}, {data.get('benchmark', '')} (published numbers)"
        png = plot_scaling(panels, run_dir / "parallel_scaling.png", title=title)
        console.print(f"plot: {png}", markup=False)
    per_k = result["per_k"]
    return {
        "source": data.get("source", str(cfg.data)),
        "langs": data["langs"],
        "order": data["order"],
        "per_k": {str(k): r for k, r in per_k.items()},
        "mti": {str(k): r["mti"] for k, r in per_k.items()},
        "mti_published": {str(k): v for k, v in enumerate(data.get("published_mti") or [])},
        "accuracy": {str(k): r["accuracy"] for k, r in per_k.items()},
        "fit": {m: f.as_dict() for m, f in result["fits"].items()},
        "leap": result["leap"],
        "gap": result["gap"],
        "english_only": result["english_only"],
    }
