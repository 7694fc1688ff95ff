#!/usr/bin/env python3
"""Synthetic national-size GACC export extracts, in the platform's download format.

Each file looks like a download from the GACC statistics platform (see
data/generate_sample.py for the format): GB18030, every field quoted (header included),
every line ending with a trailing comma, CRLF line endings, thousands separators in the
numbers, codes as text with leading zeros, at most 10,000 data rows per file (the
platform's cap), the 数据年月 column holding YYYYMM, and the header language alternating
file by file: Chinese headers, or English headers in another column order with the
"Supplimentary"/"Supplementary" spellings alternating.

What the rows are (all synthetic, not statistics):
  * commodity codes: every HS8 code of dbt/seeds/gacc_commodities.csv (~8,957), or a
    deterministic subset of them at smaller scales (85051110 always included);
  * partners: dbt/seeds/gacc_partners.csv, in a sparse mix: each code trades with its own
    set of 1..~150 partners drawn (weighted, Zipf-like, big economies first) without
    replacement; its three main partners appear every month, the others in ~85% of
    months, so a code-month has ~47 partner rows on average (~50M rows for 10 years of
    all codes);
  * quantities in each code's declared first unit (unit1 of gacc_commodities: kg for
    most codes, 个/台/辆... "Number of item", 米 "Metre", 克 "Gram" ...), written with the
    unit's Chinese or English name as the platform does; a second quantity where the
    code has a second unit;
  * US-dollar values: quantity x a per-code unit value (inside the commodity-family band
    of dbt/seeds/commodity_families.csv where the code has one), +-1.5% row noise and no
    row under 200 USD, so the project's quality gate sees plausible unit values and its
    unit-value checks pass on this clean synthetic data.

Deterministic: every number is a function of (seed, code, partner, month) through
DuckDB's hash(); the same arguments give byte-identical files, and a month's files do
not depend on which other months are generated (2 years of history are the last 2 years
of the 10-year set). File modification times are fixed too (they order the project's loads).

Fast: DuckDB builds every line (string formatting, thousands separators, quoting) and
joins each file's lines with string_agg; Python only encodes each file's text to
GB18030 and writes it (no Python loop over rows).

Usage:
    .venv/bin/python bench/generate.py OUT_LANDING_DIR --codes 500 --first 2014-01 --last 2023-12
    .venv/bin/python bench/generate.py OUT_LANDING_DIR --codes all --years 10
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the project's month arithmetic
    sys.path.insert(0, str(ROOT))
from dagster_project.lib.months import add_months, months_between  # noqa: E402

SEEDS = ROOT / "dbt" / "seeds"
SEED = 20250601
ROWS_PER_FILE = 10_000
# The last month of every bench history: 2014-01..2023-12 is "10 years", and 2024-01 is the
# "new month" added on top. Before 2024, no figure of reference.published_figures is held,
# so the published-figures check has nothing to compare synthetic magnets against.
LAST_HISTORY_MONTH = dt.date(2023, 12, 1)
NEW_MONTH = add_months(LAST_HISTORY_MONTH, 1)
# Big partners first (USA, Hong Kong, Japan, Korea, Viet Nam, India, Germany ...), the rest
# in a seeded order; weight of rank r = 1 / (r + 3) ** 1.1.
BIG_PARTNERS = ["502", "110", "116", "133", "141", "111", "304", "309", "303", "344", "122", "136", "112",
                "129", "132", "601", "501", "429", "410", "305", "307", "143", "138", "131", "137"]
ALWAYS = 3  # a code's three main partners appear every month ...
PRESENCE = 0.85  # ... the others in this share of months
MAX_PARTNERS = 150
# Row unit values within +-UV_NOISE of the code's, and no row worth under MIN_USD (so rounding
# to whole dollars moves a unit value by 0.25% at most): the quality gate's robust-outlier
# check (3 MADs, MAD floored at 1% of the median) then has nothing to flag.
UV_NOISE = 0.015
MIN_USD = 200

ZH_HEADER = ["数据年月", "商品编码", "商品名称", "贸易伙伴编码", "贸易伙伴名称",
             "第一数量", "第一计量单位", "第二数量", "第二计量单位", "美元"]
EN_ORDER = ["hs8", "name", "ym", "partner_code", "partner_name", "usd", "qty1", "unit1", "qty2", "unit2"]
ZH_ORDER = ["ym", "hs8", "name", "partner_code", "partner_name", "qty1", "unit1", "qty2", "unit2", "usd"]
EN_NAMES = {"hs8": "Commodity code", "name": "Commodity", "ym": "Date of data", "partner_code": "Trading partner code",
            "partner_name": "Trading partner", "usd": "US dollar", "qty1": "Quantity", "unit1": "Unit",
            "unit2": "Supplementary Unit"}


def history(years: int, last: dt.date = LAST_HISTORY_MONTH) -> tuple[dt.date, dt.date]:
    """(first, last) month of `years` years of history ending at `last`."""
    return add_months(last, -12 * years + 1), last


def file_mtime(month: dt.date, part: int) -> float:
    """Fixed modification times: months in order, parts in order (the project loads oldest first)."""
    base = dt.datetime(2024, 2, 1, tzinfo=dt.timezone.utc).timestamp()
    return base + ((month.year - 2000) * 12 + month.month) * 86_400 + part


def _header_line(lang: str, en_variant: int) -> str:
    if lang == "zh":
        names = ZH_HEADER
    else:
        supp = "Supplimentary" if en_variant % 2 == 0 else "Supplementary"
        names = [f"{supp} Quantity" if f == "qty2" else EN_NAMES[f] for f in EN_ORDER]
    return ",".join(f'"{n}"' for n in names) + ",\r\n"


def _row_sql(order: list[str]) -> str:
    """A CSV line (without its line break) from the columns of `rows`, every field quoted."""
    return "'\"' || " + " || '\",\"' || ".join(order) + " || '\",'"


def connect(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    con.execute("SET preserve_insertion_order = false")
    return con


def prepare(con: duckdb.DuckDBPyConnection, codes: int | None, seed: int = SEED) -> dict:
    """The code list, partner weights and each code's partner mix (temp tables)."""
    big = ", ".join(f"('{code}', {rank})" for rank, code in enumerate(BIG_PARTNERS))
    con.execute(f"""
        CREATE OR REPLACE TEMP MACRO u(a, b, c, d) AS
            (hash({seed}, a, b, c, d) >> 11)::DOUBLE / 9007199254740992.0;
        -- ~N(0, 1): Irwin-Hall sum of three uniforms, scaled
        CREATE OR REPLACE TEMP MACRO z(a, b, c) AS
            (u(a, b, c, 'z1') + u(a, b, c, 'z2') + u(a, b, c, 'z3') - 1.5) * 2.0;
        CREATE OR REPLACE TEMP MACRO esc(x) AS replace(coalesce(x, ''), '"', '""');

        CREATE OR REPLACE TEMP TABLE all_codes AS
        SELECT * FROM read_csv('{SEEDS / 'gacc_commodities.csv'}', header = true, all_varchar = true);
        CREATE OR REPLACE TEMP TABLE families AS
        SELECT hs_prefix, CAST(usd_per_kg_min AS DOUBLE) AS lo, CAST(usd_per_kg_max AS DOUBLE) AS hi
        FROM read_csv('{SEEDS / 'commodity_families.csv'}', header = true, all_varchar = true);

        CREATE OR REPLACE TEMP TABLE codes AS
        WITH chosen AS (
            SELECT * FROM all_codes
            ORDER BY hs8 = '85051110' DESC, hash({seed}, hs8, 'pick')
            LIMIT {int(codes) if codes else 'NULL'}
        ), band AS (
            SELECT c.hs8, f.lo, f.hi FROM chosen c JOIN families f ON starts_with(c.hs8, f.hs_prefix)
            QUALIFY row_number() OVER (PARTITION BY c.hs8 ORDER BY length(f.hs_prefix) DESC) = 1
        )
        SELECT c.hs8, esc(trim(c.name_zh)) AS name_zh, esc(trim(c.name_en)) AS name_en,
               c.unit1_code, c.unit1_name_zh AS unit1_zh, c.unit1_name_en AS unit1_en,
               c.unit2_code IS NOT NULL AS has_unit2,
               coalesce(c.unit2_name_zh, '?') AS unit2_zh, coalesce(c.unit2_name_en, '?') AS unit2_en,
               -- partners in the code's mix (1 .. {MAX_PARTNERS}, skewed to few)
               least(1 + floor({MAX_PARTNERS} * pow(u(c.hs8, 'n', 0, 0), 1.8)), {MAX_PARTNERS})::INT AS n_partners,
               -- typical shipment size in the declared unit, and its yearly growth
               exp(ln(20000) + 1.3 * z(c.hs8, 'scale', 0)) AS scale,
               -0.05 + 0.15 * u(c.hs8, 'growth', 0, 0) AS growth,
               u(c.hs8, 'phase', 0, 0) AS phase,
               -- unit value (USD per declared unit): inside the family band where there is one
               CASE WHEN b.hs8 IS NOT NULL
                    THEN least(greatest(sqrt(b.lo * b.hi) * exp(0.3 * z(c.hs8, 'uv', 0)), b.lo * 1.2), b.hi / 1.2)
                    ELSE least(greatest(exp(ln(6) + 1.0 * z(c.hs8, 'uv', 0)), 0.3), 5000) END AS unit_value,
               -- second quantity per first-unit quantity
               exp(ln(2) + 1.5 * z(c.hs8, 'q2', 0)) AS q2_ratio
        FROM chosen c LEFT JOIN band b USING (hs8);

        CREATE OR REPLACE TEMP TABLE partners AS
        WITH p AS (
            SELECT partner_code, esc(partner_name_zh) AS partner_zh, esc(partner_name_en) AS partner_en
            FROM read_csv('{SEEDS / 'gacc_partners.csv'}', header = true, all_varchar = true)
        ), ranked AS (
            SELECT p.*, row_number() OVER (ORDER BY coalesce(b.rank, 1000), hash({seed}, p.partner_code, 'rank')) - 1 AS rank
            FROM p LEFT JOIN (VALUES {big}) b(partner_code, rank) USING (partner_code)
        )
        SELECT *, 1.0 / pow(rank + 3, 1.1) AS weight FROM ranked;

        -- each code's partners: weighted sampling without replacement (Gumbel top-k)
        CREATE OR REPLACE TEMP TABLE code_partners AS
        WITH scored AS (
            SELECT c.hs8, p.partner_code, p.weight,
                   ln(p.weight) - ln(-ln(greatest(u(c.hs8, p.partner_code, 'pick', 0), 1e-300))) AS score,
                   c.n_partners
            FROM codes c CROSS JOIN partners p
        )
        SELECT hs8, partner_code,
               row_number() OVER (PARTITION BY hs8 ORDER BY score DESC) AS partner_rank,
               -- the partner's share of the code's trade
               pow(weight / max(weight) OVER (PARTITION BY hs8), 0.6) * exp(0.5 * z(hs8, partner_code, 'size')) AS size
        FROM scored
        QUALIFY row_number() OVER (PARTITION BY hs8 ORDER BY score DESC) <= n_partners;
    """)
    n_codes, n_pairs = con.execute("SELECT (SELECT count(*) FROM codes), (SELECT count(*) FROM code_partners)").fetchone()
    return {"codes": n_codes, "code_partners": n_pairs}


