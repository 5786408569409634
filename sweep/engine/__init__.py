"""The engine: plans, runs and guards any plan of stages, naming no stage kind.

    plan.py      a sweep's plan: every kind's `plan` function, in the table's order
    execute.py   the unfinished stages of a plan, inline or on Ray, resumed from the store
    cluster.py   the sweep's Ray: a private one, or a join to a running cluster
    lock.py      one driver per results_dir at a time

Everything about a kind comes from `sweep.stages.table.STAGE_KINDS`.
"""
