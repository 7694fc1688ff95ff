{#-
  Incremental builds: Dagster passes the months to rebuild as the var `months` (a list of
  'YYYY-MM-01' strings: the periods of loads not built yet) and, for the growth metrics, the
  var `growth_months` (those months plus the months whose MoM, YoY and YTD depend on them).
  Without the vars (or on a full refresh) every month is built.
-#}
{% macro month_list(var_name) -%}
    {%- set months = var(var_name, none) -%}
    {%- if months is none -%}{{ return(none) }}{%- endif -%}
    {%- if months is string -%}{%- set months = fromjson(months) -%}{%- endif -%}
    {%- for m in months -%}
        {%- if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-01', m | string) -%}
            {{ exceptions.raise_compiler_error("var " ~ var_name ~ ": '" ~ m ~ "' is not a month written YYYY-MM-01") }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(months) }}
{%- endmacro %}

{% macro in_months(column, var_name='months') -%}
    {%- set months = month_list(var_name) -%}
    {%- if months is none or not is_incremental() -%}
        true
    {%- elif months | length == 0 -%}
        false
    {%- else -%}
        {{ column }} in ({% for m in months %}date '{{ m }}'{% if not loop.last %}, {% endif %}{% endfor %})
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
