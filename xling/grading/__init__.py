"""Grading: from a completion's text to a verdict.

In: a model's answer and the gold answer. Out: the extracted final answer, whether it is correct
(`answers`, built on `boxes`, `extraction` and `numbers`, with math-verify (`verify`) run in worker
processes with a deadline (`workers`)), and the language the answer is written in (`langid`).
Training rewards and evaluation both grade through here, so a training reward and an evaluation
verdict never disagree.
"""
