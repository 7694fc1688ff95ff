{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='period_start',
    on_schema_change='fail'
) }}
-- unique_key is one column, not a list: dbt-duckdb then deletes the months rebuilt with IN (a
-- semi-join) rather than DELETE ... USING, a join that pairs every old row of a month with every new one.
-- Every loaded fact with the period it was the latest word on its key.
-- GACC's rule is that the latest release prevails, and a fact ends at the first of:
--   * a later load with the same key (flow, period, hs8, partner, regime, province, currency);
--   * a new version of its own file (same path, new content), which replaces the previous
--     version's whole content: a key the new version no longer holds is withdrawn there.
-- The key contains the period, so a new load only touches the history of its own periods and,
-- as a new version, of its previous version's periods: incremental builds recompute just those
-- (var `months`; the plan: dagster_project/lib/transform/months_to_build.py).
-- As-of query ("what did we know on date D"):
--   select * from intermediate.int_customs_facts_history
--   where valid_from <= D and (valid_to is null or valid_to > D)
--
-- Almost every key is loaded once: a lead() over all rows sorted ~50M rows of a national
-- build (136 s with 12 GB, out of memory at 1 GB). Only the keys loaded more than once need
-- it. They are found by a count per hash of the key (one 8-byte column, light to group):
-- a hash seen once is a key seen once, ended only by a new version of its file; the rows of
-- a hash seen more than once (several loads of a key, or two keys sharing a hash) go through
-- the window, which partitions by the key itself, so a hash collision costs time, never a result.
with facts as not materialized (
    select
        *,
        hash(flow, period_start, period_end, hs8, partner_code, regime_code, province_code, currency) as fact_key_hash
    from {{ ref('stg_gacc__customs_rows') }}
    where {{ in_months('period_start') }}
),

-- the loads that a later version of the same file replaced (a few rows: one per file revision)
next_versions as (
    select
        load_id,
        lead(load_id) over file_versions as next_version_load_id,
        lead(load_seq) over file_versions as next_version_load_seq,
        lead(loaded_at) over file_versions as next_version_loaded_at
    from {{ ref('stg_gacc__customs_loads') }}
    window file_versions as (partition by file_path order by load_seq)
    qualify next_version_load_id is not null
),

revised_keys as (
    select fact_key_hash
    from facts
    group by fact_key_hash
    having count(*) > 1
),

key_versions as (
    select
        facts.* exclude (fact_key_hash),
        lead(load_id) over fact_key as next_key_load_id,
        lead(load_seq) over fact_key as next_key_load_seq,
        lead(loaded_at) over fact_key as next_key_loaded_at
    from facts
    semi join revised_keys using (fact_key_hash)
    window fact_key as (
        partition by flow, period_start, period_end, hs8, partner_code, regime_code, province_code, currency
        order by load_seq
    )
),

-- whichever comes first ends the fact: the key's next load, or its file's next version
-- (which holds the key again, and is then the key's next load, or withdraws it)
ended as (
    select
        k.* exclude (next_key_load_id, next_key_load_seq, next_key_loaded_at),
        case when v.next_version_load_seq < coalesce(k.next_key_load_seq, v.next_version_load_seq + 1)
             then v.next_version_loaded_at else k.next_key_loaded_at end as valid_to,
        case when v.next_version_load_seq < coalesce(k.next_key_load_seq, v.next_version_load_seq + 1)
             then v.next_version_load_id else k.next_key_load_id end as superseded_by_load_id
    from key_versions k
    left join next_versions v using (load_id)
)

select
    facts.* exclude (fact_key_hash),
    facts.loaded_at as valid_from,
    v.next_version_loaded_at as valid_to,
    v.next_version_load_id as superseded_by_load_id,
    v.next_version_load_id is null as is_current
from facts
anti join revised_keys using (fact_key_hash)
left join next_versions v using (load_id)

union all

select
    * exclude (valid_to, superseded_by_load_id),
    loaded_at as valid_from,
    valid_to,
    superseded_by_load_id,
    superseded_by_load_id is null as is_current
from ended
