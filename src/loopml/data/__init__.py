"""Data: profiles, validation and drift statistics of tables (datasets build on these).

Each module is pure computation over Arrow/numpy arrays and imports its heavy libraries
(pyarrow, numpy, scipy, pandas) only when called, so ``import loopml`` stays lean.

- ``profile.py``: per-column statistics of a table, with terminal and HTML views;
- ``validate.py``: expectations inferred from a reference table, checked against new data;
- ``drift.py``: drift statistics between a reference and a current table (monitoring
  reuses them);
- ``charts.py``: the small self-contained SVG charts the HTML views share.
"""
