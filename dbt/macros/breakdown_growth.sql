{#- A flow's trade by one grouping of the downloads without a partner column ('province': the
    registration place, 'regime': the customs regime) per month x HS8, named from the seeds, with
    the growth mart's MoM/YoY definitions (calendar months, RANGE frames over a month number:
    macros/trade_marts.sql explains them) and each row's share of the world figure of the
    growth mart's WLD row (the world-total download where one is loaded). A breakdown never
    adds to the world: its rows are parts of it. -#}
{% macro breakdown_growth(flow, grouping) %}
{%- set growth_model = {'exports': 'export_growth_monthly', 'imports': 'import_growth_monthly'}[flow] -%}
{%- set names = {'province': 'gacc_provinces', 'regime': 'gacc_customs_regimes'}[grouping] -%}
with series as (
    select
        month, hs8, grouping_code, quantity_kg, value_usd, load_id, source_load_ids,
        year(month) * 12 + month(month) - 1 as month_number
    from {{ ref('int_trade_by_grouping_monthly') }}
    where flow = '{{ flow }}' and grouping = '{{ grouping }}' and {{ growth_source_filter('month') }}
),

windowed as (
    select
        *,
        -- a frame of one calendar month holds that month's row or none
        min(quantity_kg) over (series_by_month range between 1 preceding and 1 preceding) as prev_month_kg,
        min(value_usd) over (series_by_month range between 1 preceding and 1 preceding) as prev_month_usd,
        min(quantity_kg) over (series_by_month range between 12 preceding and 12 preceding) as prev_year_kg,
        min(value_usd) over (series_by_month range between 12 preceding and 12 preceding) as prev_year_usd
    from series
    window series_by_month as (partition by hs8, grouping_code order by month_number)
),

world as (
    select month, hs8, quantity_kg as world_kg, world_source
    from {{ ref(growth_model) }}
    where partner_iso3 = 'WLD' and {{ in_months('month', 'growth_months') }}
)

select
    cast(w.month as date) as month,
    cast(w.hs8 as varchar) as hs8,
    cast(w.grouping_code as varchar) as {{ grouping }}_code,
    cast(n.{{ grouping }}_name_zh as varchar) as {{ grouping }}_name_zh,
    cast(n.{{ grouping }}_name_en as varchar) as {{ grouping }}_name_en,
    cast(w.quantity_kg as decimal(38, 3)) as quantity_kg,
    cast(w.value_usd as decimal(38, 2)) as value_usd,
    cast({{ pct_change('w.quantity_kg', 'w.prev_month_kg') }} as double) as mom_pct,
    cast({{ pct_change('w.quantity_kg', 'w.prev_year_kg') }} as double) as yoy_pct,
    cast({{ pct_change('w.value_usd', 'w.prev_month_usd') }} as double) as value_mom_pct,
    cast({{ pct_change('w.value_usd', 'w.prev_year_usd') }} as double) as value_yoy_pct,
    cast(case when w.quantity_kg > 0 then w.value_usd / w.quantity_kg end as double) as unit_value_usd_per_kg,
    cast(world.world_kg as decimal(38, 3)) as world_quantity_kg,
    cast(case when world.world_kg > 0 then 100.0 * w.quantity_kg / world.world_kg end as double) as share_of_world_pct,
    cast(world.world_source as varchar) as world_source,
    cast(w.load_id as varchar) as load_id,
    cast(w.source_load_ids as varchar) as source_load_ids
from windowed w
left join world on world.month = w.month and world.hs8 = w.hs8
left join {{ ref(names) }} n on n.{{ grouping }}_code = w.grouping_code
where {{ in_months('w.month', 'growth_months') }}
{% endmacro %}
