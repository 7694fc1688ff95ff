{{ config(materialized='view') }}
-- The latest release of every fact key.
select * exclude (valid_to, superseded_by_load_id, is_current)
from {{ ref('int_customs_facts_history') }}
where is_current
