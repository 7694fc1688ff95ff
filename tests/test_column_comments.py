"""Every column BI tools can see carries a comment, and the run id has one name everywhere."""
from __future__ import annotations

import duckdb

from dagster_project.lib.warehouse.database import create_raw_tables

BI_SCHEMAS = ("raw", "audit", "staging", "intermediate", "marts", "reference")


def test_every_column_of_the_sample_build_has_a_comment(sample_build):
    rows = sample_build.query(
        """select schema_name, table_name, column_name, comment from duckdb_columns()
           where database_name = current_database() and schema_name in (select unnest($schemas))""",
        {"schemas": list(BI_SCHEMAS)},
    )
    schemas = {r[0] for r in rows}
    assert schemas == set(BI_SCHEMAS), schemas
    missing = [f"{s}.{t}.{c}" for s, t, c, comment in rows if not (comment or "").strip()]
    print(f"\n{len(rows)} columns in {len({(r[0], r[1]) for r in rows})} tables and views checked")
    assert not missing, f"{len(missing)} columns without a comment:\n" + "\n".join(missing)
    # dbt's doc() blocks are rendered, not written as Jinja
    assert not [r for r in rows if "{{" in (r[3] or "")]


def test_audit_tables_name_the_run_dagster_run_id(sample_build):
    run_columns = sample_build.query(
        """select table_name, column_name from duckdb_columns()
           where schema_name in ('raw', 'audit') and column_name like '%run_id'""")
    assert {c for _, c in run_columns} == {"dagster_run_id"}
    assert {t for t, _ in run_columns} >= {"check_results", "rejected_files", "customs_loads"}


def test_an_existing_warehouse_gets_the_column_renamed_on_its_next_build(tmp_path):
    con = duckdb.connect(str(tmp_path / "old.duckdb"))
    con.execute("create schema audit")
    con.execute("""create table audit.check_results (run_id varchar not null, check_name varchar not null,
                   asset_key varchar not null, severity varchar not null, passed boolean not null, observed varchar,
                   checked_at timestamp not null, description varchar, failing_sample varchar)""")
    con.execute("insert into audit.check_results values ('run-1', 'c', 'a', 'error', true, 'ok', now(), 'd', null)")
    create_raw_tables(con)
    con.close()
    before = (tmp_path / "old.duckdb").read_bytes()
    con = duckdb.connect(str(tmp_path / "old.duckdb"))
    create_raw_tables(con)  # and again: nothing left to rename or comment, the file is not written
    con.close()
    assert (tmp_path / "old.duckdb").read_bytes() == before
    con = duckdb.connect(str(tmp_path / "old.duckdb"))
    assert con.execute("select dagster_run_id, check_name from audit.check_results").fetchall() == [("run-1", "c")]
    comment = con.execute("""select comment from duckdb_columns()
                             where table_name = 'check_results' and column_name = 'dagster_run_id'""").fetchone()[0]
    assert "Dagster run id" in comment
    con.close()
