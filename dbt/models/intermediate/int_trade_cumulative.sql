-- Cumulative downloads (a period range such as 202501-202506): year-to-date or
-- multi-month totals, kept as such and never spread over months.
with current_cumulative as (
    select
        *,
        {{ detail_level() }} as detail_level
    from {{ ref('int_customs_facts_current') }}
    where is_cumulative
    qualify detail_level = min(detail_level) over (partition by flow, period_start, period_end, hs8, partner_code, currency)
)

select
    flow,
    period_start,
    period_end,
    hs8,
    partner_code,
    any_value(declared_unit_code) as unit_code,
    -- the quantity appears in both currencies' files: count it once
    coalesce(sum(quantity) filter (where currency = 'USD'), sum(quantity) filter (where currency = 'CNY')) as quantity,
    coalesce(sum(quantity_kg) filter (where currency = 'USD'), sum(quantity_kg) filter (where currency = 'CNY')) as quantity_kg,
    sum(value_usd) as value_usd,
    sum(value_cny) as value_cny,
    max_by(load_id, load_seq) as load_id,
    count(*) as source_row_count
from current_cumulative
group by all
