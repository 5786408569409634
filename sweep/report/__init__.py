"""A finished sweep's report: read from the store, never running a model.

summarize.py   the grid's rows read from the store, the report folder and its index
results.py     results.csv, the relative heatmaps and the DCR curves
tables.py      results.csv's columns, relative values and seed means
heatmaps.py    the heatmaps and DCR curves; axis.py: settings on a figure axis
distortion.py  distortion.csv, its figure and metrics
sensitivity.py the DCT sensitivity maps' tables, figures and map files
compare.py     sweeps side by side: every codec of a task and model, every model
breakdown.py   what one number per cell hides: per_class.py (each class's metric, with
               intervals, and the classes that lose most) and changed_images.py (the test
               images whose answer changes, counted and shown per model)
description.py the parent run's description in words (headline, recommendation, classes)
grid.py        the whole grid's report and its MLflow runs (a model family's own figures
               come from its `report_figures` hook)
"""
