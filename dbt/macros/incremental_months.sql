{#-
  Incremental builds: the months to rebuild (a list of 'YYYY-MM-01' strings: the periods of
  loads not built yet) and, for the growth metrics, the months whose MoM, YoY and YTD depend
  on them. Dagster passes them in the environment variables CUSTOMS_DBT_MONTHS and
  CUSTOMS_DBT_GROWTH_MONTHS (JSON lists), read only when dbt executes: they are not part of
  what dbt parses, so a new set of months keeps dbt's partial parsing (a change of --vars
  would make dbt re-parse the whole project on every build). The vars `months` and
  `growth_months` (dbt build --vars '{"months": [...]}') still work by hand and win over the
  environment. Without either (or on a full refresh) every month is built and tested.
-#}
{% macro month_list(var_name) -%}
    {%- set months = var(var_name, none) -%}
    {%- if months is none and execute -%}
        {%- set env_name = 'CUSTOMS_DBT_' ~ (var_name | upper) -%}
        {%- set from_env = env_var(env_name, '') -%}
        {%- if from_env | trim -%}
            {%- set months = fromjson(from_env) -%}
            {%- if months is none or months is string or months is mapping -%}
                {{ exceptions.raise_compiler_error("environment variable " ~ env_name ~ " must be a JSON list of months, got: " ~ from_env) }}
            {%- endif -%}
        {%- endif -%}
    {%- endif -%}
    {%- if months is none -%}{{ return(none) }}{%- endif -%}
    {%- if months is string -%}{%- set months = fromjson(months) -%}{%- endif -%}
    {%- for m in months -%}
        {%- if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-01', m | string) -%}
            {{ exceptions.raise_compiler_error("var " ~ var_name ~ ": '" ~ m ~ "' is not a month written YYYY-MM-01") }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(months) }}
{%- endmacro %}

{#- `column in (the months)`: true when every month is built, false for an empty list. -#}
{% macro month_predicate(column, months) -%}
    {%- if months is none -%}
        true
    {%- elif months | length == 0 -%}
        false
    {%- else -%}
        {{ column }} in ({% for m in months %}date '{{ m }}'{% if not loop.last %}, {% endif %}{% endfor %})
    {%- endif -%}
{%- endmacro %}

{% macro in_months(column, var_name='months') -%}
    {%- set months = month_list(var_name) -%}
    {%- if not is_incremental() -%}
        true
    {%- else -%}
        {{ month_predicate(column, months) }}
    {%- endif -%}
{%- endmacro %}

{#- The earliest month a growth rebuild needs: January of the year before its first target month (YTD YoY). -#}
{% macro growth_source_filter(column) -%}
    {%- set months = month_list('growth_months') -%}
    {%- if months is none or not is_incremental() -%}
        true
    {%- elif months | length == 0 -%}
        false
    {%- else -%}
        {{ column }} >= date_trunc('year', date '{{ months | min }}' - interval 12 month)
    {%- endif -%}
{%- endmacro %}
