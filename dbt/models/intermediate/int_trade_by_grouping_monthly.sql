{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='month',
    on_schema_change='fail'
) }}
-- unique_key is one column, not a list: dbt-duckdb then deletes the months rebuilt with IN (a
-- semi-join) rather than DELETE ... USING, a join that pairs every old row of a month with every new one.
-- Monthly trade from the downloads without a partner column, per flow x month x hs8 and grouping:
--   world    -- grouped by commodity only: THE world figure of its month, flow and code
--   province -- commodity x registration place (收发货人注册地)
--   regime   -- commodity x customs regime (贸易方式)
-- Each grouping is a view of the same total: they are never added to each other, nor to the
-- partner rows (int_trade_monthly). The quantity is the same in a USD and a CNY download, so it
-- is taken once. A province x regime file has no commodity column and is never loaded.
with current_facts as (
    select
        *,
        case when regime_code is null and province_code is null then 'world'
             when regime_code is null then 'province'
             when province_code is null then 'regime' end as grouping
    from {{ ref('int_customs_facts_history') }}
    where is_current and not is_cumulative and {{ in_months('period_start') }}
        and partner_code is null
        and currency in ('USD', 'CNY')
)

select
    flow,
    period_start as month,
    hs8,
    grouping,
    coalesce(province_code, regime_code) as grouping_code,
    any_value(declared_unit_code) as unit_code,
    coalesce(sum(quantity) filter (where currency = 'USD'), sum(quantity) filter (where currency = 'CNY')) as quantity,
    coalesce(sum(quantity_kg) filter (where currency = 'USD'), sum(quantity_kg) filter (where currency = 'CNY')) as quantity_kg,
    sum(value_usd) as value_usd,
    sum(value_cny) as value_cny,
    max_by(load_id, load_seq) as load_id,
    array_to_string(list_sort(list_distinct(list(load_id))), ',') as source_load_ids,
    count(*) as source_row_count
from current_facts
where grouping is not null
group by flow, period_start, hs8, grouping, coalesce(province_code, regime_code)
