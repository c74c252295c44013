"""One window of the prediction log as a table, fast enough for a million rows.

``loopml.predictions()`` builds a pandas frame row by row (``json.loads`` per row): fine for a
notebook, slow for a monitor that reads whole days. Here the JSON text of the inputs,
outputs and labels goes to pyarrow's JSON reader in one piece each (newline-delimited,
parsed in C++), and the result is one Arrow table: the input columns, ``prediction``,
``proba_<class>``, ``label``, ``version``, ``at`` and ``latency_ms``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from loopml.tracking.client import Client


def _ndjson(texts: Sequence[str]) -> pa.Table:
    import io

    import pyarrow as pa
    import pyarrow.json as pj

    if not texts:
        return pa.table({})
    data = "\n".join(texts).encode("utf-8", "backslashreplace")
    # One block for the whole window: the reader infers each column's type from every row.
    options = pj.ReadOptions(block_size=max(1 << 20, len(data) + 1))
    return pj.read_json(io.BytesIO(data), read_options=options)


def window_frame(
    client: Client, model: str, since: float, until: float, classes: Sequence[Any] | None
) -> pd.DataFrame:
    """The answered predictions of ``model`` in ``[since, until)`` as a pandas frame.

    A log whose JSON the Arrow reader refuses (a column that is a number in one row and
    text in another) is read the slow way, row by row, rather than not at all.
    """
    import pyarrow as pa

    try:
        return _fast(client, model, since, until, classes)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        from loopml.serving.logbook import predictions

        frame = predictions(model, since=since, until=until, client=client)
        return frame[frame["shadow_of"].isna()] if "shadow_of" in frame.columns else frame


def _fast(
    client: Client, model: str, since: float, until: float, classes: Sequence[Any] | None
) -> pd.DataFrame:
    import pandas as pd
    import pyarrow as pa

    cols = client.metadata.predictions.window_columns(model, since, until)
    n = len(cols["at"])
    if n == 0:
        return pd.DataFrame(columns=["version", "at", "prediction", "label", "latency_ms"])
    inputs = _ndjson(cols["inputs"])
    outputs = _ndjson(cols["output"])
    labels = _ndjson(['{"label":%s}' % (v if v is not None else "null") for v in cols["label"]])
    table = inputs
    reserved = {"prediction", "label", "version", "at", "latency_ms"}
    table = table.drop_columns([c for c in table.column_names if c in reserved])
    if "prediction" in outputs.column_names:
        table = table.append_column("prediction", outputs.column("prediction"))
    if "probabilities" in outputs.column_names:
        proba = outputs.column("probabilities").combine_chunks()
        width = len(classes) if classes is not None else 0
        if classes is not None and width and pa.types.is_list(proba.type):
            flat = proba.flatten()
            lengths = proba.value_lengths().to_numpy(zero_copy_only=False)
            if len(flat) == n * width and (lengths == width).all():
                matrix = flat.to_numpy(zero_copy_only=False).reshape(n, width)
                for i, k in enumerate(classes):
                    table = table.append_column(f"proba_{k}", pa.array(matrix[:, i]))
    table = table.append_column("label", labels.column("label"))
    table = table.append_column("version", pa.array(cols["version"], pa.int64()))
    table = table.append_column("at", pa.array(cols["at"], pa.float64()))
    table = table.append_column("latency_ms", pa.array(cols["latency_ms"], pa.float64()))
    return table.to_pandas()
