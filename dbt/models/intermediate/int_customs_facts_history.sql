{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='period_start',
    on_schema_change='fail'
) }}
-- unique_key is one column, not a list: dbt-duckdb then deletes the months rebuilt with IN (a
-- semi-join) rather than DELETE ... USING, a join that pairs every old row of a month with every new one.
-- Every loaded fact with the period it was the latest word on its key.
-- GACC's rule is that the latest release prevails: a later load with the same key
-- (flow, period, hs8, partner, regime, province, currency) supersedes the earlier one.
-- The key contains the period, so a new load only touches the history of its own periods:
-- incremental builds recompute just those (var `months`).
-- As-of query ("what did we know on date D"):
--   select * from intermediate.int_customs_facts_history
--   where valid_from <= D and (valid_to is null or valid_to > D)
select
    *,
    loaded_at as valid_from,
    lead(loaded_at) over fact_key as valid_to,
    lead(load_id) over fact_key as superseded_by_load_id,
    lead(load_id) over fact_key is null as is_current
from {{ ref('stg_gacc__customs_rows') }}
where {{ in_months('period_start') }}
window fact_key as (
    partition by flow, period_start, period_end, hs8, partner_code, regime_code, province_code, currency
    order by load_seq
)
