"""The experiments `python -m sweep experiment=<name>` runs, one module or package each, built
by Hydra from conf/experiment/<name>.yaml (`_target_`). They never import each other: what
they share is in sweep/session/.

    grid.py              the train x test grid (the default)
    nightly/             the grid as a nightly job: only missing cells, what changed
    budget/              at fixed storage budgets, fewer originals or more compressed images?
    sensitivity_maps.py  the DCT sensitivity maps of the sweep's models, without the grid
    bill/                dry_run=true: any experiment's bill before launch
"""
