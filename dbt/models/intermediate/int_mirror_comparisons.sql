{{ config(tags=['mirror']) }}
-- China's side rolled up from HS8 to HS6 (the level Comtrade shares with every reporter), beside
-- what the partner reports, for every month a partner reports: each pair is compared, or left
-- out with the reason. China's partner months without a Comtrade file for that partner are not
-- listed (that partner does not report, or its files are not loaded).
with china as (
    select
        month,
        left(hs8, 6) as hs6,
        partner_iso3,
        sum(quantity_kg) as china_reported_kg,
        sum(value_usd) as china_reported_usd,
        count(*) filter (where quantity_kg is null) as china_codes_not_in_kg,
        string_agg(distinct hs8, ',' order by hs8) as china_hs8_codes,
        string_agg(distinct load_id, ',' order by load_id) as china_load_ids
    from {{ ref('fct_exports_monthly') }}
    where partner_iso3 in (select distinct partner_iso3 from {{ ref('stg_comtrade__partner_imports') }})
    group by all
),

partner_months as (
    select distinct partner_iso3, month from {{ ref('stg_comtrade__partner_imports') }}
),

partner as (
    select * from {{ ref('stg_comtrade__partner_imports') }}
),

paired as (
    select
        coalesce(c.month, p.month) as month,
        coalesce(c.hs6, p.hs6) as hs6,
        coalesce(c.partner_iso3, p.partner_iso3) as partner_iso3,
        c.china_reported_kg,
        c.china_reported_usd,
        c.china_codes_not_in_kg,
        c.china_hs8_codes,
        c.china_load_ids,
        p.partner_reported_kg,
        p.partner_reported_usd,
        p.qty_unit_code as partner_qty_unit_code,
        p.qty_unit_abbr as partner_qty_unit_abbr,
        p.reporter_code as partner_reporter_code,
        p.load_id as partner_load_id,
        p.source_file as partner_source_file,
        p.file_sha256 as partner_file_sha256,
        p.row_number as partner_row_number
    from china c
    -- only the months the partner reports: before and after its files, China's figures have no mirror
    semi join partner_months m on m.partner_iso3 = c.partner_iso3 and m.month = c.month
    full join partner p on p.month = c.month and p.hs6 = c.hs6 and p.partner_iso3 = c.partner_iso3
)

select
    *,
    case
        when partner_load_id is null then 'no partner figure for this HS6, partner and month'
        when china_reported_kg is null and china_reported_usd is null then 'no China figure for this HS6, partner and month'
        when partner_qty_unit_code <> 8 then 'partner quantity not in kg (qtyUnitCode ' || partner_qty_unit_code || ', ' || coalesce(partner_qty_unit_abbr, '?') || ')'
        when china_codes_not_in_kg > 0 then 'China quantity not in kg for ' || china_codes_not_in_kg || ' HS8 code(s)'
    end as excluded_reason,
    excluded_reason is null as is_compared
from paired
