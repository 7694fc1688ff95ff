{% test first_of_month(model, column_name) %}
select * from {{ model }} where {{ column_name }} <> date_trunc('month', {{ column_name }})
{% endtest %}
