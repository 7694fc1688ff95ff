"""The quality gate: Great Expectations suites over aggregates that DuckDB computes.

Each check is a SQL query that DuckDB runs over the marts (millions of rows stay in DuckDB)
and that returns a small frame of aggregates, one row per code, month or load; GX then
validates that frame against the check's expectations. A second query, run only when the
check fails, returns a sample of the raw offending rows for the Dagster UI.

Severity: unit errors, rows or totals lost or added, and partner-vs-world mismatches are
errors (they block publishing); everything else warns.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import duckdb

ERROR, WARN = "ERROR", "WARN"

# A unit value this many times away from the code's trailing median is a unit error
# (tonnes declared as kg is 1000x); MAD_LIMIT median absolute deviations is an outlier.
EXTREME_RATIO = 100.0
MAD_LIMIT = 3.0
MIN_HISTORY_MONTHS = 6  # a median and MAD over fewer months say little: no outlier warning before then
TOTALS_TOLERANCE = 0.01  # kg or currency units a total may differ by (rounding of 3- and 2-decimal figures)
MAD_FLOOR_SHARE = 0.01  # a MAD below 1% of the median is raised to it: identical prices are not a licence to flag 0.1%
PUBLISHED_TOLERANCE_PCT = 0.5
CUMULATIVE_TOLERANCE_PCT = 0.5
CNY_PER_USD = (6.0, 8.0)  # 2015-2026 range of the yuan, with margin
MIN_PARTNER_SHARE = 0.5  # a month with under half the code's usual number of partners warns


@dataclass(frozen=True)
class Expectation:
    type: str  # a great_expectations.expectations class name
    kwargs: dict[str, Any]


@dataclass(frozen=True)
class QualityCheck:
    name: str
    asset: str  # asset key, user string
    severity: str
    description: str
    population_sql: str  # the aggregates GX validates
    expectations: tuple[Expectation, ...]
    sample_sql: str | None = None  # failing raw rows, run only on failure
    requires: tuple[str, ...] = field(default_factory=tuple)  # temp tables from PREPARE


def E(type_: str, **kwargs) -> Expectation:
    return Expectation(type_, kwargs)


def _round4(column: str, scale: int) -> str:
    """round(column, scale) for a DECIMAL(38, s <= 4), through DECIMAL(18, 4) when the value fits.

    DuckDB rounds a 128-bit decimal about 25x slower than a 64-bit one (7 s of the
    reconciliation's 14 s at 5M rows); values under 10^14 fit in DECIMAL(18, 4) with the same result.
    """
    return (f"(case when {column} between -99999999999999 and 99999999999999 "
            f"then round(cast({column} as decimal(18, 4)), {scale}) else round({column}, {scale}) end)")


FCT = "marts/fct_exports_monthly"
GROWTH = "marts/export_growth_monthly"
RAW = "raw/customs_rows"

# Unit values against the code's trailing 12 months, computed once per gate run (a temp table of code-months):
# per code and month the median and MAD of its rows, then over the trailing 12 months the
# median of the monthly medians; the spread is the larger of the typical within-month MAD,
# the MAD of the monthly medians and a floor. Windows run over code-months, not rows, so the
# cost stays linear at millions of rows. An incremental gate reads a rebuilt month and the 11
# before it ({window}): the medians are the same, and months_of_history, when the code's first
# month lies further back, counts from the window's start (12 or more either way, which is all
# the MIN_HISTORY_MONTHS test needs).
PREPARE: dict[str, tuple[str, ...]] = {
    # Statements run in order. The medians per code and month are holistic aggregates whose
    # state DuckDB keeps outside its memory limit (about 0.5 GB over 50M fact rows at once), so
    # they are computed a year at a time ({year X}: prepare() runs that statement once per year).
    # The rows are a view that joins the code-month medians to the fact table when a check reads
    # it: a table of every row (50M) held ~1 GB of DuckDB's memory beside GX's populations.
    "_unit_values": (
        """create or replace temp table _unit_value_monthly (
            hs8 varchar, month date, month_median double, month_mad double)""",
        """insert into _unit_value_monthly
        select hs8, month, median(usd_per_kg), mad(usd_per_kg)
        from (select month, hs8, value_usd / quantity_kg as usd_per_kg
              from marts.fct_exports_monthly
              where quantity_kg > 0 and value_usd > 0 and {window month} and {year month})
        group by all""",
        """create or replace temp table _unit_value_medians as
        with trailing_window as (
            select hs8, month,
                median(month_median) over w12 as median_usd_per_kg,
                greatest(median(month_mad) over w12, mad(month_median) over w12) as mad_usd_per_kg,
                datediff('month', min(month) over (partition by hs8), month) + 1 as months_of_history
            from _unit_value_monthly
            window w12 as (partition by hs8 order by month range between interval 11 month preceding and current row)
        )
        select * from trailing_window where {months month}""",
        f"""create or replace temp view _unit_values as
        with uv as (
            select month, hs8, partner_code, partner_iso3, quantity_kg, value_usd,
                   value_usd / quantity_kg as usd_per_kg
            from marts.fct_exports_monthly
            where quantity_kg > 0 and value_usd > 0 and {{months month}}
        )
        select uv.*, t.median_usd_per_kg, t.mad_usd_per_kg, t.months_of_history,
            uv.usd_per_kg / t.median_usd_per_kg as ratio_to_median,
            abs(uv.usd_per_kg - t.median_usd_per_kg)
                / greatest(t.mad_usd_per_kg, {MAD_FLOOR_SHARE} * t.median_usd_per_kg) as mad_score
        from uv join _unit_value_medians t using (hs8, month)""",
    ),
}
_YEAR = re.compile(r"\{year ([^{}]+?)\}")


def prepare(con: duckdb.DuckDBPyConnection, table: str, scope: "Scope | None" = None) -> None:
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
            "select distinct year(month) from marts.fct_exports_monthly where {window month} order by 1")).fetchall()
        for (year,) in years:
            con.execute(_YEAR.sub(f"({column} >= date '{year}-01-01' and {column} < date '{year + 1}-01-01')", sql))


CHECKS: tuple[QualityCheck, ...] = (
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
        name="quantities_and_values_not_negative",
        asset=FCT,
        severity=ERROR,
        description="No negative quantity or value anywhere.",
        population_sql="""
            select hs8, min(quantity) as min_quantity, min(quantity_kg) as min_quantity_kg,
                   min(value_usd) as min_value_usd, min(value_cny) as min_value_cny
            from marts.fct_exports_monthly where {months month} group by hs8""",
        expectations=tuple(
            E("ExpectColumnValuesToBeBetween", column=c, min_value=0)
            for c in ("min_quantity", "min_quantity_kg", "min_value_usd", "min_value_cny")
        ),
        sample_sql="""select * from marts.fct_exports_monthly
            where (quantity < 0 or quantity_kg < 0 or value_usd < 0 or value_cny < 0) and {months month} limit 20""",
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
    # ------------------------------------------------------------------ totals (errors)
    QualityCheck(
        name="fact_keys_unique",
        asset=FCT,
        severity=ERROR,
        description="One row per month x hs8 x partner: no partner row duplicated.",
        population_sql="""
            select month, hs8, partner_code, count(*) as n from marts.fct_exports_monthly
            where {months month}
            group by all having count(*) > 1""",
        expectations=(E("ExpectTableRowCountToEqual", value=0),),
    ),
    QualityCheck(
        name="rows_and_totals_reconcile_raw_staging_fact",
        asset=FCT,
        severity=ERROR,
        description=(
            "No row, kg or dollar lost or added: raw = staging for every load, and the current monthly export rows "
            "of staging add up to marts.fct_exports_monthly for every month and code."
        ),
        population_sql=f"""
            with raw_by_load as (
                select load_id, count(*) as n,
                       sum(quantity * unit_factor) filter (where declared_unit_code = '09') as kg,
                       sum(value) filter (where currency = 'USD') as usd,
                       sum(value) filter (where currency = 'CNY') as cny
                from raw.customs_rows where {{months period_start}} group by 1
            ),
            stg_by_load as (
                select load_id, count(*) as n, sum(quantity_kg) as kg, sum(value_usd) as usd, sum(value_cny) as cny
                from staging.stg_gacc__customs_rows where {{months period_start}} group by 1
            ),
            layer_raw_staging as (
                select 'raw->staging' as layer, 'load ' || coalesce(r.load_id, s.load_id) as key,
                       abs(coalesce(r.n, 0) - coalesce(s.n, 0)) as rows_diff,
                       abs(coalesce(r.kg, 0) - coalesce(s.kg, 0)) as kg_diff,
                       abs(coalesce(r.usd, 0) - coalesce(s.usd, 0)) as usd_diff,
                       abs(coalesce(r.cny, 0) - coalesce(s.cny, 0)) as cny_diff
                from raw_by_load r full join stg_by_load s using (load_id)
            ),
            exports as (
                select period_start, period_end, hs8, partner_code, regime_code, province_code, currency, load_seq,
                       quantity_kg, value_usd, value_cny, hash(period_start, hs8, partner_code) as partner_month
                from staging.stg_gacc__customs_rows
                where flow = 'exports' and not is_cumulative and {{months period_start}}
            ),
            repeated as (
                -- partner-months with several rows (revisions, both currencies, regimes or
                -- provinces) are the only ones that need the latest-load and least-detailed-grain
                -- logic below; the others (nearly all) are their own figure. A hash collision
                -- only sends a few more rows the long way.
                select partner_month from exports group by partner_month having count(*) > 1
            ),
            single as (
                select period_start as month, hs8, partner_code, 1 as n, quantity_kg as kg, value_usd as usd, value_cny as cny
                from exports anti join repeated using (partner_month)
            ),
            latest as (
                -- written independently of the dbt models, with aggregates only (no windows, no joins
                -- back to the rows): the latest load's figures of each key ...
                select period_start, hs8, partner_code, currency,
                       (case when regime_code is not null then 1 else 0 end) + (case when province_code is not null then 2 else 0 end) as lvl,
                       arg_max_null(quantity_kg, load_seq) as kg, arg_max_null(value_usd, load_seq) as usd,
                       arg_max_null(value_cny, load_seq) as cny
                from exports semi join repeated using (partner_month)
                group by period_start, period_end, hs8, partner_code, regime_code, province_code, currency
            ),
            by_level as (
                select period_start, hs8, partner_code, currency, lvl, count(*) as n,
                       sum(kg) as kg, sum(usd) as usd, sum(cny) as cny
                from latest group by all
            ),
            least_detailed as (
                -- ... at the least detailed grain loaded ...
                select period_start, hs8, partner_code, currency,
                       arg_min(n, lvl) as n, arg_min_null(kg, lvl) as kg, arg_min_null(usd, lvl) as usd, arg_min_null(cny, lvl) as cny
                from by_level group by all
            ),
            stg_expected_partner as (
                -- ... with the quantity counted once across currencies
                select period_start as month, hs8, partner_code, sum(n) as n,
                       coalesce(sum(kg) filter (where currency = 'USD'), sum(kg) filter (where currency = 'CNY')) as kg,
                       sum(usd) as usd, sum(cny) as cny
                from least_detailed
                group by all
                union all by name
                select * from single
            ),
            stg_expected as (
                -- at the fact's precision: kg to 3 and money to 2 decimals per fact row
                select month, hs8, sum(n) as n, sum({_round4('kg', 3)}) as kg, sum({_round4('usd', 2)}) as usd, sum({_round4('cny', 2)}) as cny
                from stg_expected_partner
                group by all
            ),
            fct as (
                select month, hs8, sum(source_row_count) as n, sum(quantity_kg) as kg,
                       sum(value_usd) as usd, sum(value_cny) as cny, count(*) as fct_rows
                from marts.fct_exports_monthly where {{months month}} group by all
            ),
            layer_staging_fct as (
                select coalesce(e.month, f.month) as month, coalesce(e.hs8, f.hs8) as hs8,
                       abs(coalesce(e.n, 0) - coalesce(f.n, 0)) as rows_diff,
                       abs(coalesce(e.kg, 0) - coalesce(f.kg, 0)) as kg_diff,
                       abs(coalesce(e.usd, 0) - coalesce(f.usd, 0)) as usd_diff,
                       abs(coalesce(e.cny, 0) - coalesce(f.cny, 0)) as cny_diff
                from stg_expected e full join fct f on e.month = f.month and e.hs8 = f.hs8
            )
            select *, 1 as keys, (greatest(rows_diff, kg_diff, usd_diff, cny_diff) > {TOTALS_TOLERANCE})::int as keys_off,
                   null as worst_code from layer_raw_staging
            union all
            -- a row per month (GX validates thousands of rows, not a code-month each): the largest
            -- differences of its codes, how many codes are off and the code furthest off
            select 'staging->fct', strftime(month, '%Y-%m'), max(rows_diff), max(kg_diff), max(usd_diff), max(cny_diff),
                   count(*), count(*) filter (where greatest(rows_diff, kg_diff, usd_diff, cny_diff) > {TOTALS_TOLERANCE}),
                   arg_max(hs8, greatest(rows_diff, kg_diff, usd_diff, cny_diff))
                       filter (where greatest(rows_diff, kg_diff, usd_diff, cny_diff) > {TOTALS_TOLERANCE})
            from layer_staging_fct group by month""",
        expectations=tuple(
            E("ExpectColumnValuesToBeBetween", column=c, min_value=0, max_value=TOTALS_TOLERANCE)
            for c in ("rows_diff", "kg_diff", "usd_diff", "cny_diff")
        ),
    ),
    QualityCheck(
        name="partners_sum_to_world",
        asset=GROWTH,
        severity=ERROR,
        description="In export_growth_monthly, the partner rows of every month and code add up to its WLD row (kg and USD).",
        population_sql=f"""
            with diffs as (
                select coalesce(w.month, p.month) as month, coalesce(w.hs8, p.hs8) as hs8,
                       abs(coalesce(w.quantity_kg, 0) - coalesce(p.kg, 0)) as kg_diff,
                       abs(coalesce(w.value_usd, 0) - coalesce(p.usd, 0)) as usd_diff
                from (select month, hs8, quantity_kg, value_usd from marts.export_growth_monthly
                      where partner_iso3 = 'WLD' and {{growth_months month}}) w
                full join (select month, hs8, sum(quantity_kg) as kg, sum(value_usd) as usd
                           from marts.export_growth_monthly where partner_iso3 <> 'WLD' and {{growth_months month}} group by all) p
                  on w.month = p.month and w.hs8 = p.hs8
            )
            -- a row per month: its codes' largest differences, how many are off, the code furthest off
            select month, count(*) as codes, count(*) filter (where kg_diff > {TOTALS_TOLERANCE} or usd_diff > {TOTALS_TOLERANCE}) as codes_off,
                   max(kg_diff) as kg_diff, max(usd_diff) as usd_diff,
                   arg_max(hs8, greatest(kg_diff, usd_diff)) filter (where kg_diff > {TOTALS_TOLERANCE} or usd_diff > {TOTALS_TOLERANCE}) as worst_code
            from diffs group by month order by month""",
        expectations=(
            E("ExpectColumnValuesToBeBetween", column="kg_diff", min_value=0, max_value=TOTALS_TOLERANCE),
            E("ExpectColumnValuesToBeBetween", column="usd_diff", min_value=0, max_value=TOTALS_TOLERANCE),
        ),
    ),
    # ------------------------------------------------------------------ totals (warnings)
    QualityCheck(
        name="months_sum_to_cumulative",
        asset=FCT,
        severity=WARN,
        description=f"Monthly figures add up (within {CUMULATIVE_TOLERANCE_PCT}%) to every cumulative (year-to-date) figure loaded for the same months.",
        population_sql="""
            with held as (
                -- only ranges whose every month is loaded can be compared
                select c.* from marts.fct_exports_cumulative c
                where c.quantity_kg is not null and {overlaps c.period_start c.period_end}
                  and (select count(*) from marts.dim_month m where m.month between c.period_start and c.period_end and m.has_exports)
                      = datediff('month', c.period_start, c.period_end) + 1
            ),
            summed as (
                select h.period_start, h.period_end, h.hs8, h.partner_code, h.quantity_kg as cumulative_kg,
                       coalesce(sum(f.quantity_kg), 0) as monthly_sum_kg
                from held h
                left join marts.fct_exports_monthly f
                  on f.hs8 = h.hs8 and f.partner_code = h.partner_code and f.month between h.period_start and h.period_end
                  and {span:cumulative f.month}
                group by all
            )
            select *, 100 * abs(monthly_sum_kg - cumulative_kg) / nullif(cumulative_kg, 0) as diff_pct from summed""",
        expectations=(E("ExpectColumnValuesToBeBetween", column="diff_pct", min_value=0, max_value=CUMULATIVE_TOLERANCE_PCT),),
    ),
    QualityCheck(
        name="cny_usd_rate_plausible",
        asset=FCT,
        severity=WARN,
        description=f"Where USD and CNY downloads are both loaded, the implied CNY per USD lies in {CNY_PER_USD[0]}-{CNY_PER_USD[1]} (CNY values summed as USD fail this).",
        population_sql="""
            select month, sum(value_cny) / sum(value_usd) as cny_per_usd, count(*) as rows
            from marts.fct_exports_monthly where value_usd > 0 and value_cny > 0 and {months month} group by month""",
        expectations=(E("ExpectColumnValuesToBeBetween", column="cny_per_usd", min_value=CNY_PER_USD[0], max_value=CNY_PER_USD[1]),),
    ),
    QualityCheck(
        name="published_figures_reconcile",
        asset=FCT,
        severity=WARN,
        description=(
            f"Quoted figures in reference.published_figures match the warehouse within {PUBLISHED_TOLERANCE_PCT}% "
            "for every month and partner held; months not loaded are skipped, not failed."
        ),
        population_sql="""
            with published as (
                select cast(period_start || '-01' as date) as period_start, cast(period_end || '-01' as date) as period_end,
                       partner, quantity_t, source
                from reference.published_figures
                where evidence = 'quoted' and hs_scope = '85051110' and quantity_t is not null
            ),
            held as (
                select p.* from published p
                where {overlaps p.period_start p.period_end}
                  and (select count(*) from marts.dim_month m where m.month between p.period_start and p.period_end and m.has_exports)
                      = datediff('month', p.period_start, p.period_end) + 1
            ),
            magnets as (
                select f.month, f.partner_iso3, f.quantity_kg, coalesce(p.is_eu, false) as is_eu
                from marts.fct_exports_monthly f left join marts.dim_partner p using (partner_code)
                where f.hs8 = '85051110' and {span:published f.month}
            ),
            ours as (
                select h.period_start, h.period_end, h.partner, h.quantity_t, h.source,
                       coalesce(sum(f.quantity_kg), 0) / 1000 as warehouse_t
                from held h
                left join magnets f
                  on f.month between h.period_start and h.period_end
                  and (h.partner = 'WLD' or f.partner_iso3 = h.partner or (h.partner = 'EU' and f.is_eu))
                group by all
            )
            select strftime(period_start, '%Y-%m') as period_from, strftime(period_end, '%Y-%m') as period_to, partner,
                   quantity_t as published_t, round(warehouse_t, 1) as warehouse_t,
                   100 * abs(warehouse_t - quantity_t) / quantity_t as diff_pct, source
            from ours""",
        expectations=(E("ExpectColumnValuesToBeBetween", column="diff_pct", min_value=0, max_value=PUBLISHED_TOLERANCE_PCT),),
    ),
    QualityCheck(
        name="no_gap_months",
        asset=FCT,
        severity=WARN,
        description="No month missing inside a code's series (users often load only the months they need: this warns, never blocks).",
        population_sql="""
            with series as (
                select hs8, min(month) as first_month, max(month) as last_month, count(distinct month) as months_loaded
                from marts.fct_exports_monthly where {neighbourhood month} group by hs8
                having bool_or({months month})
            )
            select hs8, strftime(first_month, '%Y-%m') as first_month, strftime(last_month, '%Y-%m') as last_month,
                   datediff('month', first_month, last_month) + 1 - months_loaded as gap_months
            from series""",
        expectations=(E("ExpectColumnValuesToBeBetween", column="gap_months", min_value=0, max_value=0),),
        sample_sql="""
            with loaded as (select distinct hs8, month from marts.fct_exports_monthly where {neighbourhood month}),
            series as (select hs8, min(month) as a, max(month) as b from loaded group by hs8 having bool_or({months month}))
            select s.hs8, strftime(cast(m.range as date), '%Y-%m') as missing_month
            from series s, range(s.a, s.b + interval 1 month, interval 1 month) m
            where not exists (select 1 from loaded f where f.hs8 = s.hs8 and f.month = cast(m.range as date))
            order by 1, 2 limit 20""",
    ),
    QualityCheck(
        name="enough_partners_per_month",
        asset=FCT,
        severity=WARN,
        description=f"Each month of a code (with 4+ partners usually) has at least {MIN_PARTNER_SHARE:.0%} of its median number of partners.",
        population_sql=f"""
            with counts as (
                select hs8, month, count(distinct partner_code) as partners from marts.fct_exports_monthly
                where {{neighbourhood month}} group by all
            ),
            shares as (
                select hs8, month, partners, median(partners) over (partition by hs8) as usual_partners,
                       partners / median(partners) over (partition by hs8) as share_of_usual
                from counts
                qualify median(partners) over (partition by hs8) >= 4 and {{months month}}
            )
            -- a row per month: its codes' lowest share, how many codes are under the limit, the lowest code
            select strftime(month, '%Y-%m') as month, count(*) as codes,
                   count(*) filter (where share_of_usual < {MIN_PARTNER_SHARE}) as codes_off,
                   min(share_of_usual) as share_of_usual, arg_min(hs8, share_of_usual) as lowest_code,
                   arg_min(partners, share_of_usual) as its_partners, arg_min(usual_partners, share_of_usual) as its_usual_partners
            from shares group by month order by month""",
        expectations=(E("ExpectColumnValuesToBeBetween", column="share_of_usual", min_value=MIN_PARTNER_SHARE),),
    ),
    QualityCheck(
        name="all_landing_files_loaded",
        asset=RAW,
        severity=WARN,
        description="Every file in the landing directory was loaded (rejected files are listed in audit.rejected_files with their reasons).",
        # files still in the landing directory, with the content that was rejected (lib/report.py)
        population_sql="select file_path, reason from _current_rejections order by file_path",
        expectations=(E("ExpectTableRowCountToEqual", value=0),),
    ),
)


# --------------------------------------------------------------------------- what a gate run checks
# A full build's gate checks every month. An incremental build's gate checks the months it rebuilt
# (lib/incremental.py: Scope, since the last gate that passed), plus the months each check needs to
# judge them. The queries above mark where: `{months X}` the rebuilt months, `{growth_months X}`
# the months whose growth metrics were rebuilt, `{window X}` a rebuilt month and the 11 before it
# (trailing 12-month medians), `{neighbourhood X}` 12 months either side (a code's series around
# a rebuilt month: gaps, usual number of partners), `{overlaps A B}` periods A..B holding a rebuilt
# month, `{span:NAME X}` the months those periods cover (SPANS). Every one is `true` in a full check.
SPANS = {
    "cumulative": "select min(period_start), max(period_end) from marts.fct_exports_cumulative where {overlaps period_start period_end}",
    "published": """select min(s), max(e) from (
        select cast(period_start || '-01' as date) as s, cast(period_end || '-01' as date) as e
        from reference.published_figures where evidence = 'quoted' and hs_scope = '85051110' and quantity_t is not null)
        where {overlaps s e}""",
}
_PLACEHOLDER = re.compile(r"\{(months|growth_months|window|neighbourhood|overlaps|span:\w+) ([^{}]+?)\}")
WINDOW_BEFORE = 11  # the trailing 12-month window of the unit-value checks
NEIGHBOURHOOD = 12


def _shift(month: dt.date, n: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + n
    return dt.date(index // 12, index % 12 + 1, 1)


def _around(months, before: int, after: int) -> list[dt.date]:
    return sorted({_shift(m, k) for m in months for k in range(-before, after + 1)})


def _in(column: str, months) -> str:
    if not months:
        return "false"
    return f"{column} in (" + ", ".join(f"date '{m:%Y-%m-%d}'" for m in sorted(set(months))) + ")"


@dataclass(frozen=True)
class Scope:
    """The months an incremental gate checks (lib/incremental.py builds it; None means every month)."""

    months: tuple[dt.date, ...]
    growth_months: tuple[dt.date, ...] = ()

    def render(self, sql: str, spans: dict[str, tuple | None] | None = None) -> str:
        def sub(match: re.Match) -> str:
            kind, arg = match.group(1), match.group(2).strip()
            if kind == "months":
                return _in(arg, self.months)
            if kind == "growth_months":
                return _in(arg, self.growth_months)
            if kind == "window":
                return _in(arg, _around(self.months, WINDOW_BEFORE, 0))
            if kind == "neighbourhood":
                return _in(arg, _around(self.months, NEIGHBOURHOOD, NEIGHBOURHOOD))
            if kind == "overlaps":
                start, end = arg.split()
                return "(" + " or ".join(f"({start} <= date '{m:%Y-%m-%d}' and {end} >= date '{m:%Y-%m-%d}')"
                                         for m in self.months) + ")" if self.months else "false"
            span = (spans or {}).get(kind.split(":", 1)[1])
            if not span or span[0] is None:
                return "false"
            return f"{arg} between date '{span[0]:%Y-%m-%d}' and date '{span[1]:%Y-%m-%d}'"

        return _PLACEHOLDER.sub(sub, sql)

    def label(self) -> str:
        return month_label(self.months)

    def describe(self, check: "QualityCheck") -> str:
        """Which months `check` looked at, in words (the gate's metadata)."""
        sql = " ".join(filter(None, [check.population_sql, *(s for t in check.requires for s in PREPARE[t])]))
        months = month_label(self.months)
        if not self.months and not self.growth_months and _PLACEHOLDER.search(sql):
            return "none (no month rebuilt since the last gate that passed)"
        if "{growth_months" in sql:
            return f"growth metrics of {month_label(self.growth_months)}"
        if "{window" in sql:
            return f"{months}, against the trailing 12 months ({month_label(_around(self.months, WINDOW_BEFORE, 0))})"
        if "{neighbourhood" in sql:
            return f"{months}, within the series {month_label(_around(self.months, NEIGHBOURHOOD, NEIGHBOURHOOD))}"
        if "{overlaps" in sql:
            return f"periods holding {months}"
        if "{months" in sql:
            return months
        return "not by month"


def render_full(sql: str) -> str:
    """A query over every month: each placeholder is `true`."""
    return _PLACEHOLDER.sub("true", sql)


def month_label(months) -> str:
    """'2023-11..2024-01, 2025-06' (dates or 'YYYY-MM-DD' strings)."""
    ordered = sorted({dt.date.fromisoformat(m) if isinstance(m, str) else m for m in months})
    out, i = [], 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == _shift(ordered[j], 1):
            j += 1
        out.append(f"{ordered[i]:%Y-%m}" if i == j else f"{ordered[i]:%Y-%m}..{ordered[j]:%Y-%m}")
        i = j + 1
    return ", ".join(out) or "none"


@dataclass
class CheckOutcome:
    check: QualityCheck
    passed: bool
    observed: str
    expectation_results: list[dict]
    failing_sample: list[dict]
    population_rows: int
    seconds: float
    months_checked: str = "all months"

    @property
    def severity(self) -> str:
        return self.check.severity


def _disable_progress_bars() -> None:
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")


def _summarise(expectation_type: str, result: dict) -> str:
    if result.get("observed_value") is not None:
        return f"{expectation_type}: observed {result['observed_value']}"
    unexpected = result.get("unexpected_count")
    total = result.get("element_count")
    sample = result.get("partial_unexpected_list") or []
    shown = ", ".join(str(v) for v in sample[:3])
    return f"{expectation_type}: {unexpected} of {total} unexpected" + (f" (e.g. {shown})" if shown else "")


def run_checks(
    con: duckdb.DuckDBPyConnection,
    docs_dir: Path | None = None,
    checks: tuple[QualityCheck, ...] = CHECKS,
    rejected_files: list[tuple[str, str]] | None = None,
    on_result: Callable[[CheckOutcome], None] | None = None,
    scope: Scope | None = None,
) -> list[CheckOutcome]:
    """Validate every check with GX (imported here: it takes seconds) and build data docs.

    `scope`: the months an incremental build rebuilt (see Scope); None checks every month.
    """
    import time

    _disable_progress_bars()
    import great_expectations as gx
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier
    from great_expectations.data_context.types.base import ProgressBarsConfig

    def render(sql: str) -> str:
        return render_full(sql) if scope is None else scope.render(sql, spans)

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    site_names = []
    if docs_dir is not None:
        docs_dir.mkdir(parents=True, exist_ok=True)
        context.add_data_docs_site(
            site_name="quality_gate",
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
        site_names = ["quality_gate"]
    source = context.data_sources.add_pandas("duckdb_aggregates")
    outcomes = []
    # rejected files still in the landing directory as they were rejected (a rejection of a file
    # since fixed or removed is history, not a warning)
    con.execute("CREATE OR REPLACE TEMP TABLE _current_rejections (file_path VARCHAR, reason VARCHAR)")
    if rejected_files:
        con.executemany("INSERT INTO _current_rejections VALUES (?, ?)", rejected_files)
    spans: dict[str, tuple | None] = {}
    if scope is not None:
        used = " ".join(c.population_sql + (c.sample_sql or "") for c in checks)
        for name, sql in SPANS.items():
            if "{span:" + name in used:
                spans[name] = con.execute(scope.render(sql)).fetchone()
    prepared: set[str] = set()
    docs: list = []  # validation results and suites, rendered into data docs once at the end
    for check in checks:
        started = time.perf_counter()
        for table in check.requires:
            if table not in prepared:
                prepare(con, table, scope)
                prepared.add(table)
        sql = render(check.population_sql)
        try:
            frame = con.execute(sql).df()
        except duckdb.Error as exc:
            raise RuntimeError(f"quality check {check.name}: its query failed: {exc}") from exc
        batch_definition = source.add_dataframe_asset(check.name).add_batch_definition_whole_dataframe("all")
        suite = context.suites.add(gx.ExpectationSuite(name=check.name, meta={"severity": check.severity, "asset": check.asset}))
        for expectation in check.expectations:
            suite.add_expectation(getattr(gx.expectations, expectation.type)(**expectation.kwargs))
        validation = context.validation_definitions.add(gx.ValidationDefinition(name=check.name, data=batch_definition, suite=suite))
        checkpoint = context.checkpoints.add(gx.Checkpoint(name=f"gate_{check.name}", validation_definitions=[validation]))
        run = checkpoint.run(batch_parameters={"dataframe": frame})
        result_id, validation_result = next(iter(run.run_results.items()))
        docs += [result_id, ExpectationSuiteIdentifier(name=check.name)]
        results = [
            {
                "expectation": r.expectation_config.type,
                "kwargs": {k: v for k, v in r.expectation_config.kwargs.items() if k != "batch_id"},
                "success": bool(r.success),
                "summary": _summarise(r.expectation_config.type, r.result),
            }
            for r in validation_result.results
        ]
        passed = bool(validation_result.success)
        observed = "; ".join(r["summary"] for r in results)
        sample: list[dict] = []
        if not passed:
            sample_sql = check.sample_sql
            if sample_sql:
                sample = con.execute(render(sample_sql)).df().head(20).to_dict("records")
            else:
                sample = frame.head(20).to_dict("records") if check.expectations[0].type == "ExpectTableRowCountToEqual" else _failing_rows(frame, check)
        outcome = CheckOutcome(check, passed, observed, results, sample, len(frame), time.perf_counter() - started,
                               "all months" if scope is None else scope.describe(check))
        outcomes.append(outcome)
        del frame
        _return_freed_memory()
        if on_result:
            on_result(outcome)
    if site_names and docs:
        # one data-docs build for the whole gate (a build per checkpoint re-renders the index each time)
        context.build_data_docs(site_names=site_names, resource_identifiers=docs)
    del context, source
    _return_freed_memory(collect=True)
    return outcomes


@functools.lru_cache(maxsize=1)
def _libc():
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def _return_freed_memory(collect: bool = False) -> None:
    """Hand the heap freed by a check back to the system: glibc keeps it otherwise, and the
    steps after the gate (the Parquet export's DuckDB) would stack on top of it. `collect`
    also frees GX's reference cycles (0.15 s a time, so once, at the end of the gate)."""
    import gc

    if collect:
        gc.collect()
    trim = getattr(_libc(), "malloc_trim", None)  # glibc only (not macOS, musl): elsewhere nothing to trim
    if trim is not None:
        trim(0)


def _failing_rows(frame, check: QualityCheck) -> list[dict]:
    """Rows of the aggregate frame that break a between-expectation (for the UI sample)."""
    import pandas as pd

    mask = pd.Series(False, index=frame.index)
    for expectation in check.expectations:
        kw = expectation.kwargs
        if expectation.type == "ExpectColumnValuesToBeBetween" and kw["column"] in frame:
            col = frame[kw["column"]]
            if kw.get("min_value") is not None:
                mask |= col < kw["min_value"] if not kw.get("strict_min") else col <= kw["min_value"]
            if kw.get("max_value") is not None:
                mask |= col > kw["max_value"] if not kw.get("strict_max") else col >= kw["max_value"]
        elif expectation.type == "ExpectColumnPairValuesAToBeGreaterThanB":
            a, b = frame[kw["column_A"]], frame[kw["column_B"]]
            mask |= a < b if kw.get("or_equal") else a <= b
        elif expectation.type == "ExpectColumnPairValuesToBeEqual":
            mask |= frame[kw["column_A"]] != frame[kw["column_B"]]
    return frame[mask].head(20).to_dict("records")


def docs_index(docs_dir: Path) -> Path:
    return docs_dir / "index.html"
