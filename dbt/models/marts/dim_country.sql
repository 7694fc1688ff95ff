-- One row per ISO3, the grain of every table keyed by partner_iso3 (export_growth_monthly, the BI
-- views). dim_partner is per GACC code, and several codes share an ISO3 (Spain, Canary Islands,
-- Ceuta and Melilla are all ESP), so joining an ISO3-keyed table to dim_partner counts them twice.
with codes as (
    select * from {{ ref('dim_partner') }}
),

-- The code that names a country when GACC lists several under its ISO3; otherwise the lowest one.
main_code (partner_iso3, partner_code) as (
    values ('ESP', '312'), ('PYF', '623')
),

-- The 27 member states (since 2020-02-01); outermost regions (GLP, GUF, MTQ, MYT, REU) are
-- territories with their own ISO3 and are not counted, as Eurostat's EU27_2020 does not list them.
eu27 (partner_iso3) as (
    values ('AUT'), ('BEL'), ('BGR'), ('HRV'), ('CYP'), ('CZE'), ('DNK'), ('EST'), ('FIN'), ('FRA'),
           ('DEU'), ('GRC'), ('HUN'), ('IRL'), ('ITA'), ('LVA'), ('LTU'), ('LUX'), ('MLT'), ('NLD'),
           ('POL'), ('PRT'), ('ROU'), ('SVK'), ('SVN'), ('ESP'), ('SWE')
),

countries as (
    select
        c.partner_iso3,
        coalesce(max(c.partner_code) filter (where c.partner_code = m.partner_code), min(c.partner_code)) as named_by,
        string_agg(c.partner_code, ',' order by c.partner_code) as gacc_partner_codes,
        count(*) as gacc_partner_count
    from codes c
    left join main_code m using (partner_iso3)
    group by c.partner_iso3
)

select
    cast(k.partner_iso3 as varchar) as partner_iso3,
    cast(case when k.partner_iso3 = 'BES' then 'Bonaire, Sint Eustatius and Saba' else n.partner_name_en end as varchar)
        as country_name_en,
    cast(case when k.partner_iso3 = 'BES' then '荷兰加勒比区' else n.partner_name_zh end as varchar) as country_name_zh,
    cast(n.region as varchar) as region,
    cast(k.partner_iso3 in (select partner_iso3 from eu27) as boolean) as is_eu27,
    cast(k.gacc_partner_codes as varchar) as gacc_partner_codes,
    cast(k.gacc_partner_count as integer) as gacc_partner_count
from countries k
join codes n on n.partner_code = k.named_by

union all

-- the world, as the growth tables write it (partner_iso3 = 'WLD'): an inner join keeps world rows
select 'WLD', 'World', '世界', 'World', false, cast(null as varchar), 0
