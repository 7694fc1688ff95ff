select
    cast(partner_code as varchar) as partner_code,
    cast(partner_iso3 as varchar) as partner_iso3,
    cast(partner_name_en as varchar) as partner_name_en,
    cast(partner_name_zh as varchar) as partner_name_zh,
    cast(region as varchar) as region,
    cast(is_eu as boolean) as is_eu,
    cast(case when is_eu then 'EU' end as varchar) as partner_group
from {{ ref('gacc_partners') }}
