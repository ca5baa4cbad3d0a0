"""The data engine: MirrorPPR47M-style training data from a user's own photos.

simulate / professional pairs -> WebDataset shards (+ manifest) -> self-augmented
quadruplets -> a streaming, curriculum-mixing PyTorch loader. Generation runs on local
processes or a Ray cluster.
"""
from .augment import Augment, draw, quadruplet
from .generate import Task, list_inputs, make_tasks, run_tasks
from .shards import Manifest, Sample, read_shard, shard_paths, write_shard
from .simulate import SimConfig

__all__ = ["Augment", "draw", "quadruplet", "Task", "list_inputs", "make_tasks", "run_tasks",
           "Manifest", "Sample", "read_shard", "shard_paths", "write_shard", "SimConfig"]
