{{ config(materialized='view') }}
-- export_growth_monthly with commodity and partner names and tonnes, for any code.
select
    g.month,
    g.hs8,
    c.commodity_name_en,
    c.commodity_name_zh,
    c.family,
    g.partner_iso3,
    coalesce(p.country_name_en, g.partner_iso3) as partner_name_en,
    p.region,
    round(g.quantity_kg / 1000, 3) as quantity_t,
    g.value_usd,
    g.mom_pct,
    g.yoy_pct,
    round(g.ytd_quantity_kg / 1000, 3) as ytd_quantity_t,
    g.ytd_yoy_pct,
    g.unit_value_usd_per_kg,
    g.share_of_world_pct
from {{ ref('export_growth_monthly') }} g
left join {{ ref('dim_commodity') }} c using (hs8)
left join {{ ref('dim_country') }} p using (partner_iso3)
