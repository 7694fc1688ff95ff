-- Cumulative export downloads (year-to-date or multi-month totals) as loaded.
select
    cast(t.period_start as date) as period_start,
    cast(t.period_end as date) as period_end,
    cast(t.hs8 as varchar) as hs8,
    cast(t.partner_code as varchar) as partner_code,
    cast(coalesce(p.partner_iso3, 'XXX') as varchar) as partner_iso3,
    {{ rescale_decimal('t.quantity_kg', 3) }} as quantity_kg,
    {{ rescale_decimal('t.quantity', 3) }} as quantity,
    cast(t.unit_code as varchar) as unit_code,
    {{ rescale_decimal('t.value_usd', 2) }} as value_usd,
    {{ rescale_decimal('t.value_cny', 2) }} as value_cny,
    cast(t.load_id as varchar) as load_id,
    cast(t.source_row_count as bigint) as source_row_count
from {{ ref('int_trade_cumulative') }} t
left join {{ ref('dim_partner') }} p using (partner_code)
where t.flow = 'exports'
