"""Rendering: tables (`table`), figures (`plots`), an evaluation's result files (`results`) and a study's
report (`study`: members, transfer metrics, scaling fits, report.md).

In: per-item records and the metrics computed by `xling.analysis`. Out: CSV tables, PNG figures,
report.md and what the console prints.
"""
