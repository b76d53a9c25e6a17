#!/usr/bin/env python3
"""xling's one entrypoint: python run.py RECIPE [key.sub=value ...] [--dry-run] [--force]."""

import os

# OpenMP threads that sleep while they wait instead of spinning: on a CPU shared with other work,
# spinning threads made a toy pretraining step ~6x slower (measured on 2 cores under load). Read
# when torch loads OpenMP, so it is set before anything imports torch; a value already set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from xling.runs.cli import exit_with, main  # noqa: E402

if __name__ == "__main__":
    exit_with(main())
