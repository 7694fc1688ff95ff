{#-
  Row count and order-independent hash sum per month of a large mart, in
  audit.mart_month_fingerprints: the Parquet export compares them with what each year's file
  holds and rewrites only the years that changed, without hashing ten years of rows on every
  build (6 s of full scans at the national size). The sum is additive, so a year's fingerprint
  is the sum of its months', exactly what hashing the year's rows gives.

  The pre-hook forgets a table's months when the model is about to be rebuilt whole (first
  build, full refresh); the post-hook then hashes the months this build wrote (the `months`
  list, or every month) and any month the table has but the list lacks, and forgets months
  the table no longer has. Only dbt writes the marts: an UPDATE by hand is not seen here.
-#}
{% macro month_fingerprints_ddl() -%}
    create schema if not exists audit;
    create table if not exists audit.mart_month_fingerprints (
        table_name varchar not null,
        month date not null,
        row_count bigint not null,
        row_hash_sum hugeint not null
    )
{%- endmacro %}

{% macro forget_month_fingerprints() -%}
    {{ month_fingerprints_ddl() }};
    {%- if not is_incremental() %}
    delete from audit.mart_month_fingerprints where table_name = '{{ this.identifier }}'
    {%- endif %}
{%- endmacro %}

{% macro record_month_fingerprints(var_name='months') -%}
    {%- set name = this.identifier -%}
    {%- set months = month_list(var_name) -%}
    {%- if months is not none and execute -%}
        {#- the months the table has and the record lacks (first build, full refresh) are hashed too;
            asking first keeps the hashing to a list of months, a filter DuckDB applies in the scan
            (an OR with the subquery instead read every column of every row: 2.7 s at 51M rows) -#}
        {%- set missing = run_query(
            "select distinct strftime(month, '%Y-%m-%d') from " ~ this
            ~ " where month not in (select month from audit.mart_month_fingerprints where table_name = '" ~ name ~ "')"
        ).columns[0].values() | list -%}
        {%- set months = (months + missing) | unique | list -%}
    {%- endif -%}
    delete from audit.mart_month_fingerprints
    where table_name = '{{ name }}'
      and ({{ month_predicate('month', months) }} or month not in (select distinct month from {{ this }}));
    insert into audit.mart_month_fingerprints
    select '{{ name }}', month, count(*), sum(hash(t))
    from {{ this }} t
    where {{ month_predicate('month', months) }}
    group by month
{%- endmacro %}