def month_sql(month: dt.date, month_index: int, rows_per_file: int) -> str:
    """Every line of one month's files: (part, lang, en_variant, rn, line)."""
    ym = f"{month:%Y%m}"
    fields = {
        "ym": f"'{ym}'", "hs8": "hs8", "partner_code": "partner_code",
        "qty1": "format('{:,}', qty_)", "qty2": "CASE WHEN has_unit2 THEN format('{:,}', qty2) ELSE '0' END",
        "usd": "format('{:,}', usd)",
    }
    zh = dict(fields, name="name_zh", partner_name="partner_zh", unit1="unit1_zh", unit2="unit2_zh")
    en = dict(fields, name="name_en", partner_name="partner_en", unit1="unit1_en", unit2="unit2_en")
    zh_line = _row_sql([zh[f] for f in ZH_ORDER])
    en_line = _row_sql([en[f] for f in EN_ORDER])
    t = month.month
    years = month_index / 12.0
    return f"""
        WITH present AS (
            SELECT cp.*, c.* EXCLUDE (hs8),
                   -- seasonality, trend, month noise
                   c.scale * cp.size
                     * (1 + 0.12 * sin(2 * pi() * ({t} / 12.0 + c.phase)))
                     * pow(1 + c.growth, {years})
                     * (0.75 + 0.5 * u(cp.hs8, cp.partner_code, '{ym}', 'q')) AS q
            FROM code_partners cp JOIN codes c USING (hs8)
            WHERE cp.partner_rank <= {ALWAYS} OR u(cp.hs8, cp.partner_code, '{ym}', 'on') < {PRESENCE}
        ), numbered AS (
            SELECT *,
                   greatest(round(qty_ * q2_ratio), 1)::BIGINT AS qty2,
                   round(qty_ * unit_value * ({1 - UV_NOISE} + {2 * UV_NOISE} * u(hs8, partner_code, '{ym}', 'uv')))::BIGINT AS usd,
                   (row_number() OVER (ORDER BY hs8, partner_code) - 1) AS i
            FROM (SELECT *, greatest(round(q), ceil({MIN_USD} / unit_value), 1)::BIGINT AS qty_ FROM present)
        ), rows AS (
            SELECT n.*, p.partner_zh, p.partner_en, i // {rows_per_file} AS part,
                   CASE WHEN (i // {rows_per_file} + {month_index}) % 2 = 0 THEN 'zh' ELSE 'en' END AS lang
            FROM numbered n JOIN partners p USING (partner_code)
        )
        SELECT part, any_value(lang) AS lang, count(*) AS n_rows,
               string_agg(CASE WHEN lang = 'zh' THEN {zh_line} ELSE {en_line} END
                          || chr(13) || chr(10), '' ORDER BY i) AS body
        FROM rows
        GROUP BY part
        ORDER BY part
    """


