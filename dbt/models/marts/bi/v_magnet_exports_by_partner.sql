{{ config(materialized='view') }}
-- Rare-earth permanent magnets (85051110) by month and partner, in tonnes, with names:
-- the series behind the 2025 export-control headlines, ready for a BI chart. It reads the small
-- export_growth_rare_earths table, not the whole growth table.
select
    g.month,
    strftime(g.month, '%Y-%m') as month_label,
    g.partner_iso3,
    case when g.partner_iso3 = 'WLD' then 'World' else coalesce(p.partner_name_en, g.partner_iso3) end as partner_name_en,
    case when g.partner_iso3 = 'WLD' then '世界' else p.partner_name_zh end as partner_name_zh,
    round(g.quantity_kg / 1000, 3) as quantity_t,
    g.value_usd,
    round(g.unit_value_usd_per_kg, 2) as usd_per_kg,
    round(g.mom_pct, 1) as mom_pct,
    round(g.yoy_pct, 1) as yoy_pct,
    round(g.ytd_quantity_kg / 1000, 3) as ytd_quantity_t,
    round(g.ytd_yoy_pct, 1) as ytd_yoy_pct,
    round(g.share_of_world_pct, 2) as share_of_world_pct
from {{ ref('export_growth_rare_earths') }} g
left join (
    select partner_iso3, min(partner_name_en) as partner_name_en, min(partner_name_zh) as partner_name_zh
    from {{ ref('dim_partner') }} group by partner_iso3
) p using (partner_iso3)
where g.hs8 = '85051110'
