# Every step that opens the DuckDB working copy for writing runs in this pool; dagster.yaml
# limits it to one at a time (DuckDB allows one writing process per file).
DUCKDB_POOL = "duckdb_warehouse"
