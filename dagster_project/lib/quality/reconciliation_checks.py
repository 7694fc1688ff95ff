"""The reconciliation checks: no row, kilogram or dollar lost or added between the layers, and
the figures agree with the world totals, the cumulative downloads, the published figures and
the exchange rate.

Rows or totals lost or added are errors (they block publishing), and so is a world figure made
of the partners that does not add up to them; a loaded world-total download that the partner
breakdown does not add up to (GACC withholds some partners) and the comparisons with other
sources warn.
"""

from __future__ import annotations

from dagster_project.lib.quality.check_spec import ERROR, FCT, GROWTH, WARN, E, QualityCheck

TOTALS_TOLERANCE = 0.01  # kg or currency units a total may differ by (rounding of 3- and 2-decimal figures)
PUBLISHED_TOLERANCE_PCT = 0.5
CUMULATIVE_TOLERANCE_PCT = 0.5
CNY_PER_USD = (6.0, 8.0)  # 2015-2026 range of the yuan, with margin


def _round4(column: str, scale: int) -> str:
    """round(column, scale) for a DECIMAL(38, s <= 4), through DECIMAL(18, 4) when the value fits.

    DuckDB rounds a 128-bit decimal about 25x slower than a 64-bit one (7 s of the
    reconciliation's 14 s at 5M rows); values under 10^14 fit in DECIMAL(18, 4) with the same result.
    """
    return (f"(case when {column} between -99999999999999 and 99999999999999 "
            f"then round(cast({column} as decimal(18, 4)), {scale}) else round({column}, {scale}) end)")


# The months the periods holding a rebuilt month cover ({span:NAME X} in the queries below).
SPANS = {
    "cumulative": "select min(period_start), max(period_end) from marts.fct_exports_cumulative where {overlaps period_start period_end}",
    "published": """select min(s), max(e) from (
        select cast(period_start || '-01' as date) as s, cast(period_end || '-01' as date) as e
        from reference.published_figures where evidence = 'quoted' and flow = 'exports' and reporter = 'CHN' and hs_scope = '85051110' and quantity_t is not null)
        where {overlaps s e}""",
}

