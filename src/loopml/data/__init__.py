"""Data: versioned datasets, and profiles, validation and drift statistics of tables.

The computing modules import their heavy libraries (pyarrow, numpy, scipy, pandas) only
when called, so ``import loopml`` stays lean.

- ``datasets.py``: files, folders and frames added as numbered versions; a version as a
  step input (the store side is ``store/datasets.py``);
- ``tables.py``: what every function here accepts (DataFrames, Arrow tables, CSV,
  Parquet and JSON lines files), read one way with one set of error messages;
- ``profile*.py``: per-column statistics of a table, with terminal and HTML views;
- ``schema.py``, ``validate*.py``: expectations inferred from a reference table, written
  to an editable TOML file, checked against new data;
- ``drift*.py``: drift statistics between a reference and a current table (monitoring
  reuses them);
- ``charts.py``: the small self-contained SVG charts the HTML views share.
"""
