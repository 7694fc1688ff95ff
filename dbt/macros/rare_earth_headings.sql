{#- The HS headings export_growth_rare_earths keeps: permanent magnets (8505), rare-earth
    metals (2805) and rare-earth compounds (2846). Every family in the commodity_families
    seed lies inside one of them (tests/assert_families_within_rare_earth_headings.sql); a
    family outside them needs its heading added here and a full refresh of the table. -#}
{% macro rare_earth_headings() -%}
    {{ return(['8505', '2805', '2846']) }}
{%- endmacro %}

{% macro in_rare_earth_headings(column) -%}
    ({% for h in rare_earth_headings() %}starts_with({{ column }}, '{{ h }}'){% if not loop.last %} or {% endif %}{% endfor %})
{%- endmacro %}
