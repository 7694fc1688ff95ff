{#- Use the folder's schema name as is (marts, staging...), not dbt's default <target>_<custom>:
    BI users and other tools query `marts.fct_exports_monthly` by that exact name. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
