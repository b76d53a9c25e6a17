"""Run folders and the command line: `python run.py RECIPE key=value` resolves a recipe, opens its run
folder (locked, fingerprinted, resumable) and runs the task the recipe names.

In: a recipe name and overrides. Out: a run folder holding `recipe.yaml`, `env.json`, the task's results and,
last, the finished marker `metrics.json`. `folder` is the protocol (fingerprint, comparable recipes,
finished marker, set-aside of replaced results), `lock` the folder lock, `registry` finds a task by
name, `cli` the command line.
"""
