{#- Our own version of dbt_utils.unique_combination_of_columns (dbt packages cannot be installed here).

    Grouping ~50M rows by their columns (varchar keys) ran out of memory at the profile's 1 GB
    with two tests at a time (stg_gacc__customs_rows on load_id, row_number). A count per hash
    of the combination first (one 8-byte column, light to group) keeps the rows of the hashes
    seen more than once, almost always none; the check itself then groups only those by the
    columns, so a hash collision costs time, never a false failure. Same failing rows as before. -#}
{% test unique_combination(model, combination_of_columns) %}
{%- set columns = combination_of_columns | join(', ') -%}
with repeated_hashes as (
    select hash({{ columns }}) as combination_hash
    from {{ model }}
    group by all
    having count(*) > 1
)

select {{ columns }}, count(*) as n
from {{ model }}
where hash({{ columns }}) in (select combination_hash from repeated_hashes)
group by {{ columns }}
having count(*) > 1
{% endtest %}
