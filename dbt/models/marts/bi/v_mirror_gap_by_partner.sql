{{ config(materialized='view', tags=['mirror']) }}
-- The mirror gap per partner and month, with the partner's names (dim_country: one row per
-- ISO3), quantities in tonnes.
select
    m.month,
    strftime(m.month, '%Y-%m') as month_label,
    m.hs6,
    m.partner_iso3,
    c.country_name_en as partner_name_en,
    c.country_name_zh as partner_name_zh,
    coalesce(c.is_eu27, false) as is_eu27,
    round(m.china_reported_kg / 1000, 3) as china_reported_t,
    round(m.partner_reported_kg / 1000, 3) as partner_reported_t,
    round(m.partner_reported_kg_next_month / 1000, 3) as partner_reported_next_month_t,
    m.kg_gap_pct,
    cast(round(100 * (m.partner_reported_kg_next_month - m.china_reported_kg) / nullif(m.china_reported_kg, 0), 1) as decimal(10, 1)) as kg_gap_next_month_pct,
    m.china_reported_usd,
    m.partner_reported_usd,
    m.cif_fob_ratio
from {{ ref('mirror_trade_monthly') }} m
left join {{ ref('dim_country') }} c using (partner_iso3)
