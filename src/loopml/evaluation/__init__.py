"""Evaluation suites: every model judged on the same rows, the same way, with confidence intervals.

A suite freezes a dataset version, a split and a set of metrics, so any model from any library
is judged on exactly the same test rows. Heavy libraries (numpy, pandas, scikit-learn) are
imported only when called, so ``import loopml`` stays lean.

- ``metrics.py``: the default metrics per task, computed vectorised (also under bootstrap
  weights), and custom metrics as plain functions;
- ``bootstrap.py``: confidence intervals by bootstrap, and the paired bootstrap that compares
  two models on the same rows;
- ``splits.py``: random, stratified, group, time and rolling-origin splits, seeded;
- ``charts.py``: the SVG charts of the report (ROC, PR, calibration, confusion, residuals,
  forecasts).
"""
