"""Rendering: tables (`table`), figures (`plots`), an evaluation's results (`results`) and a study's
report (`study`: members, transfer metrics, scaling fits, report.md).

In: the numbers computed by `xling.analysis` (a `Summary`, a `Study`) and per-item records to write out.
Out: CSV tables, PNG figures, report.md and what the console prints.
"""
