"""What every driver shares: the experiment contract, the plan of a sweep, its stage context,
its tracker, and the grid run that the grid and nightly experiments and deferred logging use.

    experiment.py  the contract of an experiment, and the session a driver runs with
    planning.py    screening, plan inputs, the plan, the stage context, running part of one
    tracking.py    a run's MLflow parent marked failed or killed; deferred logging caught up
    grid.py        the train x test grid run to its end, under the results_dir's lock
"""
