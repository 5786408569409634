"""Which DCT frequencies does a classifier rely on? Sensitivity maps, their report and entry.

    dct.py         JPEG's transform in torch: JFIF YCbCr, the orthonormal 8x8 DCT-II
    methods.py     the finite (the reference study's) and gradient methods
    measure.py     one trained model's maps, on its own input size and preprocessing
    options.py     the `sensitivity` config group (no torch)
    statistics.py  bootstrap intervals over images, radius profiles, high-frequency share
    report.py      sensitivity.csv, summary and agreement tables, figures, map files
    pipeline.py    maps within a run: maps only, a tuned JPEG's map, report and MLflow
    __main__.py    `python -m sweep.sensitivity`

The stage kind that measures one model is sweep/stages/sensitivity.py. This package's
`__init__` imports nothing: the planner reads options.py without loading torch.
"""
