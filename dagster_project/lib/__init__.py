"""Pure helpers (no Dagster imports): tests call them directly."""
