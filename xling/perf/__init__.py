"""Speed and accuracy measurements of xling's own parts (not evaluation benchmarks): generation throughput
(`generation`), grading accuracy and throughput on a labelled set (`grading`, `labelled`), analysis speed
(`analysis`). Each is a `python -m xling.perf.NAME` command that prints figures.
"""
