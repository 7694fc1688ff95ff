"""The reference lists a download is checked against, and the SQL macros that read its text.

Both load paths join on them as temp tables of the ingest's connection, loaded once a run
from the same CSVs dbt seeds.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from dagster_project.lib.ingest import gacc_format as fmt
from dagster_project.lib.settings import SEEDS_DIR

_MACROS_SQL = r"""
CREATE OR REPLACE TEMP MACRO gacc_clean(x) AS
    CASE WHEN x IS NULL OR trim(x) IN ({null_tokens}) THEN NULL
         ELSE replace(replace(replace(replace(trim(x), ',', ''), '，', ''), ' ', ''), '{nbsp}', '') END;
-- DECIMAL(18, 4) is a 64-bit integer inside DuckDB (about twice as fast to parse and compare as
-- DECIMAL(38, 4)) and holds 14 integer digits: more than any single GACC row's kg or dollars.
CREATE OR REPLACE TEMP MACRO gacc_number(x) AS TRY_CAST(gacc_clean(x) AS DECIMAL(18, 4));
CREATE OR REPLACE TEMP MACRO gacc_text(x) AS
    CASE WHEN x IS NULL OR trim(x) IN ({null_tokens}) THEN NULL
         ELSE trim(regexp_replace(replace(x, '{nbsp}', ' '), '\s+', ' ', 'g')) END;
"""

# The platform's "no value" tokens as a SQL list, for `x IN (...)`.
NULL_TOKENS_SQL = ", ".join("'" + t.replace("'", "''") + "'" for t in fmt.NULL_TOKENS)

# table -> (seed file, SELECT list, WHERE). The codes are kept well formed and each once: the
# batch path joins on them and trusts a match's form.
_REFERENCE_TABLES = {
    "_unit_alias": ("gacc_unit_aliases.csv", "SELECT DISTINCT lower(trim(alias)) AS alias, unit_code", "true"),
    "_unit": ("gacc_units.csv", "SELECT unit_code, unit_name_zh, unit_name_en, base_unit_code, "
                                "CAST(to_base_factor AS DECIMAL(38, 6)) AS to_base_factor", "true"),
    "_commodity": ("gacc_commodities.csv", "SELECT DISTINCT ON (hs8) hs8, unit1_code AS declared_unit_code",
                   "regexp_full_match(hs8, '[0-9]{8}')"),
    "_partner": ("gacc_partners.csv", "SELECT DISTINCT partner_code", "regexp_full_match(partner_code, '[0-9]{3}')"),
}


def load_reference_tables(con: duckdb.DuckDBPyConnection, seeds_dir: Path = SEEDS_DIR) -> None:
    """The unit, commodity and partner lists the gate checks against (the same CSVs dbt seeds)."""
    con.execute(_MACROS_SQL.replace("{null_tokens}", NULL_TOKENS_SQL).replace("{nbsp}", "\u00a0"))
    for table, (filename, select, where) in _REFERENCE_TABLES.items():
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {table} AS {select} FROM read_csv($path, header=true, all_varchar=true) WHERE {where}",
            {"path": str(seeds_dir / filename)},
        )
