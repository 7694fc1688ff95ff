{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='month',
    on_schema_change='fail'
) }}
-- unique_key is one column, not a list: dbt-duckdb then deletes the months rebuilt with IN (a
-- semi-join) rather than DELETE ... USING, a join that pairs every old row of a month with every new one.
-- Growth metrics per month x HS8 x partner (ISO3), plus the world ('WLD').
--
-- Comparisons are against the calendar month (month - 1 month, month - 12 months), never
-- lag() over rows: a month missing from a series then gives NULL instead of comparing
-- with whatever row came before. A partner absent in a loaded month exported nothing, so
-- its base is zero and its growth NULL too.
-- Year-to-date figures are shown only when every month of the year so far is loaded.
with by_partner as (
    select month, hs8, partner_iso3, sum(quantity_kg) as quantity_kg, sum(value_usd) as value_usd
    from {{ ref('fct_exports_monthly') }}
    where {{ growth_source_filter('month') }}
    group by all
),

world as (
    select month, hs8, 'WLD' as partner_iso3, sum(quantity_kg) as quantity_kg, sum(value_usd) as value_usd
    from by_partner
    group by all
),

series as (
    select * from by_partner
    union all
    select * from world
),

loaded_months as (
    select month, year, month_of_year,
        count(*) over (partition by year order by month rows between unbounded preceding and current row) as months_loaded_ytd
    from {{ ref('dim_month') }}
    where has_exports
),

with_ytd as (
    select
        series.*,
        sum(series.quantity_kg) over (
            partition by series.hs8, series.partner_iso3, year(series.month)
            order by series.month rows between unbounded preceding and current row
        ) as ytd_quantity_kg_raw,
        coalesce(lm.months_loaded_ytd = lm.month_of_year, false) as ytd_complete
    from series
    left join loaded_months lm using (month)
),

prior_ytd as (
    -- the prior year's year-to-date at the same calendar month: the latest row of the same
    -- series on or before month - 12 months, within that year
    select
        cur.month, cur.hs8, cur.partner_iso3,
        case when year(prev.month) = year(cur.month) - 1 then prev.ytd_quantity_kg_raw else 0 end as prior_ytd_kg
    from with_ytd cur
    asof left join with_ytd prev
        on prev.hs8 = cur.hs8
        and prev.partner_iso3 = cur.partner_iso3
        and prev.month <= cur.month - interval 12 month
),

compared as (
    select
        cur.*,
        prev_month.quantity_kg as prev_month_kg,
        prev_month.value_usd as prev_month_usd,
        prev_year.quantity_kg as prev_year_kg,
        prev_year.value_usd as prev_year_usd,
        world.quantity_kg as world_kg,
        prior_ytd.prior_ytd_kg,
        coalesce(prior_lm.months_loaded_ytd = prior_lm.month_of_year, false) as prior_ytd_complete
    from with_ytd cur
    left join series prev_month
        on prev_month.hs8 = cur.hs8 and prev_month.partner_iso3 = cur.partner_iso3
        and prev_month.month = cur.month - interval 1 month
    left join series prev_year
        on prev_year.hs8 = cur.hs8 and prev_year.partner_iso3 = cur.partner_iso3
        and prev_year.month = cur.month - interval 12 month
    left join world
        on world.hs8 = cur.hs8 and world.month = cur.month
    left join prior_ytd
        on prior_ytd.hs8 = cur.hs8 and prior_ytd.partner_iso3 = cur.partner_iso3 and prior_ytd.month = cur.month
    left join loaded_months prior_lm
        on prior_lm.month = cur.month - interval 12 month
)

select
    cast(month as date) as month,
    cast(hs8 as varchar) as hs8,
    cast(partner_iso3 as varchar) as partner_iso3,
    cast(quantity_kg as decimal(38, 3)) as quantity_kg,
    cast(value_usd as decimal(38, 2)) as value_usd,
    cast({{ pct_change('quantity_kg', 'prev_month_kg') }} as double) as mom_pct,
    cast({{ pct_change('quantity_kg', 'prev_year_kg') }} as double) as yoy_pct,
    cast(case when ytd_complete then ytd_quantity_kg_raw end as decimal(38, 3)) as ytd_quantity_kg,
    cast(case when ytd_complete and prior_ytd_complete then {{ pct_change('ytd_quantity_kg_raw', 'prior_ytd_kg') }} end as double) as ytd_yoy_pct,
    cast(case when quantity_kg > 0 then value_usd / quantity_kg end as double) as unit_value_usd_per_kg,
    cast(case when world_kg > 0 then 100.0 * quantity_kg / world_kg end as double) as share_of_world_pct,
    cast({{ pct_change('value_usd', 'prev_month_usd') }} as double) as value_mom_pct,
    cast({{ pct_change('value_usd', 'prev_year_usd') }} as double) as value_yoy_pct
from compared
where {{ in_months('month', 'growth_months') }}
