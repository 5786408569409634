"""What a finished sweep's numbers mean: how sure each cell is, and what to do about it.

* ``outcomes``: the per-image outcomes an evaluation stores, read back aligned by image.
* ``bootstrap``: the paired bootstrap over test images that gives every cell, and every
  cell's value relative to original/original, its interval.
* ``recommendation``: the highest-DCR setting that keeps the metric, per storage scenario.
"""
