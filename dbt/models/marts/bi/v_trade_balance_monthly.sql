{{ config(materialized='view') }}
-- China's trade balance per month x HS8 x GACC partner: exports minus imports, in kg and USD.
-- A side with no row for the key traded nothing that month (0), when that month is loaded for
-- the flow; otherwise the side is unknown and the balance NULL, not the other side's figure.
with exports as (
    select month, hs8, partner_code, partner_iso3, quantity_kg, value_usd from {{ ref('fct_exports_monthly') }}
),

imports as (
    select month, hs8, partner_code, partner_iso3, quantity_kg, value_usd from {{ ref('fct_imports_monthly') }}
),

export_months as (select distinct month from exports),
import_months as (select distinct month from imports),

paired as (
    select
        coalesce(e.month, i.month) as month,
        coalesce(e.hs8, i.hs8) as hs8,
        coalesce(e.partner_code, i.partner_code) as partner_code,
        coalesce(e.partner_iso3, i.partner_iso3) as partner_iso3,
        e.quantity_kg as export_kg, e.value_usd as export_usd,
        i.quantity_kg as import_kg, i.value_usd as import_usd
    from exports e
    full outer join imports i
        on e.month = i.month and e.hs8 = i.hs8 and e.partner_code = i.partner_code
),

flagged as (
    select paired.*, em.month is not null as exports_loaded, im.month is not null as imports_loaded
    from paired
    left join export_months em using (month)
    left join import_months im using (month)
)

select
    month,
    hs8,
    partner_code,
    partner_iso3,
    case when exports_loaded then coalesce(export_kg, 0) end as export_quantity_kg,
    case when imports_loaded then coalesce(import_kg, 0) end as import_quantity_kg,
    case when exports_loaded and imports_loaded then coalesce(export_kg, 0) - coalesce(import_kg, 0) end as balance_quantity_kg,
    case when exports_loaded then coalesce(export_usd, 0) end as export_value_usd,
    case when imports_loaded then coalesce(import_usd, 0) end as import_value_usd,
    case when exports_loaded and imports_loaded then coalesce(export_usd, 0) - coalesce(import_usd, 0) end as balance_value_usd
from flagged
