"""Experiments beside the train x test grid (`experiment=<name>`, conf/experiment/).

* ``options``: the `experiment` config group, importable without torch.
* ``budget``: the storage-budget experiment: at a fixed number of bytes, fewer originals or
  more compressed images?
* ``scaling_law``: the law of Mentzer & Montanari fitted to the budget experiment's cells.
"""
