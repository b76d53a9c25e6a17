#!/usr/bin/env python3
"""xling's one entrypoint: python run.py RECIPE [key.sub=value ...] [--dry-run] [--force]."""

import sys

from xling.cli import main

if __name__ == "__main__":
    sys.exit(main())
