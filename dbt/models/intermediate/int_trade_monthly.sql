{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='month',
    on_schema_change='fail'
) }}
-- unique_key is one column, not a list: dbt-duckdb then deletes the months rebuilt with IN (a
-- semi-join) rather than DELETE ... USING, a join that pairs every old row of a month with every new one.
-- Monthly (non-cumulative) trade per flow x month x hs8 x partner, summed over the
-- optional dimensions (regime, province) and with USD and CNY combined side by side.
--
-- Two guards against double counting:
--   * when a key is loaded at several grains (a plain file and a by-regime file for the
--     same month), only the least detailed grain is used: it is the total;
--   * the quantity is the same in a USD and a CNY download, so it is taken once.
--
-- Almost every month x hs8 x partner has a single current fact (one grain, one currency): the
-- window and the grouping over all of them (279 s for ~50M rows of a national build with
-- 12 GB, out of memory at 1 GB) only change something for the few keys that have several.
-- Those are found by a count per hash of (flow, month, hs8, partner), one 8-byte column that
-- is light to group. A hash seen once is a key with one row, which is its own total: it
-- passes through as the grouping below would give it (its load the only load, one source
-- row). The rows of a hash seen more than once (a key with several rows, or two keys sharing
-- a hash) take the full path, which groups by the key itself: a collision costs time, never
-- a result.
with current_monthly_all as not materialized (
    select
        *,
        hash(flow, period_start, hs8, partner_code) as trade_key_hash
    -- the history's current rows, as int_customs_facts_current shows them, read from the history
    -- itself: a month partition of this model then depends on the same month of the history
    -- with no unpartitioned view in between, which a backfill of a month range in the Dagster
    -- UI needs to request the models one after the other (docs/monthly_partitions.md)
    from {{ ref('int_customs_facts_history') }}
    where is_current and not is_cumulative and {{ in_months('period_start') }}
        -- downloads without a partner column (world totals, province and regime breakdowns) are
        -- views of the same trade by another grouping: int_trade_by_grouping_monthly
        and partner_code is not null
        -- only USD and CNY rows reach the output (the full outer join below)
        and currency in ('USD', 'CNY')
),

combined_keys as (
    select trade_key_hash
    from current_monthly_all
    group by trade_key_hash
    having count(*) > 1
),

single_row as (
    select
        flow,
        period_start as month,
        hs8,
        partner_code,
        declared_unit_code as unit_code,
        quantity,
        quantity_kg,
        value_usd,
        value_cny,
        load_id,
        load_id as source_load_ids,
        cast(1 as bigint) as source_row_count
    from current_monthly_all
    anti join combined_keys using (trade_key_hash)
),

current_monthly as (
    select
        * exclude (trade_key_hash),
        {{ detail_level() }} as detail_level
    from current_monthly_all
    semi join combined_keys using (trade_key_hash)
),

least_detailed as (
    select *
    from current_monthly
    qualify detail_level = min(detail_level) over (partition by flow, period_start, hs8, partner_code, currency)
),

by_currency as (
    select
        flow,
        period_start as month,
        hs8,
        partner_code,
        currency,
        any_value(declared_unit_code) as unit_code,
        sum(quantity) as quantity,
        sum(quantity_kg) as quantity_kg,
        sum(value_usd) as value_usd,
        sum(value_cny) as value_cny,
        max_by(load_id, load_seq) as latest_load_id,
        -- the distinct loads, sorted: as string_agg(distinct load_id, ',' order by load_id), without
        -- an ordered aggregate per group (twice as fast at 3M rows, and lighter under the memory limit)
        array_to_string(list_sort(list_distinct(list(load_id))), ',') as load_ids,
        count(*) as source_row_count
    from least_detailed
    group by all
),

usd as (select * from by_currency where currency = 'USD'),
cny as (select * from by_currency where currency = 'CNY')

select * from single_row

union all

select
    coalesce(usd.flow, cny.flow) as flow,
    coalesce(usd.month, cny.month) as month,
    coalesce(usd.hs8, cny.hs8) as hs8,
    coalesce(usd.partner_code, cny.partner_code) as partner_code,
    coalesce(usd.unit_code, cny.unit_code) as unit_code,
    coalesce(usd.quantity, cny.quantity) as quantity,
    coalesce(usd.quantity_kg, cny.quantity_kg) as quantity_kg,
    usd.value_usd,
    cny.value_cny,
    coalesce(usd.latest_load_id, cny.latest_load_id) as load_id,
    concat_ws(',', usd.load_ids, cny.load_ids) as source_load_ids,
    coalesce(usd.source_row_count, 0) + coalesce(cny.source_row_count, 0) as source_row_count
from usd
full outer join cny
    on usd.flow = cny.flow
    and usd.month = cny.month
    and usd.hs8 = cny.hs8
    and usd.partner_code = cny.partner_code
