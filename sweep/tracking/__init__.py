"""MLflow tracking, from the driver only.

tracker.py   a parent run per sweep, a child run per trained model, found again by tags
metrics.py   what is logged: metric and run names in the order of compression, pages
server.py    whether a tracking server answers
deferred.py  the run's tracker, and logging deferred while the server is unreachable
"""
