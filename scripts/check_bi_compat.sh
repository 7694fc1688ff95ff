#!/usr/bin/env bash
# Open the served warehouse with older DuckDB releases (as embedded by BI drivers) in
# throwaway virtual environments, and run a BI-style query on a view and a table.
set -euo pipefail
WAREHOUSE="${WAREHOUSE_PATH:-data/warehouse.duckdb}"
PY="${PYTHON:-python3}"
UV="${UV:-uv}"
status=0
for version in ${DUCKDB_VERSIONS:-1.1.0 1.2.2 1.4.0 1.5.6}; do
  env_dir="$(mktemp -d)/duckdb-$version"
  "$UV" venv -q --python "$PY" "$env_dir" >/dev/null
  VIRTUAL_ENV="$env_dir" "$UV" pip install -q "duckdb==$version" >/dev/null
  if "$env_dir/bin/python" - "$WAREHOUSE" <<'PY'
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
june = con.execute("select quantity_t from marts.v_magnet_exports_by_partner where partner_iso3='WLD' and month_label='2025-06'").fetchone()
comments = con.execute("select count(*) from duckdb_columns() where schema_name='marts' and comment is not null").fetchone()[0]
print(f"  DuckDB {duckdb.__version__}: June 2025 world {june[0] if june else None} t, {comments} column comments")
PY
  then :; else echo "  DuckDB $version: cannot open $WAREHOUSE"; status=1; fi
  rm -rf "$(dirname "$env_dir")"
done
exit $status
