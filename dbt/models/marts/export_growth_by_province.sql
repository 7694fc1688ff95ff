{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='month',
    on_schema_change='fail'
) }}
-- unique_key is one column, not a list: dbt-duckdb then deletes the months rebuilt with IN (a
-- semi-join) rather than DELETE ... USING, a join that pairs every old row of a month with every new one.
-- Exports by registration place (province) per month x HS8 (macros/breakdown_growth.sql).
{{ breakdown_growth('exports', 'province') }}
