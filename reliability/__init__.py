"""Reliability checks of the sweep: a corpus of bad images and a kill-and-resume harness.

`python -m reliability` (`make reliability`) writes the corpus, runs a reference sweep, kills
sweeps mid-run (the driver, or one Ray worker) and checks that every rerun ends with the
reference's results and loses no finished stage.
"""