RECONCILIATION_CHECKS: tuple[QualityCheck, ...] = (
    # ------------------------------------------------------------------ totals (errors)
    QualityCheck(
        name="rows_and_totals_reconcile_raw_staging_fact",
        asset=FCT,
        severity=ERROR,
        description=(
            "No row, kg or dollar lost or added: raw = staging for every load, and the current monthly export rows "
            "by partner of staging (the latest load of each key, unless a new version of its file withdrew it) add up to marts.fct_exports_monthly for every month and code (rows without a "
            "partner, world totals and province or regime breakdowns, are another view of the same trade)."
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
            replaced_loads as (
                -- loads a later version of the same file replaced whole: a key whose latest row
                -- comes from one of them was withdrawn by that version
                select load_id from (
                    select load_id, lead(load_id) over (partition by file_path order by load_seq) as next_version
                    from raw.customs_loads
                ) where next_version is not null
            ),
            exports as (
                select period_start, period_end, hs8, partner_code, regime_code, province_code, currency, load_seq,
                       quantity_kg, value_usd, value_cny, hash(period_start, hs8, partner_code) as partner_month,
                       load_id in (select load_id from replaced_loads) as replaced
                from staging.stg_gacc__customs_rows
                where flow = 'exports' and not is_cumulative and {{months period_start}} and partner_code is not null
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
                where not replaced
            ),
            latest as (
                -- written independently of the dbt models, with aggregates only (no windows, no joins
                -- back to the rows): the latest load's figures of each key ...
                select period_start, hs8, partner_code, currency,
                       (case when regime_code is not null then 1 else 0 end) + (case when province_code is not null then 2 else 0 end) as lvl,
                       arg_max_null(quantity_kg, load_seq) as kg, arg_max_null(value_usd, load_seq) as usd,
                       arg_max_null(value_cny, load_seq) as cny, arg_max(replaced, load_seq) as replaced
                from exports semi join repeated using (partner_month)
                group by period_start, period_end, hs8, partner_code, regime_code, province_code, currency
            ),
            by_level as (
                select period_start, hs8, partner_code, currency, lvl, count(*) as n,
                       sum(kg) as kg, sum(usd) as usd, sum(cny) as cny
                from latest where not replaced group by period_start, hs8, partner_code, currency, lvl
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
        description=(
            "In export_growth_monthly, every month and code without a world-total download has a WLD row that is "
            "the sum of its partner rows (kg and USD); where a world-total download is loaded, WLD is that figure "
            "(partners_add_up_to_world_total compares them)."
        ),
        population_sql=f"""
            with diffs as (
                select coalesce(w.month, p.month) as month, coalesce(w.hs8, p.hs8) as hs8,
                       abs(coalesce(w.quantity_kg, 0) - coalesce(p.kg, 0)) as kg_diff,
                       abs(coalesce(w.value_usd, 0) - coalesce(p.usd, 0)) as usd_diff
                from (select month, hs8, quantity_kg, value_usd, world_source from marts.export_growth_monthly
                      where partner_iso3 = 'WLD' and {{growth_months month}}) w
                full join (select month, hs8, sum(quantity_kg) as kg, sum(value_usd) as usd
                           from marts.export_growth_monthly where partner_iso3 <> 'WLD' and {{growth_months month}} group by all) p
                  on w.month = p.month and w.hs8 = p.hs8
                where w.world_source is distinct from 'world_total'
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
        name="partners_add_up_to_world_total",
        asset=GROWTH,
        severity=WARN,
        description=(
            "Where a world-total download (grouped by commodity only) is loaded for a month and code that also has "
            "partner rows, the partners add up to it (kg and USD). GACC withholds some partners, so a difference "
            "is reported, never blocking: both figures are kept, the world total is the WLD row."
        ),
        population_sql="""
            with world as (
                select month, hs8, quantity_kg as world_kg, value_usd as world_usd
                from marts.export_growth_monthly
                where partner_iso3 = 'WLD' and world_source = 'world_total' and {growth_months month}
            ),
            partners as (
                select month, hs8, sum(quantity_kg) as partners_kg, sum(value_usd) as partners_usd
                from marts.export_growth_monthly
                where partner_iso3 <> 'WLD' and {growth_months month}
                group by all
            )
            select strftime(month, '%Y-%m') as month, hs8, world_kg, partners_kg,
                   abs(coalesce(world_kg, 0) - coalesce(partners_kg, 0)) as kg_diff,
                   abs(coalesce(world_usd, 0) - coalesce(partners_usd, 0)) as usd_diff,
                   round(100 * (coalesce(partners_kg, 0) - world_kg) / nullif(world_kg, 0), 2) as partners_vs_world_pct
            from world join partners using (month, hs8)
            order by kg_diff desc""",
        expectations=(
            E("ExpectColumnValuesToBeBetween", column="kg_diff", min_value=0, max_value=TOTALS_TOLERANCE),
            E("ExpectColumnValuesToBeBetween", column="usd_diff", min_value=0, max_value=TOTALS_TOLERANCE),
        ),
    ),
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
                where evidence = 'quoted' and flow = 'exports' and reporter = 'CHN' and hs_scope = '85051110' and quantity_t is not null
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
                union all
                -- the world is the WLD row: the world-total download where one is loaded
                select month, 'WLD', quantity_kg, false from marts.export_growth_monthly
                where hs8 = '85051110' and partner_iso3 = 'WLD' and {span:published month}
            ),
            ours as (
                select h.period_start, h.period_end, h.partner, h.quantity_t, h.source,
                       coalesce(sum(f.quantity_kg), 0) / 1000 as warehouse_t
                from held h
                left join magnets f
                  on f.month between h.period_start and h.period_end
                  and (f.partner_iso3 = h.partner or (h.partner = 'EU' and f.is_eu))
                group by all
            )
            select strftime(period_start, '%Y-%m') as period_from, strftime(period_end, '%Y-%m') as period_to, partner,
                   quantity_t as published_t, round(warehouse_t, 1) as warehouse_t,
                   100 * abs(warehouse_t - quantity_t) / quantity_t as diff_pct, source
            from ours""",
        expectations=(E("ExpectColumnValuesToBeBetween", column="diff_pct", min_value=0, max_value=PUBLISHED_TOLERANCE_PCT),),
    ),
)
