{#- A raw row's quantity in its commodity's declared unit (quantity * unit_factor), as DECIMAL(38, 4).
    Same value as cast(quantity * unit_factor as decimal(38, 4)); rows with factor 1 skip the
    128-bit product and rescaling, which dominated every scan of staging. -#}
{% macro declared_quantity(relation) -%}
case when {{ relation }}.unit_factor = 1 then {{ relation }}.quantity
     else cast({{ relation }}.quantity * {{ relation }}.unit_factor as decimal(38, 4)) end
{%- endmacro %}
