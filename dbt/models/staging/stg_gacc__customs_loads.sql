select * from {{ source('raw', 'customs_loads') }}
