-- Every commodity family lies inside a heading export_growth_rare_earths keeps: a family added
-- to the seed outside them would be missing from the table (and from the charts and headline).
-- Fix: add its heading to macros/rare_earth_headings.sql and full-refresh the table.
select hs_prefix, family
from {{ ref('commodity_families') }}
where not {{ in_rare_earth_headings('hs_prefix') }}
