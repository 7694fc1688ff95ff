"""The unit checks: every figure in its declared unit, and unit values (USD/kg) plausible.

A unit error (tonnes declared as kg is 1000x) blocks publishing; a unit value unusual for the
code, or outside its commodity family's band, warns. Both flows are checked the same way:
the exports under the checks' own names, the imports under the same names prefixed `imports_`.
"""

from __future__ import annotations

import dataclasses
import re

import duckdb

from dagster_project.lib.quality.check_spec import ERROR, FCT, IMPORTS_FCT, WARN, E, QualityCheck
from dagster_project.lib.quality.scope import Scope, render_full

# A unit value this many times away from the code's trailing median is a unit error
# (tonnes declared as kg is 1000x); MAD_LIMIT median absolute deviations is an outlier.
EXTREME_RATIO = 100.0
MAD_LIMIT = 3.0
MIN_HISTORY_MONTHS = 6  # a median and MAD over fewer months say little: no outlier warning before then
MAD_FLOOR_SHARE = 0.01  # a MAD below 1% of the median is raised to it: identical prices are not a licence to flag 0.1%

# Unit values against the code's trailing 12 months, computed once per gate run (a temp table of code-months):
# per code and month the median and MAD of its rows, then over the trailing 12 months the
# median of the monthly medians; the spread is the larger of the typical within-month MAD,
# the MAD of the monthly medians and a floor. Windows run over code-months, not rows, so the
# cost stays linear at millions of rows. A gate over the rebuilt months reads each and the 11
# before it ({window}): the medians are the same, and months_of_history, when the code's first
# month lies further back, counts from the window's start (12 or more either way, which is all
# the MIN_HISTORY_MONTHS test needs).
def _unit_value_statements(fact: str, name: str) -> tuple[str, ...]:
    """The statements that create the temp view `<name>s` over `fact` (via `<name>_monthly`, `<name>_medians`).

    Statements run in order. The medians per code and month are holistic aggregates whose
    state DuckDB keeps outside its memory limit (about 0.5 GB over 50M fact rows at once), so
    they are computed a year at a time ({year X}: prepare() runs that statement once per year).
    The rows are a view that joins the code-month medians to the fact table when a check reads
    it: a table of every row (50M) held ~1 GB of DuckDB's memory beside GX's populations.
    """
    statements = (
        """create or replace temp table {name}_monthly (
            hs8 varchar, month date, month_median double, month_mad double)""",
        """insert into {name}_monthly
        select hs8, month, median(usd_per_kg), mad(usd_per_kg)
        from (select month, hs8, value_usd / quantity_kg as usd_per_kg
              from {fact}
              where quantity_kg > 0 and value_usd > 0 and {window month} and {year month})
        group by all""",
        """create or replace temp table {name}_medians as
        with trailing_window as (
            select hs8, month,
                median(month_median) over w12 as median_usd_per_kg,
                greatest(median(month_mad) over w12, mad(month_median) over w12) as mad_usd_per_kg,
                datediff('month', min(month) over (partition by hs8), month) + 1 as months_of_history
            from {name}_monthly
            window w12 as (partition by hs8 order by month range between interval 11 month preceding and current row)
        )
        select * from trailing_window where {months month}""",
        """create or replace temp view {name}s as
        with uv as (
            select month, hs8, partner_code, partner_iso3, quantity_kg, value_usd,
                   value_usd / quantity_kg as usd_per_kg
            from {fact}
            where quantity_kg > 0 and value_usd > 0 and {months month}
        )
        select uv.*, t.median_usd_per_kg, t.mad_usd_per_kg, t.months_of_history,
            uv.usd_per_kg / t.median_usd_per_kg as ratio_to_median,
            abs(uv.usd_per_kg - t.median_usd_per_kg)
                / greatest(t.mad_usd_per_kg, {mad_floor_share} * t.median_usd_per_kg) as mad_score
        from uv join {name}_medians t using (hs8, month)""",
    )
    return tuple(s.replace("{fact}", fact).replace("{name}", name).replace("{mad_floor_share}", str(MAD_FLOOR_SHARE))
                 for s in statements)


