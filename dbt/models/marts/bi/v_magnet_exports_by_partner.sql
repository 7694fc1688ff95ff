{{ config(materialized='view') }}
-- Rare-earth permanent magnets (85051110) by month and partner, in tonnes, with names:
-- the series behind the 2025 export-control headlines, ready for a BI chart. It reads the small
-- export_growth_rare_earths table, not the whole growth table.
select
    g.month,
    strftime(g.month, '%Y-%m') as month_label,
    g.partner_iso3,
    coalesce(p.country_name_en, g.partner_iso3) as partner_name_en,
    p.country_name_zh as partner_name_zh,
    round(g.quantity_kg / 1000, 3) as quantity_t,
    g.value_usd,
    round(g.unit_value_usd_per_kg, 2) as usd_per_kg,
    round(g.mom_pct, 1) as mom_pct,
    round(g.yoy_pct, 1) as yoy_pct,
    round(g.ytd_quantity_kg / 1000, 3) as ytd_quantity_t,
    round(g.ytd_yoy_pct, 1) as ytd_yoy_pct,
    round(g.share_of_world_pct, 2) as share_of_world_pct,
    case when q.source is not null then 'published' else 'synthetic' end as provenance,
    q.source as provenance_source
from {{ ref('export_growth_rare_earths') }} g
left join {{ ref('dim_country') }} p using (partner_iso3)
-- A figure is published when a GACC release quoted it (published_figures, evidence 'quoted'):
-- the same month, partner (WLD = the world) and code, within 0.05 t (releases round to 0.1 t).
-- Derived and synthetic months, and every sample month no release covers, are 'synthetic'.
left join (
    select
        cast(strptime(period_start, '%Y-%m') as date) as month,
        partner as partner_iso3,
        quantity_t,
        string_agg(source, ' | ' order by source) as source
    from {{ ref('published_figures') }}
    where evidence = 'quoted' and flow = 'exports' and reporter = 'CHN' and hs_scope = '85051110'
      and period_start = period_end and quantity_t is not null
    group by all
) q on q.month = g.month and q.partner_iso3 = g.partner_iso3 and abs(q.quantity_t - g.quantity_kg / 1000) <= 0.05
where g.hs8 = '85051110'
