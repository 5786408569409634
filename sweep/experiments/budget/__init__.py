"""The storage-budget experiment, `python -m sweep experiment=budget`.

The question that pays (Mentzer & Montanari, "Scaling Training Data with Lossy Image
Compression", 2024): with a fixed number of bytes for the training images, is it better to
keep fewer originals or more compressed images?

    experiment.py   the experiment: its encodes, then its cells, then its report
    cells.py        its options, and each (setting, budget) cell's subset and stages
    report.py       budget.csv, budget_law.json, two figures, one MLflow run
    scaling_law.py  the law of Mentzer & Montanari fitted to the cells
"""
