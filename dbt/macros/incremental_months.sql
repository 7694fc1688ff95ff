{#-
  Incremental builds: the months to rebuild are the dbt vars `first_month` and `last_month`
  ('YYYY-MM-01', both included), which Dagster passes from the run's customs_month partition
  range (dagster_project/defs/transform/dbt_assets.py), as Dagster's dbt examples pass a
  partition's time window. By hand:
      dbt build --vars '{"first_month": "2025-06-01", "last_month": "2025-06-01"}'
  Without them (or on a full refresh) every month is built and tested.

  The growth metrics of a month depend on the month before, the same month a year earlier and
  the year so far, so a change to first..last changes them through December of the year after
  last_month: that is the `growth_months` range.
-#}
{% macro month_range(range_name='months') -%}
    {%- set first = var('first_month', none) -%}
    {%- set last = var('last_month', none) -%}
    {%- if first is none or last is none -%}{{ return(none) }}{%- endif -%}
    {%- for m in [first, last] -%}
        {%- if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-01', m | string) -%}
            {{ exceptions.raise_compiler_error("vars first_month/last_month: '" ~ m ~ "' is not a month written YYYY-MM-01") }}
        {%- endif -%}
    {%- endfor -%}
    {%- if first > last -%}
        {{ exceptions.raise_compiler_error("var first_month " ~ first ~ " is after last_month " ~ last) }}
    {%- endif -%}
    {%- if range_name == 'growth_months' -%}
        {%- set last = ((last[:4] | int) + 1) ~ '-12-01' -%}
    {%- elif range_name != 'months' -%}
        {{ exceptions.raise_compiler_error("month_range: unknown range " ~ range_name ~ " (months or growth_months)") }}
    {%- endif -%}
    {{ return([first | string, last | string]) }}
{%- endmacro %}

{#- `column` within the range (months or growth_months); true when no range is given. -#}
{% macro month_predicate(column, range_name='months') -%}
    {%- set bounds = month_range(range_name) -%}
    {%- if bounds is none -%}
        true
    {%- else -%}
        {{ column }} between date '{{ bounds[0] }}' and date '{{ bounds[1] }}'
    {%- endif -%}
{%- endmacro %}

{#- The rows an incremental model rebuilds; every row when it is built whole. -#}
{% macro in_months(column, range_name='months') -%}
    {%- if not is_incremental() -%}
        true
    {%- else -%}
        {{ month_predicate(column, range_name) }}
    {%- endif -%}
{%- endmacro %}

{#- The earliest month a growth rebuild reads: January of the year before first_month (YTD YoY). -#}
{% macro growth_source_filter(column) -%}
    {%- set bounds = month_range('months') -%}
    {%- if bounds is none or not is_incremental() -%}
        true
    {%- else -%}
        {{ column }} >= date_trunc('year', date '{{ bounds[0] }}' - interval 12 month)
    {%- endif -%}
{%- endmacro %}
