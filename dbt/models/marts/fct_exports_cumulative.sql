-- Cumulative export downloads (year-to-date or multi-month totals) as loaded.
select
    cast(t.period_start as date) as period_start,
    cast(t.period_end as date) as period_end,
    {{ trade_fact_columns() }}
    cast(t.source_row_count as bigint) as source_row_count
from {{ ref('int_trade_cumulative') }} t
left join {{ ref('dim_partner') }} p using (partner_code)
where t.flow = 'exports'
