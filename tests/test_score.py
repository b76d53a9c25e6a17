"""Scoring: samples graded by the one grader, languages identified, AIME-style means, truncation counts."""

import pytest

from xling.grading.answers import Grader
from xling.grading.settings import ScoreSection
from xling.analysis.summary import cell_summary, off_target_records
from xling.evaluation.score import item_record, score_samples

DE = "Zuerst rechnen wir die Anzahl der Eier aus und dann ziehen wir die gegessenen Eier ab. Die Antwort lautet"
EN = "First we count all the eggs and then we subtract the eggs that were eaten for breakfast, so the answer is"


@pytest.fixture(scope="module")
def grader():
    with Grader(workers=0) as g:
        yield g


def sample(text, k=0, finish="stop"):
    return {"sample": k, "text": text, "finish_reason": finish, "tokens": 12}


def test_one_sample_per_item(grader):
    samples = [[sample(f"{DE} \\boxed{{18}}")], [sample(f"{EN} \\boxed{{1.000}}")], [sample("", finish="length")]]
    graded = score_samples(samples, ["18", "1000", "3"], ["number"] * 3, "de", grader, ScoreSection(workers=0))
    assert [g[0]["correct"] for g in graded] == [True, True, False]
    assert graded[0][0]["detected_lang"] == "de" and graded[0][0]["on_target"] is True
    assert graded[1][0]["detected_lang"] == "en" and graded[1][0]["on_target"] is False
    assert graded[2][0]["detected_lang"] is None and graded[2][0]["on_target"] is None
    assert graded[2][0]["truncated"] is True
    recs = [item_record("m", "mgsm", "de", f"mgsm-{i}", a, g) for i, (a, g) in enumerate(zip(["18", "1000", "3"], graded))]
    assert recs[0] == {**recs[0], "model": "m", "benchmark": "mgsm", "lang": "de", "id": "mgsm-0", "n": 1, "score": 1.0,
                       "correct": True, "extracted": "18", "detected_lang": "de", "on_target": True, "truncated": False}
    cell = cell_summary(recs)
    assert cell["accuracy"] == pytest.approx(200 / 3) and cell["n"] == 3 and cell["truncated"] == 1
    assert cell["off_target"] == pytest.approx(50)  # one of two judged answers is English
    assert cell["undetermined"] == 1 and cell["no_answer"] == 1
    assert [r["score"] for r in off_target_records(recs)] == [0.0, 1.0]


def test_aime_mean_over_samples(grader):
    texts = [f"{EN} \\boxed{{{v}}}" for v in (204, 204, 17, 204)]
    graded = score_samples([[sample(t, k, "length" if k == 3 else "stop") for k, t in enumerate(texts)]],
                           ["204"], ["math"], "en", grader, ScoreSection(workers=0))
    rec = item_record("m", "aime24", "en", "aime24-0", "204", graded[0])
    assert rec["n"] == 4 and rec["score"] == pytest.approx(0.75) and rec["correct"] == 3 and rec["truncated"] == 1
    assert rec["extracted"] == ["204", "204", "17", "204"] and rec["on_target"] == 1.0
    cell = cell_summary([rec])
    assert cell["accuracy"] == pytest.approx(75) and cell["samples"] == 4 and cell["off_target"] == 0


def test_unparseable_gold_is_left_out_of_accuracy(grader):
    graded = score_samples([[sample("\\boxed{3}")], [sample("\\boxed{4}")]], ["3", "n/a"], ["number"] * 2, "en",
                           grader, ScoreSection(workers=0))
    recs = [item_record("m", "mgsm", "en", str(i), a, g) for i, (a, g) in enumerate(zip(["3", "n/a"], graded))]
    assert recs[1]["error"] == "unparseable gold"
    assert cell_summary(recs)["accuracy"] == 100 and cell_summary(recs)["unparseable_gold"] == 1


def test_read_scored_reuses_only_matching_rows(grader, tmp_path):
    """A scored row is reused only for one of the shard's ids, with the shard's n and the digest of
    the completions, gold answer and settings it was computed from; anything else is re-scored."""
    from xling.evaluation.score import read_scored, scored_key, write_scored

    settings = ScoreSection(workers=0)
    samples = {f"q{i}": [sample(f"{EN} \\boxed{{{i}}}", k) for k in range(3)] for i in range(3)}
    graded = score_samples(list(samples.values()), ["0", "1", "2"], ["number"] * 3, "en", grader, settings)
    rows = [item_record("m", "mgsm", "en", i, str(k), g) for k, (i, g) in enumerate(zip(samples, graded))]
    keys = {i: scored_key(samples[i], str(k), "number", settings) for k, i in enumerate(samples)}
    path = tmp_path / "scored" / "en.jsonl"
    write_scored(path, rows, [keys[i] for i in samples])
    assert "scored_from" in path.read_text()
    assert read_scored(path, keys, 3) == {r["id"]: r for r in rows}  # returned without the digest
    assert read_scored(path, keys, 1) == {}  # n changed (the stale-cache bug: n=3 rows served for n=1)
    assert set(read_scored(path, {"q0": keys["q0"], "q9": "x"}, 3)) == {"q0"}  # other ids are not served
    # one completion changed, a gold answer changed, the settings changed: those rows are stale
    changed = {**keys, "q1": scored_key(samples["q1"][:2] + [sample("other", 2)], "1", "number", settings),
               "q2": scored_key(samples["q2"], "7", "number", settings)}
    assert set(read_scored(path, changed, 3)) == {"q0"}
    other = ScoreSection(langid="langid", workers=0)
    assert scored_key(samples["q0"], "0", "number", other) != keys["q0"]
    assert scored_key(samples["q0"], "0", "number", ScoreSection(workers=4)) == keys["q0"]  # workers change nothing
    assert read_scored(tmp_path / "absent.jsonl", keys, 3) == {}
    path.write_text(path.read_text() + '{"id": "q0", "n"')  # a torn line is ignored
    assert set(read_scored(path, keys, 3)) == {"q0", "q1", "q2"}
