{% test matches_pattern(model, column_name, pattern) %}
select * from {{ model }}
where {{ column_name }} is not null and not regexp_full_match({{ column_name }}, '{{ pattern }}')
{% endtest %}
