"""Which DCT frequencies does a classifier rely on? The maths and figures of sensitivity maps.

    options.py     the `sensitivity` config group (no torch)
    methods.py     the finite (the reference study's) and gradient methods, on any classifier
    statistics.py  bootstrap intervals over images, radius profiles, high-frequency share
    figures.py     8x8 maps of Y, Cb and Cr, maps side by side, radius profiles
    __main__.py    `python -m sweep.sensitivity`: the entry point of experiment=sensitivity_maps

Elsewhere: JPEG's transform in sweep/dct.py; the stage kind that measures one trained model in
sweep/stages/sensitivity.py (with sensitivity_measure.py); the report's tables and map files in
sweep/report/sensitivity.py; the experiment in sweep/experiments/sensitivity_maps.py. This
package's `__init__` imports nothing: the planner reads options.py without loading torch.
"""
