"""Analysis: the numbers a study reports, computed (nothing drawn or printed here).

In: per-item scores and accuracies (`items` reads them column-wise). Out: the transfer metrics
(TI, MTI, Gen, gains), bootstrap intervals (`metrics`) and power-law fits (`scaling`).
"""
