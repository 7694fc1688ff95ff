{#-
  Data tests of an incremental build test the months it rebuilt, not all of history.

  dbt_project.yml gives every data test `where: "__rebuilt_months__"`. The models rebuilt
  month by month say which column holds the month and which month list applies, in their
  config: `meta: {rebuilt_months: {column: month, var: months}}` (range `growth_months` for
  the growth metrics; macros/incremental_months.sql). When dbt executes a test, the placeholder becomes `<column> in (<months>)`
  for those models during an incremental build, and `true` otherwise: a full build, a full
  refresh, a dbt run by hand without months, and every model that is rebuilt whole (dims,
  cumulative tables, seeds) test everything. Every scoped test is row-wise or groups by a key
  that holds the month (or, for (load_id, row_number), a raw row, which has one month), so
  the rebuilt months pass exactly when the whole table would.
-#}
{% macro rebuilt_months_predicate() -%}
    {%- if not execute -%}{{ return('true') }}{%- endif -%}
    {%- set attached = model.get('attached_node') if model is mapping else none -%}
    {%- set node = graph.nodes.get(attached) if attached else none -%}
    {%- set spec = node.get('config', {}).get('meta', {}).get('rebuilt_months') if node else none -%}
    {%- if not spec -%}{{ return('true') }}{%- endif -%}
    {{ return(month_predicate(adapter.quote(spec['column']), spec.get('var', 'months')) | trim) }}
{%- endmacro %}

{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where and '__rebuilt_months__' in where -%}
        {%- set where = where | replace('__rebuilt_months__', rebuilt_months_predicate()) -%}
    {%- endif -%}
    {%- if where and (where | trim | lower) != 'true' -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- endif -%}
    {%- do return(relation) -%}
{%- endmacro %}
