"""Studies: a sweep of training and evaluation stages (`sweep`), each stage an ordinary run folder,
run in order (in this process, or in parallel on GPUs), resumable stage by stage.

In: a sweep recipe (members, stages). Out: the members' run folders and the table of members the analysis reads.
"""
