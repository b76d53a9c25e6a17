"""The `grade` recipe on real MGSM questions with hand-written completions, bad input, the benchmark."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xling.runs.cli import main
from xling.data.languages import CODES

ROOT = Path(__file__).resolve().parents[1]
MGSM = ROOT.parent / "shared" / "data" / "mgsm"

# Hand-written completions: reasoning in the language, then the answer in a given format.
REASONING = {
    "en": "We add up what is known step by step and then subtract what is used.",
    "es": "Sumamos paso a paso lo que sabemos y después restamos lo que se usa.",
    "ru": "Сложим по шагам всё, что известно, а затем вычтем то, что израсходовано.",
    "de": "Wir addieren Schritt für Schritt, was bekannt ist, und ziehen dann ab, was verbraucht wird.",
    "fr": "Nous additionnons étape par étape ce que nous savons, puis nous retirons ce qui est utilisé.",
    "bn": "আমরা ধাপে ধাপে যা জানি তা যোগ করি এবং তারপর যা ব্যবহার হয়েছে তা বাদ দিই।",
    "th": "เรารวมสิ่งที่รู้ทีละขั้นตอน แล้วลบส่วนที่ใช้ไปออก",
    "sw": "Tunajumlisha hatua kwa hatua tunachojua kisha tunatoa kile kilichotumika.",
    "zh": "我们一步一步地把已知的数加起来，然后减去用掉的部分。",
    "ja": "分かっている数を一つずつ足していき、使った分を引きます。",
    "te": "మనకు తెలిసిన వాటిని ఒక్కొక్కటిగా కలిపి, తర్వాత వాడిన వాటిని తీసివేస్తాం.",
}
THOUSANDS = {"de": ".", "es": ".", "fr": "\u202f", "ru": " "}


def write_answer(value: int, lang: str, style: int) -> str:
    text = f"{value:,}".replace(",", THOUSANDS.get(lang, ","))
    cue = {"en": "The answer is", "es": "La respuesta es", "ru": "Ответ:", "de": "Die Antwort lautet",
           "fr": "La réponse est", "bn": "উত্তর হল", "th": "คำตอบคือ", "sw": "Jibu ni", "zh": "答案是",
           "ja": "答えは", "te": "సమాధానం"}[lang]
    return [f"\\boxed{{{text}}}", f"{cue} {text}.", f"= {text}"][style % 3]


def mgsm_file(tmp_path: Path, per_lang: int = 6) -> tuple[Path, dict]:
    """A grade input from the real MGSM TSVs; every 3rd completion is wrong, de item 1 is in English."""
    rows, expected = [], {}
    for lang in CODES:
        lines = (MGSM / f"mgsm_{lang}.tsv").read_text(encoding="utf-8").splitlines()[:per_lang]
        right = 0
        for i, line in enumerate(lines):
            question, answer = line.split("\t")
            value = int(answer.replace(",", ""))
            wrong = i % 3 == 2
            right += not wrong
            reasoning = REASONING["en" if (lang, i) == ("de", 1) else lang]
            completion = f"{reasoning}\n\n{write_answer(value + wrong, lang, i)}"
            rows.append({"id": f"mgsm-{lang}-{i}", "lang": lang, "question": question, "answer": answer,
                         "completion": completion})
        expected[lang] = 100 * right / len(lines)
    path = tmp_path / "mgsm-completions.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path, expected


@pytest.mark.skipif(not MGSM.is_dir(), reason="needs ../shared/data/mgsm")
def test_grade_mgsm_completions(tmp_path, capsys):
    path, expected = mgsm_file(tmp_path)
    out = tmp_path / "run"
    assert main(["grade", f"input={path}", f"out={out}", "kind=number", "workers=1"]) == 0
    printed = capsys.readouterr().out
    assert "accuracy %" in printed and "off-target %" in printed
    graded = [json.loads(line) for line in (out / "graded.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(graded) == 6 * len(CODES)
    first = graded[0]
    assert set(first) >= {"id", "lang", "question", "answer", "completion", "extracted", "correct", "detected_lang", "on_target"}
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["graded"] == 66 and metrics["skipped"] == 0
    for lang in CODES:
        assert metrics["per_lang"][lang]["accuracy"] == pytest.approx(expected[lang]), lang
    # 6 answers per language are fewer than the 10 a rate needs: undetermined, with the count it would rest on
    assert all(metrics["per_lang"][lang]["off_target"] is None and metrics["per_lang"][lang]["judged"] == 6
               for lang in CODES)
    assert metrics["overall"]["off_target"] == pytest.approx(100 / 66) and metrics["overall"]["judged"] == 66
    assert "undetermined (n=6)" in printed and "1.5 (n=66)" in printed
    english_in_de = next(r for r in graded if r["id"] == "mgsm-de-1")
    assert english_in_de["detected_lang"] == "en" and english_in_de["on_target"] is False


def test_malformed_lines_are_reported_and_skipped(tmp_path, capsys):
    good = {"completion": "Die Antwort lautet 70.000 Euro, weil beide Beträge abgezogen werden.", "answer": "70,000", "lang": "de"}
    lines = [
        json.dumps(good),
        "{not json",
        json.dumps({"completion": "x", "lang": "en"}),
        json.dumps({"completion": "x", "answer": "1", "lang": "english"}),
        json.dumps({"completion": "x", "answer": "1", "lang": "en", "kind": "numeric"}),
        "[1, 2]",
        "",
        json.dumps({**good, "kind": "choice", "answer": "B", "completion": "The answer is (B), as the table shows clearly."}),
        json.dumps({"completion": 5, "answer": "1", "lang": "en"}),
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["grade", f"input={path}", f"out={tmp_path / 'run'}", "kind=number", "workers=0", "langid=lingua"]) == 0
    printed = capsys.readouterr().out
    for message in ("line 2: not valid JSON", "line 3: missing answer", "line 4: unknown language 'english'",
                    "line 5: unknown kind 'numeric'", "line 6: not a JSON object", "line 9: 'completion' is not text"):
        assert message in printed
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["graded"] == 2 and metrics["skipped"] == 6
    assert metrics["per_lang"]["de"]["accuracy"] == 100.0
    rows = [json.loads(x) for x in (tmp_path / "run" / "graded.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["correct"] for r in rows] == [True, True] and rows[1]["kind"] == "choice"


def test_unparseable_gold_is_reported_not_scored(tmp_path):
    path = tmp_path / "in.jsonl"
    rows = [{"completion": "\\boxed{5}", "answer": "five", "lang": "en"},
            {"completion": "\\boxed{5}", "answer": "5", "lang": "en"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert main(["grade", f"input={path}", f"out={tmp_path / 'run'}", "kind=number", "workers=0"]) == 0
    graded = [json.loads(x) for x in (tmp_path / "run" / "graded.jsonl").read_text(encoding="utf-8").splitlines()]
    assert graded[0]["error"] == "unparseable gold" and graded[0]["correct"] is False
    assert "error" not in graded[1]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["overall"]["unparseable_gold"] == 1 and metrics["overall"]["accuracy"] == 100.0


@pytest.mark.parametrize("args,message", [
    (["input=/no/such/file.jsonl"], "error: input file /no/such/file.jsonl does not exist; give input=FILE.jsonl"),
    (["timeout=0"], "error: recipe key 'timeout': must be a number of seconds above 0 and at most 3600, not 0.0"),
    (["timeout=nan"], "error: recipe key 'timeout': must be a number of seconds above 0 and at most 3600, not nan"),
    (["timeout=inf"], "error: recipe key 'timeout': must be a number of seconds above 0 and at most 3600, not inf"),
    (["timeout=1e9"], "error: recipe key 'timeout': must be a number of seconds above 0 and at most 3600, not 1000000000.0"),
    (["workers=-1"], "error: recipe key 'workers': must be 0 (work in this process) or more, got -1"),
    (["langid=fasttext"], "error: recipe key 'langid': 'fasttext' is not allowed"),
    (["kind=maths"], "did you mean 'math'?"),
])
def test_bad_settings_are_one_line_errors(tmp_path, capsys, args, message):
    assert main(["grade", f"out={tmp_path / 'run'}", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_a_file_without_good_lines_is_an_error(tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text("{oops\n", encoding="utf-8")
    assert main(["grade", f"input={path}", f"out={tmp_path / 'run'}"]) == 2
    assert "has no gradable lines (1 malformed); each line needs completion, answer, lang" in capsys.readouterr().err


def test_shipped_recipe_and_example(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["grade", "--dry-run"]) == 0
    assert "input: recipes/examples/grade-example.jsonl" in capsys.readouterr().out
    assert main(["grade", f"out={tmp_path / 'run'}", "langid=lingua"]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["graded"] == 13 and metrics["skipped"] == 0
    assert metrics["per_lang"]["ja"]["accuracy"] == 0.0  # the example's Japanese answer is wrong on purpose
    # its Telugu answer is in English, but one judged answer is too few for a rate
    assert metrics["per_lang"]["te"]["off_target"] is None and metrics["per_lang"]["te"]["judged"] == 1


def test_benchmark_runs_tiny(tmp_path, capsys):
    from xling.perf.grading import corpus, main as bench

    texts, golds, langs = corpus(22, 1500, "number", seed=1)
    assert set(langs) == set(CODES) and all(1300 <= len(t) <= 1800 for t in texts)
    out = tmp_path / "bench.json"
    assert bench(["--only", "speed", "--n", "22", "--chars", "300", "--workers", "1", "--repeat", "1", "--backends",
                  "lingua,langdetect", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "completions per second" in printed and "16 cores" in printed and "paper reward" in printed
    stages = [r["stage"] for r in json.loads(out.read_text())["rows"]]
    assert stages == ["extraction", "grade number", "grade math (math-verify)", "language ID lingua",
                      "language ID langdetect"]


def test_accuracy_benchmark_prints_both_graders_per_kind(tmp_path, capsys):
    from xling.perf.grading import main as bench

    out = tmp_path / "accuracy.json"
    assert bench(["--only", "accuracy", "--sample", "9", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "accuracy on" in printed and "math-verify %" in printed and "generous" in printed
    figures = json.loads(out.read_text())["accuracy"]
    for kind in ("math", "number", "choice"):
        row = figures["rows"][kind]
        assert row["n"] > 5 and row["xling"]["agree"] >= row["math-verify"]["agree"], (kind, row)
        assert row["xling"]["generous"] == 0, (kind, row)


def test_the_grader_agrees_with_the_labelled_set_and_is_never_generous():
    from xling.grading.answers import Grader
    from xling.perf.labelled import cases

    every = cases()
    assert {c.kind for c in every} == {"math", "number", "choice"} and {c.lang for c in every} == set(CODES)
    assert {c.form for c in every} >= {"boxed", "unboxed LaTeX", "hedged", "multi-part", "revised", "last line",
                                       "decimal-comma gold", "fraction"}
    assert sum(c.correct for c in every) > 200 and sum(not c.correct for c in every) > 200  # right and wrong alike
    labelled = every[::3]
    with Grader(workers=2) as grader:
        results = grader.grade_batch([c.completion for c in labelled], [c.gold for c in labelled],
                                     [c.lang for c in labelled], [c.kind for c in labelled])
    generous = [(c, r) for c, r in zip(labelled, results) if r.correct and not c.correct]
    assert generous == []
    missed = [(c.completion, r) for c, r in zip(labelled, results)
              if r.correct != c.correct and not c.form.startswith("other")]
    assert missed == []


def test_a_line_that_is_not_utf8_is_reported_and_the_rest_graded(tmp_path, capsys):
    path = tmp_path / "in.jsonl"
    good = json.dumps({"completion": "The answer is 1.", "answer": "1", "lang": "en"}).encode()
    path.write_bytes(b'{"completion": "\xff", "answer": "1", "lang": "en"}\n' + good + b"\n")
    assert main(["grade", f"input={path}", f"out={tmp_path / 'run'}", "workers=0"]) == 0
    assert "line 1: not UTF-8 text (byte 17); save the file as UTF-8" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["graded"] == 1 and metrics["skipped"] == 1


def test_a_killed_grade_resumes_where_it_stopped(tmp_path, capsys, monkeypatch):
    """Killed after two chunks (with a line cut short and a temporary file left), grade goes on with the
    lines left and writes exactly what an uninterrupted run writes; no partial or temporary file stays."""
    from xling.tasks import grade as task

    monkeypatch.setattr(task, "CHUNK", 4)
    args = ["grade", f"input={ROOT / 'recipes' / 'examples' / 'grade-example.jsonl'}", "workers=0"]
    assert main([*args, f"out={tmp_path / 'whole'}"]) == 0
    whole = (tmp_path / "whole" / "graded.jsonl").read_text(encoding="utf-8")

    real, graded = task._grade_with, []

    def killed_after_two_chunks(grader, records, cfg, note=""):
        if len(graded) == 8:
            raise KeyboardInterrupt  # the kill, between two appends
        graded.extend(records)
        return real(grader, records, cfg, note)

    monkeypatch.setattr(task, "_grade_with", killed_after_two_chunks)
    out = tmp_path / "r"
    assert main([*args, f"out={out}"]) == 130
    partial = out / task.PARTIAL
    assert len(partial.read_text(encoding="utf-8").splitlines()) == 1 + 8  # the key line, two chunks
    with open(partial, "a", encoding="utf-8") as f:
        f.write('{"line": 12, "row": {"complet')  # a line cut short by the kill
    (out / ".graded.jsonl.k1ll3d.tmp").write_text("")  # the temporary file of a write the kill cut short
    graded.clear()
    capsys.readouterr()
    assert main([*args, f"out={out}"]) == 0
    assert len(graded) == 5 and "resuming: 8 of 13 lines were graded before" in capsys.readouterr().out
    assert (out / "graded.jsonl").read_text(encoding="utf-8") == whole
    assert sorted(p.name for p in out.iterdir()) == ["env.json", "graded.jsonl", "metrics.json", "recipe.yaml"]


def test_graded_lines_of_another_input_or_settings_are_not_reused(tmp_path, monkeypatch):
    from xling.evaluation import score
    from xling.tasks.grade import Config, graded_so_far, graded_store, grading_key

    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text('{"completion": "4", "answer": "4", "lang": "en"}\n')
    b.write_text('{"completion": "5", "answer": "4", "lang": "en"}\n')
    cfg = Config(input=str(a))
    key = grading_key(a, cfg)
    assert key != grading_key(b, cfg) and key != grading_key(a, Config(input=str(a), min_chars=5))
    assert key == grading_key(a, Config(input=str(a), workers=0))  # how it is graded, not where
    with monkeypatch.context() as m:
        m.setattr(score, "SCORE_VERSION", score.SCORE_VERSION + 1)
        assert grading_key(a, cfg) != key  # lines graded by an earlier grader are graded again
    partial = tmp_path / "p.jsonl"
    partial.write_text(json.dumps({"fingerprint": key}) + "\n" + json.dumps({"line": 1, "row": {"correct": True}}) + "\n")
    assert graded_so_far(partial, key) == {1: {"correct": True}}
    other = grading_key(b, cfg)
    assert graded_so_far(partial, other) == {}
    graded_store(partial, other, "b.jsonl").append([{"line": 1, "row": {"correct": False}}])  # replaces the file
    assert [json.loads(x) for x in partial.read_text().splitlines()] == \
        [{"fingerprint": other, "input": "b.jsonl"}, {"line": 1, "row": {"correct": False}}]
    assert graded_so_far(partial, key) == {}
    # a partial file whose first line names no fingerprint (as written before) is not reused either
    partial.write_text(json.dumps({"key": key}) + "\n" + json.dumps({"line": 1, "row": {"correct": True}}) + "\n")
    assert graded_so_far(partial, key) == {}
