"""Dagster definitions split by concern; `dagster_project.definitions` assembles them."""
