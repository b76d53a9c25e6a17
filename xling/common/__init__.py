"""The ground floor: errors, the console, atomic file writes, recipe reading and checking, library versions.

In: nothing of the project. Out: what every other package uses to read a recipe (`config`), say what
is wrong in one line (`errors`, `console`), and write results that survive a crash (`io`).
"""
