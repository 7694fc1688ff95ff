{{ config(materialized='view') }}
-- The European Union (EU-27 partners summed) per month and code, in tonnes.
select
    f.month,
    f.hs8,
    'EU' as partner_group,
    round(sum(f.quantity_kg) / 1000, 3) as quantity_t,
    sum(f.value_usd) as value_usd,
    count(distinct f.partner_code) as partners
from {{ ref('fct_exports_monthly') }} f
join {{ ref('dim_partner') }} p using (partner_code)
where p.is_eu
group by all
