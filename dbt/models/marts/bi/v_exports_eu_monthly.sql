{{ config(materialized='view') }}
-- The European Union (the 27 member states summed) per month and code, in tonnes: membership is
-- per ISO3 (dim_country), so Spain's Canary Islands, Ceuta and Melilla count as Spain.
select
    f.month,
    f.hs8,
    'EU' as partner_group,
    round(sum(f.quantity_kg) / 1000, 3) as quantity_t,
    sum(f.value_usd) as value_usd,
    count(distinct f.partner_iso3) as partners
from {{ ref('fct_exports_monthly') }} f
join {{ ref('dim_country') }} c using (partner_iso3)
where c.is_eu27
group by all
