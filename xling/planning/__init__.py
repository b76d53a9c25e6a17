"""Planning a training run before it starts: GPU catalogue and model shapes (`hardware`), memory and
time estimates (`plan`), and how a step is cut into micro-batches (`batches`).

In: a training recipe. Out: the plan `--dry-run` prints, and the checks that refuse a run that cannot fit.
"""
