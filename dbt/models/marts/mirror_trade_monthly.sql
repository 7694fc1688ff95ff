{{ config(tags=['mirror']) }}
-- Mirror statistics: what China reports exporting beside what the partner reports importing from
-- China, per month x HS6 x partner, for the pairs int_mirror_comparisons could compare.
with compared as (
    select * from {{ ref('int_mirror_comparisons') }} where is_compared
),

partner as (
    select * from {{ ref('stg_comtrade__partner_imports') }}
)

select
    c.month,
    c.hs6,
    c.partner_iso3,
    cast(c.china_reported_kg as decimal(38, 3)) as china_reported_kg,
    cast(c.china_reported_usd as decimal(38, 2)) as china_reported_usd,
    cast(c.partner_reported_kg as decimal(38, 3)) as partner_reported_kg,
    cast(c.partner_reported_usd as decimal(38, 2)) as partner_reported_usd,
    cast(round(100 * (c.partner_reported_kg - c.china_reported_kg) / nullif(c.china_reported_kg, 0), 1) as decimal(10, 1)) as kg_gap_pct,
    cast(round(c.partner_reported_usd / nullif(c.china_reported_usd, 0), 3) as decimal(10, 3)) as cif_fob_ratio,
    cast(n.partner_reported_kg as decimal(38, 3)) as partner_reported_kg_next_month,
    cast(n.partner_reported_usd as decimal(38, 2)) as partner_reported_usd_next_month,
    cast(c.china_hs8_codes as varchar) as china_hs8_codes,
    cast(c.china_load_ids as varchar) as china_load_ids,
    cast(c.partner_load_id as varchar) as partner_load_id,
    cast(c.partner_source_file as varchar) as partner_source_file,
    cast(c.partner_file_sha256 as varchar) as partner_file_sha256,
    cast(c.partner_row_number as bigint) as partner_row_number
from compared c
left join partner n
    on n.partner_iso3 = c.partner_iso3 and n.hs6 = c.hs6 and n.month = c.month + interval 1 month