FACTS = {"exports": "marts.fct_exports_monthly", "imports": "marts.fct_imports_monthly"}
# the temp view of each flow's unit values a check `requires`, and the fact table it reads
UNIT_VALUES = {"exports": "_unit_values", "imports": "_import_unit_values"}
PREPARE: dict[str, tuple[str, ...]] = {
    view: _unit_value_statements(FACTS[flow], view[:-1]) for flow, view in UNIT_VALUES.items()
}
_PREPARED_FACT = {view: FACTS[flow] for flow, view in UNIT_VALUES.items()}

_YEAR = re.compile(r"\{year ([^{}]+?)\}")


def prepare(con: duckdb.DuckDBPyConnection, table: str, scope: Scope | None = None) -> None:
    """Create PREPARE[table] for `scope` (None: every month).

    A statement with {year X} runs once per year of the fact table's months in the window it
    reads, with X restricted to that year.
    """
    def render(sql: str) -> str:
        return render_full(sql) if scope is None else scope.render(sql)

    for statement in PREPARE[table]:
        sql = render(statement)
        match = _YEAR.search(sql)
        if match is None:
            con.execute(sql)
            continue
        column = match.group(1).strip()
        years = con.execute(render(
            f"select distinct year(month) from {_PREPARED_FACT[table]} where {{window month}} order by 1")).fetchall()
        for (year,) in years:
            con.execute(_YEAR.sub(f"({column} >= date '{year}-01-01' and {column} < date '{year + 1}-01-01')", sql))


