"""The bill of any experiment before launch (`python -m sweep dry_run=true`): what it would
run, and for how long, without running any of it.

    experiment.py  the bill as an experiment: it wraps the one dry_run names, asks it for its
                   plan (`Experiment.planned`) and prints the bill
    counting.py    the predicted screening, and each kind's pending work (`StageKind.bill`)
    throughput.py  a throughput per kind of work: measured in the store, or timed now
    pricing.py     hours and bytes from the work and the throughputs, and the printed bill
"""
