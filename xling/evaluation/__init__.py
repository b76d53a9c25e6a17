"""Evaluation as a library: which models, benchmarks and languages (`models`, `benchmarks`), generation
and scoring settings (`settings`), generating into the resumable completion cache and scoring with the
one grader (`runner`, `score`), and the representation probes (`probes`).

In: models and benchmarks. Out: per-item records (correct, extracted answer, detected language) that
`xling.analysis` turns into metrics and `xling.report` into tables and figures.
"""
