"""The stage kinds of a sweep: one module each, one entry each in `STAGE_KINDS`.

    validate   every image of a split decoded once (the bad-image policy)   validate.py
    encode     a split re-encoded at one codec setting                       encode.py
    decoded    a train encode decoded once for its trainings (decode_cache)  decoded.py
    train      one model per train setting                                   train.py
    evaluate   one trained model on one test setting (a grid cell)           evaluate.py
    sensitivity DCT sensitivity maps of one trained classifier, by one method  sensitivity.py
    distortion measured distortion of an encode's images                     distortion.py

The table's order is the order of planning and of submission: a kind comes after the kinds it
reads, and the measures go last, so that free cores go to the trainings first. To add a kind:
write its module (a `Stage` subclass, its workers, its plan function and its `KIND`), add it
to the table in table.py, and test it; the planner, the executor, the bill, the report index
and the reliability harness read it from there. The plan graph's types are in graph.py, what
a kind declares in kind.py. This package's `__init__` imports nothing, so that a worker that
imports one kind's module loads only what that kind needs.
"""
