"""Scheduler jobs, one module per feature (`register` + `run_once`); each owns its transactions."""
