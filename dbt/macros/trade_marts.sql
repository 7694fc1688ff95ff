{#- The monthly fact and growth marts of one flow (exports, imports): both flows have the same
    grain, columns and metric definitions, so each is one macro called by a model per flow. -#}

{#- The code, partner, measure and lineage columns of a trade fact, typed as its contract says,
    from an intermediate row `t` joined to dim_partner `p` (monthly and cumulative facts alike). -#}
{% macro trade_fact_columns() %}
    cast(t.hs8 as varchar) as hs8,
    cast(t.partner_code as varchar) as partner_code,
    cast(coalesce(p.partner_iso3, 'XXX') as varchar) as partner_iso3,
    {{ rescale_decimal('t.quantity_kg', 3) }} as quantity_kg,
    {{ rescale_decimal('t.quantity', 3) }} as quantity,
    cast(t.unit_code as varchar) as unit_code,
    {{ rescale_decimal('t.value_usd', 2) }} as value_usd,
    {{ rescale_decimal('t.value_cny', 2) }} as value_cny,
    cast(t.load_id as varchar) as load_id,
{%- endmacro %}

{#- China's trade of `flow` per month x HS8 x GACC partner: the latest release, kg and USD.
    Incremental: a build after new loads replaces just the months they touch. -#}
{% macro fct_trade_monthly(flow) %}
select
    cast(t.month as date) as month,
    {{ trade_fact_columns() }}
    cast(t.source_load_ids as varchar) as source_load_ids,
    cast(t.source_row_count as bigint) as source_row_count
from {{ ref('int_trade_monthly') }} t
left join {{ ref('dim_partner') }} p using (partner_code)
where t.flow = '{{ flow }}' and {{ in_months('t.month') }}
{% endmacro %}

{#- Growth metrics of `flow` per month x HS8 x partner (ISO3), plus the world ('WLD'). -#}
{% macro trade_growth_monthly(flow) %}
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
    select month, hs8, partner_iso3, sum(quantity_kg) as quantity_kg, sum(value_usd) as value_usd,
        cast(null as varchar) as world_source
    from {{ ref('fct_' ~ flow ~ '_monthly') }}
    where {{ growth_source_filter('month') }}
    group by all
),

-- the world: a world-total download (grouped by commodity only) where one is loaded, which
-- GACC's partner breakdown may not add up to (withheld partners); the sum of the partners
-- otherwise. Province and regime breakdowns never add to it.
world_total as (
    select month, hs8, quantity_kg, value_usd
    from {{ ref('int_trade_by_grouping_monthly') }}
    where flow = '{{ flow }}' and grouping = 'world' and {{ growth_source_filter('month') }}
),

partner_sum as (
    select month, hs8, sum(quantity_kg) as quantity_kg, sum(value_usd) as value_usd
    from by_partner
    group by all
),

world as (
    select
        coalesce(t.month, p.month) as month,
        coalesce(t.hs8, p.hs8) as hs8,
        'WLD' as partner_iso3,
        case when t.hs8 is not null then t.quantity_kg else p.quantity_kg end as quantity_kg,
        case when t.hs8 is not null then t.value_usd else p.value_usd end as value_usd,
        case when t.hs8 is not null then 'world_total' else 'sum_of_partners' end as world_source
    from world_total t
    full outer join partner_sum p on p.month = t.month and p.hs8 = t.hs8
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
        month, hs8, partner_iso3, quantity_kg, value_usd, world_source,
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
    cast({{ pct_change('value_usd', 'prev_year_usd') }} as double) as value_yoy_pct,
    cast(world_source as varchar) as world_source
from compared
where {{ in_months('month', 'growth_months') }}
{% endmacro %}
