"""MLflow tracking, from the driver only.

tracker.py      a parent run per sweep, a child run per trained model, found again by tags
description.py  the parent run's description (Markdown): headline, recommendation, the
                classes hurt first, links to the heatmaps
metrics.py      what is logged, as MLflow metrics and parameters
names.py        setting names in the order of compression, flat parameters, the dashboard's
                pages (no MLflow import: the report reads them)
server.py       whether a tracking server answers
deferred.py     the run's tracker, and logging deferred while the server is unreachable
"""