@dataclass
class Generated:
    files: int
    rows: int
    bytes: int
    seconds: float
    months: int
    codes: int
    code_partners: int


def generate(
    landing: Path,
    codes: int | None,
    first: dt.date,
    last: dt.date,
    seed: int = SEED,
    rows_per_file: int = ROWS_PER_FILE,
    threads: int | None = None,
    month_index_base: dt.date = dt.date(2014, 1, 1),
    quiet: bool = False,
) -> Generated:
    """Write <landing>/exports/gacc_exports_YYYYMM_pNNN.csv for every month first..last."""
    started = time.perf_counter()
    out = landing / "exports"
    out.mkdir(parents=True, exist_ok=True)
    con = connect(threads)
    sizes = prepare(con, codes, seed)
    files = rows = size = 0
    months = months_between(first, last)
    for month in months:
        index = (month.year - month_index_base.year) * 12 + month.month - month_index_base.month
        result = con.execute(month_sql(month, index, rows_per_file)).fetchall()
        for part, lang, n_rows, body in result:
            data = (_header_line(lang, part // 2 + index) + body).encode("gb18030")
            path = out / f"gacc_exports_{month:%Y%m}_p{part + 1:03d}.csv"
            path.write_bytes(data)
            stamp = file_mtime(month, part)
            os.utime(path, (stamp, stamp))
            files += 1
            rows += n_rows
            size += len(data)
        if not quiet:
            print(f"  {month:%Y-%m}: {len(result)} file(s), {sum(r[2] for r in result):,} rows", file=sys.stderr, flush=True)
    con.close()
    return Generated(files, rows, size, time.perf_counter() - started, len(months), sizes["codes"], sizes["code_partners"])


def _month(text: str) -> dt.date:
    return dt.datetime.strptime(text.replace("-", ""), "%Y%m").date()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("landing", type=Path, help="landing directory (files go to <landing>/exports/)")
    parser.add_argument("--codes", default="all", help="number of HS8 codes, or 'all' (default)")
    parser.add_argument("--years", type=int, default=10, help="years of history ending 2023-12 (default 10)")
    parser.add_argument("--first", type=_month, help="first month YYYY-MM (overrides --years)")
    parser.add_argument("--last", type=_month, help="last month YYYY-MM (default 2023-12)")
    parser.add_argument("--rows-per-file", type=int, default=ROWS_PER_FILE)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--threads", type=int)
    args = parser.parse_args(argv)
    last = args.last or LAST_HISTORY_MONTH
    first = args.first or history(args.years, last)[0]
    codes = None if args.codes == "all" else int(args.codes)
    g = generate(args.landing, codes, first, last, args.seed, args.rows_per_file, args.threads)
    print(f"{g.files} files, {g.rows:,} rows, {g.bytes / 1e6:,.1f} MB, {g.codes} codes x {g.months} months "
          f"({g.code_partners:,} code-partner pairs) in {g.seconds:.1f} s ({g.rows / g.seconds:,.0f} rows/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
