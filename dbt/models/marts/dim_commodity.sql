-- HS8 codes with their hierarchy, declared unit and commodity family (longest prefix wins).
with commodities as (
    select * from {{ ref('gacc_commodities') }}
),

families as (
    select * from {{ ref('commodity_families') }}
),

units as (
    select * from {{ ref('gacc_units') }}
),

family_match as (
    select
        c.hs8,
        f.family,
        f.family_label,
        f.usd_per_kg_min,
        f.usd_per_kg_max
    from commodities c
    join families f on starts_with(c.hs8, f.hs_prefix)
    qualify row_number() over (partition by c.hs8 order by length(f.hs_prefix) desc) = 1
)

select
    cast(c.hs8 as varchar) as hs8,
    cast(left(c.hs8, 6) as varchar) as hs6,
    cast(left(c.hs8, 4) as varchar) as hs4,
    cast(left(c.hs8, 2) as varchar) as hs2,
    cast(c.name_en as varchar) as commodity_name_en,
    cast(c.name_zh as varchar) as commodity_name_zh,
    cast(c.unit1_code as varchar) as declared_unit_code,
    cast(u.unit_name_en as varchar) as declared_unit_en,
    cast(u.unit_name_zh as varchar) as declared_unit_zh,
    cast(c.unit1_code = '{{ var("kg_unit_code") }}' as boolean) as is_kg,
    cast(coalesce(fm.family, 'other') as varchar) as family,
    cast(coalesce(fm.family_label, 'Other') as varchar) as family_label,
    cast(fm.usd_per_kg_min as double) as usd_per_kg_min,
    cast(fm.usd_per_kg_max as double) as usd_per_kg_max
from commodities c
left join units u on u.unit_code = c.unit1_code
left join family_match fm on fm.hs8 = c.hs8
