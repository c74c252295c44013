"""The model registry: named, numbered model versions, aliases that move by promotion through
gates, and loading a version as a predictor that checks its input.

Heavy libraries are imported only when called, so ``import loopml`` stays lean.

- ``schema.py``: the input schema of a model version (columns, dtypes, categories), inferred
  from the training data, and the check of new input against it.
- ``schema_checks.py``: the check of one column against its spec, the reading of input into
  a frame, and the words of the schema errors.
"""
