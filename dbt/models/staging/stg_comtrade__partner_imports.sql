-- What each partner reports importing from China, per month and HS6: the current figures only.
-- A file's latest version replaces its earlier ones whole (rows it no longer holds go too), and
-- where two files hold the same reporter, month and code, the later load revises the earlier.
with current_loads as (
    select load_id, load_seq
    from {{ source('raw', 'comtrade_loads') }}
    qualify row_number() over (partition by file_path order by load_seq desc) = 1
)

select
    r.month,
    r.hs6,
    r.reporter_iso3 as partner_iso3,
    r.reporter_code,
    r.reporter_name,
    r.qty_unit_code,
    coalesce(r.qty_unit_abbr, case r.qty_unit_code when 8 then 'kg' when 5 then 'u' when -1 then 'N/A' end) as qty_unit_abbr,
    r.qty_unit_code = 8 as quantity_in_kg,
    case when r.qty_unit_code = 8 then cast(r.qty as decimal(38, 3)) end as partner_reported_kg,
    cast(r.net_weight_kg as decimal(38, 3)) as net_weight_kg,
    cast(r.cif_value_usd as decimal(38, 2)) as cif_value_usd,
    cast(r.fob_value_usd as decimal(38, 2)) as fob_value_usd,
    cast(r.primary_value_usd as decimal(38, 2)) as primary_value_usd,
    cast(coalesce(r.cif_value_usd, r.primary_value_usd) as decimal(38, 2)) as partner_reported_usd,
    r.load_id,
    l.load_seq,
    r.source_file,
    r.file_sha256,
    r.row_number
from {{ source('raw', 'comtrade_rows') }} r
join current_loads l using (load_id)
qualify row_number() over (partition by r.reporter_code, r.month, r.hs6 order by l.load_seq desc) = 1
