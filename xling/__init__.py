"""xling: reproduce and ablate cross-lingual transfer of reasoning learned by RL post-training.

`import xling` stays light: heavy libraries (torch, trl, vllm, unsloth) are imported inside the
functions that need them.
"""

__version__ = "0.1.0"
