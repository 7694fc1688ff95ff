-- Cumulative downloads (a period range such as 202501-202506): year-to-date or
-- multi-month totals, kept as such and never spread over months.
--
-- As in int_trade_monthly: the window and the grouping only change something for the keys
-- with several current rows (grains or currencies), found by a count per hash of the key; a
-- hash seen once (in USD or CNY) is a key with one row, which passes through as the grouping
-- would give it. The rest take the full path, which groups by the key itself (a hash
-- collision costs time, never a result).
with current_cumulative_all as not materialized (
    select
        *,
        hash(flow, period_start, period_end, hs8, partner_code) as trade_key_hash
    from {{ ref('int_customs_facts_current') }}
    -- by partner: a cumulative download without a partner column has no place in the partner grain
    where is_cumulative and partner_code is not null
),

combined_keys as (
    select trade_key_hash
    from current_cumulative_all
    group by trade_key_hash
    having count(*) > 1 or bool_or(currency not in ('USD', 'CNY'))
),

single_row as (
    select
        flow,
        period_start,
        period_end,
        hs8,
        partner_code,
        declared_unit_code as unit_code,
        quantity,
        quantity_kg,
        value_usd,
        value_cny,
        load_id,
        cast(1 as bigint) as source_row_count
    from current_cumulative_all
    anti join combined_keys using (trade_key_hash)
),

current_cumulative as (
    select
        * exclude (trade_key_hash),
        {{ detail_level() }} as detail_level
    from current_cumulative_all
    semi join combined_keys using (trade_key_hash)
    qualify detail_level = min(detail_level) over (partition by flow, period_start, period_end, hs8, partner_code, currency)
)

select * from single_row

union all

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
