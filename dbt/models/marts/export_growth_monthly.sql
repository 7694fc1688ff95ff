{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='month',
    on_schema_change='fail'
) }}
-- unique_key is one column, not a list: dbt-duckdb then deletes the months rebuilt with IN (a
-- semi-join) rather than DELETE ... USING, a join that pairs every old row of a month with every new one.
-- Export growth per month x HS8 x partner and the world (macros/trade_marts.sql).
{{ trade_growth_monthly('exports') }}
