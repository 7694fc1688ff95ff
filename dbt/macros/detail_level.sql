{#- How detailed a fact's grain is: 0 = hs8 x partner, 1 = + regime, 2 = + province, 3 = both.
    When a key is loaded at several grains, the least detailed one is the total. -#}
{% macro detail_level() -%}
    (case when regime_code is not null then 1 else 0 end) + (case when province_code is not null then 2 else 0 end)
{%- endmacro %}
