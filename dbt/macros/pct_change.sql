{#- Percent change, NULL when the base is missing or zero (never +inf, never a fake 0). -#}
{% macro pct_change(current, base) -%}
    case when {{ base }} is null or {{ base }} = 0 or {{ current }} is null then null
         else round(100.0 * (cast({{ current }} as double) / cast({{ base }} as double) - 1), 6) end
{%- endmacro %}
