"""The grid as a nightly job (experiment=nightly): experiment.py runs it, changes.py says
what changed since the previous nightly run."""
