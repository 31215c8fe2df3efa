"""Monitoring logic (pure): drift against a stored reference profile, performance on late labels,
the retraining policy and the monitor report. jobs/monitor.py drives these.

Import the modules (`gitops_ml.monitoring.drift`, `.performance`, `.policy`, `.report`); nothing is
re-exported here.
"""
