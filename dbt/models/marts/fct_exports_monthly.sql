{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='month',
    on_schema_change='fail'
) }}
-- unique_key is one column, not a list: dbt-duckdb then deletes the months rebuilt with IN (a
-- semi-join) rather than DELETE ... USING, a join that pairs every old row of a month with every new one.
-- China's exports per month x HS8 x GACC partner: the latest release, kg and USD.
-- Incremental: a build after new loads replaces just the months they touch.
select
    cast(t.month as date) as month,
    cast(t.hs8 as varchar) as hs8,
    cast(t.partner_code as varchar) as partner_code,
    cast(coalesce(p.partner_iso3, 'XXX') as varchar) as partner_iso3,
    {{ rescale_decimal('t.quantity_kg', 3) }} as quantity_kg,
    {{ rescale_decimal('t.quantity', 3) }} as quantity,
    cast(t.unit_code as varchar) as unit_code,
    {{ rescale_decimal('t.value_usd', 2) }} as value_usd,
    {{ rescale_decimal('t.value_cny', 2) }} as value_cny,
    cast(t.load_id as varchar) as load_id,
    cast(t.source_load_ids as varchar) as source_load_ids,
    cast(t.source_row_count as bigint) as source_row_count
from {{ ref('int_trade_monthly') }} t
left join {{ ref('dim_partner') }} p using (partner_code)
where t.flow = 'exports' and {{ in_months('t.month') }}
