"""The mirror checks: each partner's figures against its own history (warns), and no China figure
matched to two partner figures (blocks).

The mirror table is small (months x partners x HS6 codes that partners report): the checks read
all of it, whichever months a build rebuilt.
"""

from __future__ import annotations

from dagster_project.lib.quality.check_spec import ERROR, WARN, E, QualityCheck

MIRROR = "marts/mirror_trade_monthly"

# A month is far outside a partner's history when it is both more than ROBUST_Z robust standard
# deviations (1.4826 x the median absolute deviation) from the partner's median for the code and
# further than an absolute margin from it:
# - the robust z ignores the few months that are themselves off (a mean and standard deviation
#   would be dragged by them); 5 flags about 1 month in a million of a normal series, so what it
#   flags is a change of regime, not noise;
# - the margins keep a steady partner (CIF/FOB 1.06 +- 0.01 every month) from warning over a
#   move that is ordinary in mirror data: freight and insurance are 3-10% of FOB value and the
#   month a shipment is counted in shifts value between months, so +-0.25 on the ratio; a month's
#   kg gap moves by tens of points with goods at sea at the turn of a month, so +-50 points;
# - a partner-code series needs MIN_HISTORY months before it is judged at all.
ROBUST_Z = 5
RATIO_MARGIN = 0.25
GAP_MARGIN_POINTS = 50
MIN_HISTORY = 12

MIRROR_CHECKS: tuple[QualityCheck, ...] = (
    QualityCheck(
        name="mirror_within_partner_history",
        asset=MIRROR,
        severity=WARN,
        description=(
            f"Each partner's CIF/FOB ratio and kg gap stay within its own history for the code: a month is flagged "
            f"when it is more than {ROBUST_Z} robust standard deviations (1.4826 x median absolute deviation) from the "
            f"partner's median AND further than {RATIO_MARGIN} (ratio) or {GAP_MARGIN_POINTS} points (kg gap) from it, "
            f"with {MIN_HISTORY}+ months of history. Freight and insurance are 3-10% of FOB and shipments straddle "
            "months, so smaller moves are ordinary; a flagged month is a change of regime worth reading "
            "(export controls, re-routing, a unit or code change): docs/quality_checks.md."
        ),
        population_sql=f"""
            with history as (
                select partner_iso3, hs6, month, kg_gap_pct, cif_fob_ratio,
                       median(cif_fob_ratio) over w as ratio_median,
                       1.4826 * mad(cif_fob_ratio) over w as ratio_sigma,
                       median(kg_gap_pct) over w as gap_median,
                       1.4826 * mad(kg_gap_pct) over w as gap_sigma,
                       count(*) over w as months
                from marts.mirror_trade_monthly
                window w as (partition by partner_iso3, hs6)
            )
            select partner_iso3, hs6, strftime(month, '%Y-%m') as month,
                   cif_fob_ratio, round(ratio_median, 3) as ratio_median,
                   kg_gap_pct, round(gap_median, 1) as gap_median, months
            from history
            where months >= {MIN_HISTORY} and (
                (abs(cif_fob_ratio - ratio_median) > greatest({ROBUST_Z} * ratio_sigma, {RATIO_MARGIN}))
                or (abs(kg_gap_pct - gap_median) > greatest({ROBUST_Z} * gap_sigma, {GAP_MARGIN_POINTS})))
            order by partner_iso3, hs6, month""",
        expectations=(E("ExpectTableRowCountToEqual", value=0),),
    ),
    QualityCheck(
        name="mirror_no_double_count",
        asset=MIRROR,
        severity=ERROR,
        description=(
            "Each China figure (month x HS6 x partner) is matched to one partner figure: two (two reporter codes "
            "with one ISO3, or two files that do not revise each other) would double the partner's side."
        ),
        population_sql="""
            select strftime(month, '%Y-%m') as month, hs6, partner_iso3, count(*) as partner_figures,
                   string_agg(partner_source_file || ' row ' || partner_row_number, '; ') as partner_rows
            from marts.mirror_trade_monthly
            group by month, hs6, partner_iso3
            having count(*) > 1
            order by 1, 2, 3""",
        expectations=(E("ExpectTableRowCountToEqual", value=0),),
    ),
)
