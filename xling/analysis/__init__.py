"""Analysis: the numbers a study reports, computed (nothing drawn or printed here).

In: per-item scores and accuracies (`items` reads them column-wise) and a study's members (`members`, as
data or from a models.csv). Out: the transfer metrics (TI, MTI, Gen, gains), bootstrap intervals
(`metrics`), power-law fits (`scaling`), an evaluation's `summary` and a study's numbers (`study`), which
`xling.report` renders.
"""
