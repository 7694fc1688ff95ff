{#- A join from `model`.`column_name` to `to`.`field` that can multiply rows: `to` has more than one
    row for a key `model` holds. Attach it to the join keys of marts and views (where the join is
    written), so a dimension at the wrong grain for a join fails the build, naming the keys.
    The repeated keys of the (small) dimension are found first; the model, which can be large,
    is then only filtered by them (usually none), never hashed whole. -#}
{% test joins_one_row(model, column_name, to, field) %}
with repeated_keys as (
    select {{ field }} as join_key, count(*) as rows_per_key
    from {{ to }}
    group by {{ field }}
    having count(*) > 1
)

select r.join_key, r.rows_per_key
from repeated_keys r
where r.join_key in (
    select {{ column_name }} from {{ model }}
    where {{ column_name }} in (select join_key from repeated_keys)
)
{% endtest %}
