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
--
-- The calendar months are looked up with RANGE frames over a month number (year * 12 +
-- month - 1) within each series, all in one window sort: `1 preceding` is exactly the month
-- before (or no row), `12 preceding` the same month a year earlier, the year so far is the
-- (month_of_year - 1) months before. Self-joins of the whole series for the previous month
-- and year, a second window for the YTD and an ASOF join for the prior YTD did the same with
-- four passes over ~52M rows of a national build (172 s with 12 GB).
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

-- The months with exports loaded (dim_month's has_exports), from the facts this model reads
-- anyway: reading dim_month would put an unpartitioned model between two month-partitioned
-- ones, and a backfill of a month range in the Dagster UI would stop before this model.
-- world has a row for every month of by_partner (a row per code, not per partner: fewer to
-- group) and covers every month the year-to-date flags below look at (growth_source_filter).
loaded_months as (
    select month, year(month) as year, month(month) as month_of_year,
        count(*) over (partition by year(month) order by month rows between unbounded preceding and current row) as months_loaded_ytd
    from (select distinct month from world)
),

numbered as (
    select
        *,
        year(month) * 12 + month(month) - 1 as month_number,
        month(month) - 1 as months_before_in_year
    from series
),

windowed as (
    select
        month, hs8, partner_iso3, quantity_kg, value_usd,
        -- a frame of one calendar month holds that month's row or none
        min(quantity_kg) over (series_by_month range between 1 preceding and 1 preceding) as prev_month_kg,
        min(value_usd) over (series_by_month range between 1 preceding and 1 preceding) as prev_month_usd,
        min(quantity_kg) over (series_by_month range between 12 preceding and 12 preceding) as prev_year_kg,
        min(value_usd) over (series_by_month range between 12 preceding and 12 preceding) as prev_year_usd,
        -- January to this month
        sum(quantity_kg) over (
            series_by_month range between months_before_in_year preceding and current row
        ) as ytd_quantity_kg_raw,
        -- January of the prior year to the same month a year earlier: the prior year's
        -- year-to-date, 0 when the series has no row in it
        case when count(*) over (
                series_by_month range between months_before_in_year + 12 preceding and 12 preceding
            ) > 0
            then sum(quantity_kg) over (
                series_by_month range between months_before_in_year + 12 preceding and 12 preceding
            )
            else 0 end as prior_ytd_kg
    from numbered
    window series_by_month as (partition by hs8, partner_iso3 order by month_number)
),

compared as (
    select
        cur.*,
        world.quantity_kg as world_kg,
        coalesce(lm.months_loaded_ytd = lm.month_of_year, false) as ytd_complete,
        coalesce(prior_lm.months_loaded_ytd = prior_lm.month_of_year, false) as prior_ytd_complete
    from windowed cur
    left join world
        on world.hs8 = cur.hs8 and world.month = cur.month
    left join loaded_months lm
        on lm.month = cur.month
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
