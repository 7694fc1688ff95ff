-- A calendar of months wide enough for every loaded period, flagging the months loaded.
with loaded as (
    select flow, month from {{ ref('int_trade_monthly') }} group by all
),

bounds as (
    select
        least(date '2015-01-01', coalesce(min(month), date '2015-01-01')) as first_month,
        greatest(date '2030-12-01', coalesce(max(month), date '2030-12-01')) as last_month
    from loaded
),

spine as (
    select cast(range as date) as month
    from bounds, range(bounds.first_month, bounds.last_month + interval 1 month, interval 1 month)
)

select
    spine.month,
    cast(year(spine.month) as integer) as year,
    cast(month(spine.month) as integer) as month_of_year,
    cast(quarter(spine.month) as integer) as quarter,
    cast(strftime(spine.month, '%Y-%m') as varchar) as month_label,
    cast(exists (select 1 from loaded where loaded.month = spine.month and loaded.flow = 'exports') as boolean) as has_exports,
    cast(exists (select 1 from loaded where loaded.month = spine.month and loaded.flow = 'imports') as boolean) as has_imports
from spine
order by spine.month
