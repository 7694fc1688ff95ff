{#-
  Views in DuckDB keep the SQL they were created with. dbt writes references as
  "<catalog>"."<schema>"."<table>", and the catalog is the file's name as dbt opened it (the
  working copy). Leaving the catalog out keeps every view valid in the served file however a
  BI tool or notebook attaches it (ATTACH 'warehouse.duckdb' AS customs).
-#}
{% macro ref() %}
    {%- set relation = builtins.ref(*varargs, **kwargs) -%}
    {%- if relation is not none and relation.include is defined -%}
        {%- do return(relation.include(database=False)) -%}
    {%- endif -%}
    {%- do return(relation) -%}
{% endmacro %}

{% macro source() %}
    {%- set relation = builtins.source(*varargs, **kwargs) -%}
    {%- if relation is not none and relation.include is defined -%}
        {%- do return(relation.include(database=False)) -%}
    {%- endif -%}
    {%- do return(relation) -%}
{% endmacro %}