EXPORT_UNIT_CHECKS: tuple[QualityCheck, ...] = (
    # ------------------------------------------------------------------ units (errors)
    QualityCheck(
        name="units_match_declared_unit",
        asset=FCT,
        severity=ERROR,
        description="Every row is in its commodity's declared first unit (85051110: kg, code 09).",
        population_sql="""
            select f.hs8, f.unit_code, c.declared_unit_code, count(*) as rows
            from marts.fct_exports_monthly f left join marts.dim_commodity c using (hs8)
            where c.hs8 is not null and {months f.month}
            group by all""",
        expectations=(
            E("ExpectColumnPairValuesToBeEqual", column_A="unit_code", column_B="declared_unit_code"),
            E("ExpectColumnValuesToBeInSet", column="unit_code", value_set=["09"],
              row_condition='hs8=="85051110"', condition_parser="pandas"),
        ),
        sample_sql="""select f.month, f.hs8, f.partner_code, f.unit_code, c.declared_unit_code
            from marts.fct_exports_monthly f join marts.dim_commodity c using (hs8)
            where f.unit_code <> c.declared_unit_code and {months f.month} limit 20""",
    ),
    QualityCheck(
        name="no_kg_for_item_counted_codes",
        asset=FCT,
        severity=ERROR,
        description="Codes counted in items (or any non-kg unit) carry no kilogram quantity.",
        population_sql="""
            select f.hs8, c.declared_unit_code, count(f.quantity_kg) as rows_with_kg
            from marts.fct_exports_monthly f join marts.dim_commodity c using (hs8)
            where not c.is_kg and {months f.month} group by all""",
        expectations=(E("ExpectColumnValuesToBeBetween", column="rows_with_kg", min_value=0, max_value=0),),
        sample_sql="""select f.* from marts.fct_exports_monthly f join marts.dim_commodity c using (hs8)
            where not c.is_kg and f.quantity_kg is not null and {months f.month} limit 20""",
    ),
    QualityCheck(
        name="unit_value_not_extreme",
        asset=FCT,
        requires=("_unit_values",),
        severity=ERROR,
        description=(
            f"No unit value (USD/kg) {EXTREME_RATIO:.0f}x or more away from its code's trailing 12-month median: "
            "the signature of tonnes declared as kg (or kg as tonnes)."
        ),
        population_sql=f"""
            select month, count(distinct hs8) as codes,
                   count(distinct hs8) filter (where ratio_to_median >= {EXTREME_RATIO} or ratio_to_median <= {1 / EXTREME_RATIO}) as codes_off,
                   max(ratio_to_median) as max_ratio_to_median, arg_max(hs8, ratio_to_median) as code_of_max,
                   min(ratio_to_median) as min_ratio_to_median, arg_min(hs8, ratio_to_median) as code_of_min
            from _unit_values group by month order by month""",
        expectations=(
            E("ExpectColumnValuesToBeBetween", column="max_ratio_to_median", max_value=EXTREME_RATIO, strict_max=True),
            E("ExpectColumnValuesToBeBetween", column="min_ratio_to_median", min_value=1 / EXTREME_RATIO, strict_min=True),
        ),
        sample_sql=f"""select month, hs8, partner_code, partner_iso3, quantity_kg, value_usd,
                round(usd_per_kg, 2) as usd_per_kg, round(median_usd_per_kg, 2) as median_usd_per_kg,
                round(ratio_to_median, 1) as ratio
            from _unit_values
            where ratio_to_median >= {EXTREME_RATIO} or ratio_to_median <= {1 / EXTREME_RATIO}
            order by greatest(ratio_to_median, 1 / ratio_to_median) desc limit 20""",
    ),
    # ------------------------------------------------------------------ units (warnings)
    QualityCheck(
        name="unit_value_robust_outlier",
        asset=FCT,
        requires=("_unit_values",),
        severity=WARN,
        description=f"Unit values within {MAD_LIMIT:g} median absolute deviations of the code's trailing 12-month median (once a code has {MIN_HISTORY_MONTHS} months of history).",
        population_sql=f"""select month, count(distinct hs8) as codes,
                   count(distinct hs8) filter (where mad_score > {MAD_LIMIT}) as codes_off,
                   max(mad_score) as max_mad_score, arg_max(hs8, mad_score) as code_of_max
            from _unit_values where months_of_history >= {MIN_HISTORY_MONTHS} group by month order by month""",
        expectations=(E("ExpectColumnValuesToBeBetween", column="max_mad_score", max_value=MAD_LIMIT),),
        sample_sql=f"""select month, hs8, partner_code, partner_iso3, quantity_kg, value_usd,
                round(usd_per_kg, 2) as usd_per_kg, round(median_usd_per_kg, 2) as median_usd_per_kg,
                round(mad_score, 1) as mad_score
            from _unit_values where mad_score > {MAD_LIMIT} and months_of_history >= {MIN_HISTORY_MONTHS}
            order by mad_score desc limit 20""",
    ),
    QualityCheck(
        name="unit_value_within_family_band",
        asset=FCT,
        severity=WARN,
        description="Each code's monthly unit value lies in the plausible band of its commodity family (dim_commodity).",
        population_sql="""
            select f.month, f.hs8, c.family, sum(f.value_usd) / sum(f.quantity_kg) as usd_per_kg,
                   c.usd_per_kg_min, c.usd_per_kg_max
            from marts.fct_exports_monthly f join marts.dim_commodity c using (hs8)
            where c.usd_per_kg_min is not null and f.quantity_kg > 0 and f.value_usd > 0 and {months f.month}
            group by all""",
        expectations=(
            E("ExpectColumnPairValuesAToBeGreaterThanB", column_A="usd_per_kg", column_B="usd_per_kg_min", or_equal=True),
            E("ExpectColumnPairValuesAToBeGreaterThanB", column_A="usd_per_kg_max", column_B="usd_per_kg", or_equal=True),
        ),
    ),
)


def _over_imports(check: QualityCheck) -> QualityCheck:
    """An export unit check, run over the imports: the same SQL and expectations on fct_imports_monthly."""
    def sql(text: str | None) -> str | None:
        if text is None:
            return None
        return text.replace(FACTS["exports"], FACTS["imports"]).replace(UNIT_VALUES["exports"], UNIT_VALUES["imports"])

    return dataclasses.replace(
        check,
        name="imports_" + check.name,
        asset=IMPORTS_FCT,
        description="Imports: " + check.description,
        population_sql=sql(check.population_sql),
        sample_sql=sql(check.sample_sql),
        requires=tuple(UNIT_VALUES["imports"] if r == UNIT_VALUES["exports"] else r for r in check.requires),
    )


# Not the robust-outlier warning: the imports are a few partners per code whose unit values move
# together, so the MAD is tiny and a 3% move scores over 3 MADs (4 of 19 months of the sample).
IMPORT_UNIT_CHECKS = tuple(_over_imports(c) for c in EXPORT_UNIT_CHECKS if c.name != "unit_value_robust_outlier")
UNIT_CHECKS: tuple[QualityCheck, ...] = EXPORT_UNIT_CHECKS + IMPORT_UNIT_CHECKS
