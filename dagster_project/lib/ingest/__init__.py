"""The ingest stage: GACC downloads from the landing directory into raw.* (no Dagster here).

Its modules, each importing only those listed before it:
  regular_files            what may be opened: regular files, told apart by their stat
  temporary_names          the names downloads have while they are written (.crdownload, .part ...)
  gacc_format, transcode   what a download looks like; its bytes to UTF-8 and their SHA-256, in one read
  landing_files            the landing directory's files, their flow, period in the name, load id
  settling                 files still being written: the settle interval, changes during a run
  landing_hashes           each file's SHA-256, reused while the file is unchanged
  refusals                 files refused unread (not regular, unreadable, too large, links out)
  previous_loads           which files are loaded already
  reference_data           the unit, commodity and partner lists, the text-reading SQL macros
  load_record, report      what a load and an ingest say
  staged_csv, row_checks   reading a staged file, the per-file checks of its rows
  file_loader              the per-file gate: one file, with the row and column at fault
  batch                    many clean files per statement; the doubtful ones to the per-file gate
  comtrade_format          what a UN Comtrade download looks like (mirror/comtrade/), which rows are kept
  comtrade_loader          the gate of a Comtrade file: whole into raw.comtrade_rows, or rejected
  landing                  ingest_landing: the order of it all
"""
