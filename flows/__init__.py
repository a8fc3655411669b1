"""Prefect flows: wiring of the pipeline stages into tasks, nothing more."""
