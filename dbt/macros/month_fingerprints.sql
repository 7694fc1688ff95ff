{#-
  Row count and order-independent hash sum per month of a large mart, in
  audit.mart_month_fingerprints: the Parquet export compares them with what each year's file
  holds and rewrites only the years that changed, without hashing ten years of rows on every
  build (6 s of full scans at the national size). The sum is additive, so a year's fingerprint
  is the sum of its months', exactly what hashing the year's rows gives.

  An incremental build records the months it wrote (the post-hook). A build of every month
  (first build, full refresh) forgets the table's months (the pre-hook) and leaves them to the
  serving step, which hashes the months the record lacks before it publishes
  (dagster_project/lib/parquet_export.py, record_missing_month_fingerprints): hashing 50M rows
  in the dbt process, beside the models of the other thread, raised its peak memory by 0.2 GiB.
  Only dbt writes the marts: an UPDATE by hand is not seen here.
-#}
{#- The table is the warehouse's (dagster_project/lib/warehouse.py, RAW_DDL), created with the
    working copy every build writes. -#}
{% macro forget_month_fingerprints() -%}
    {%- if is_incremental() -%}
    select 1
    {%- else -%}
    delete from audit.mart_month_fingerprints where table_name = '{{ this.identifier }}'
    {%- endif -%}
{%- endmacro %}

{% macro record_month_fingerprints(var_name='months') -%}
    {%- set months = month_list(var_name) -%}
    {%- if months is none -%}
    -- every month was built: the serving step records them before publishing
    select 1
    {%- else -%}
    delete from audit.mart_month_fingerprints
    where table_name = '{{ this.identifier }}'
      and ({{ month_predicate('month', months) }} or month not in (select distinct month from {{ this }}));
    insert into audit.mart_month_fingerprints
    select '{{ this.identifier }}', month, count(*), sum(hash(t))
    from {{ this }} t
    where {{ month_predicate('month', months) }}
    group by month
    {%- endif -%}
{%- endmacro %}
