{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='month',
    on_schema_change='fail'
) }}
-- export_growth_monthly's rows for the magnet and rare-earth headings (macros/rare_earth_headings.sql):
-- the few thousand rows a chart, the headline or a BI dashboard of 85051110 reads. The growth
-- table holds every code (51M rows at the national size) with no order by code, so a query for
-- one code reads all of it (1.6 s on a cold 10-year file, and more with every year); an
-- incremental build adds only the months it rebuilt, whose rows it reads without touching history.
select *
from {{ ref('export_growth_monthly') }}
where {{ in_rare_earth_headings('hs8') }}
    and {{ in_months('month', 'growth_months') }}
