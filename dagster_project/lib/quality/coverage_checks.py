"""The coverage checks: no month missing in a code's series, enough partners each month, every
landing file loaded. Users often load only the months they need: these warn, never block.
"""

from __future__ import annotations

from dagster_project.lib.quality.check_spec import FCT, RAW, WARN, E, QualityCheck

MIN_PARTNER_SHARE = 0.5  # a month with under half the code's usual number of partners warns

COVERAGE_CHECKS: tuple[QualityCheck, ...] = (
    QualityCheck(
        name="no_gap_months",
        asset=FCT,
        severity=WARN,
        description="No month missing inside a code's series (users often load only the months they need: this warns, never blocks).",
        population_sql="""
            with series as (
                select hs8, min(month) as first_month, max(month) as last_month, count(distinct month) as months_loaded
                from marts.fct_exports_monthly where {neighbourhood month} group by hs8
                having bool_or({months month})
            )
            select hs8, strftime(first_month, '%Y-%m') as first_month, strftime(last_month, '%Y-%m') as last_month,
                   datediff('month', first_month, last_month) + 1 - months_loaded as gap_months
            from series""",
        expectations=(E("ExpectColumnValuesToBeBetween", column="gap_months", min_value=0, max_value=0),),
        sample_sql="""
            with loaded as (select distinct hs8, month from marts.fct_exports_monthly where {neighbourhood month}),
            series as (select hs8, min(month) as a, max(month) as b from loaded group by hs8 having bool_or({months month}))
            select s.hs8, strftime(cast(m.range as date), '%Y-%m') as missing_month
            from series s, range(s.a, s.b + interval 1 month, interval 1 month) m
            where not exists (select 1 from loaded f where f.hs8 = s.hs8 and f.month = cast(m.range as date))
            order by 1, 2 limit 20""",
    ),
    QualityCheck(
        name="enough_partners_per_month",
        asset=FCT,
        severity=WARN,
        description=f"Each month of a code (with 4+ partners usually) has at least {MIN_PARTNER_SHARE:.0%} of its median number of partners.",
        population_sql=f"""
            with counts as (
                select hs8, month, count(distinct partner_code) as partners from marts.fct_exports_monthly
                where {{neighbourhood month}} group by all
            ),
            shares as (
                select hs8, month, partners, median(partners) over (partition by hs8) as usual_partners,
                       partners / median(partners) over (partition by hs8) as share_of_usual
                from counts
                qualify median(partners) over (partition by hs8) >= 4 and {{months month}}
            )
            -- a row per month: its codes' lowest share, how many codes are under the limit, the lowest code
            select strftime(month, '%Y-%m') as month, count(*) as codes,
                   count(*) filter (where share_of_usual < {MIN_PARTNER_SHARE}) as codes_off,
                   min(share_of_usual) as share_of_usual, arg_min(hs8, share_of_usual) as lowest_code,
                   arg_min(partners, share_of_usual) as its_partners, arg_min(usual_partners, share_of_usual) as its_usual_partners
            from shares group by month order by month""",
        expectations=(E("ExpectColumnValuesToBeBetween", column="share_of_usual", min_value=MIN_PARTNER_SHARE),),
    ),
    QualityCheck(
        name="all_landing_files_loaded",
        asset=RAW,
        severity=WARN,
        description="Every file in the landing directory was loaded (rejected files are listed in audit.rejected_files with their reasons).",
        # files still in the landing directory, with the content that was rejected (lib/serving/run_report.py: current_rejections)
        population_sql="select file_path, reason from _current_rejections order by file_path",
        expectations=(E("ExpectTableRowCountToEqual", value=0),),
    ),
)
