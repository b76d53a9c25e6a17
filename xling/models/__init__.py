"""Where models come from besides the hub: GGUF files (`gguf`), the tiny random models of tests and CPU
runs (`tiny`), and the toy world's small pretrained model of the classroom demo (`toy`).

In: a model name or path. Out: a local checkpoint folder that every backend loads.
"""
