"""Write a feature table as CSV, XLSX (with a sheet explaining each column) or Parquet."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from segmentation.core.features.columns import COLUMNS

__all__ = ["REPORT_SUFFIXES", "columns_sheet", "write_report"]

REPORT_SUFFIXES = (".csv", ".xlsx", ".parquet")


def columns_sheet(table: pd.DataFrame, columns: Mapping[str, tuple[str, str]] | None = None) -> pd.DataFrame:
    """One row per column of ``table``: ``column``, ``unit``, ``description``.

    Columns missing from ``columns`` (default :data:`COLUMNS`) get empty unit and text.
    """
    described = dict(COLUMNS if columns is None else columns)
    return pd.DataFrame(
        [(name, *described.get(name, ("", ""))) for name in table.columns],
        columns=["column", "unit", "description"],
    )


def write_report(
    table: pd.DataFrame,
    path: str | Path,
    *,
    columns: Mapping[str, tuple[str, str]] | None = None,
) -> Path:
    """Write ``table`` in the format named by the suffix of ``path``.

    Parameters
    ----------
    table : pandas.DataFrame
        A :func:`cell_features` table (any table works).
    path : str or Path
        ``.csv``; ``.xlsx`` (sheet ``cells`` plus a sheet ``columns`` with unit and
        description of every column); or ``.parquet`` (each column's ``unit`` and
        ``description`` in its field metadata, and all units as JSON under the
        file's ``emportal.units`` key).
    columns : mapping of str to (unit, description), optional
        Column descriptions for the XLSX sheet (:data:`COLUMNS` by default; pass
        ``describe_columns(classes)`` for other classes).

    Returns
    -------
    Path
        The path written.

    Raises
    ------
    ValueError
        On another suffix.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in REPORT_SUFFIXES:
        raise ValueError(f"report path {str(path)!r} must end in one of {', '.join(REPORT_SUFFIXES)}")
    if suffix == ".csv":
        table.to_csv(path, index=False)
    elif suffix == ".parquet":
        _write_parquet(table, path, columns)
    else:
        with pd.ExcelWriter(path, engine="openpyxl") as writer:
            table.to_excel(writer, sheet_name="cells", index=False)
            columns_sheet(table, columns).to_excel(writer, sheet_name="columns", index=False)
    return path


def _write_parquet(table: pd.DataFrame, path: Path, columns: Mapping[str, tuple[str, str]] | None) -> None:
    """Parquet whose fields carry their unit and description, readable by any Arrow reader."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    described = dict(COLUMNS if columns is None else columns)
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    fields = []
    for field in arrow.schema:
        unit, description = described.get(field.name, ("", ""))
        fields.append(field.with_metadata({"unit": unit, "description": description}))
    units = {name: described.get(name, ("", ""))[0] for name in table.columns}
    metadata = {**(arrow.schema.metadata or {}), b"emportal.units": json.dumps(units).encode()}
    pq.write_table(pa.Table.from_arrays(arrow.columns, schema=pa.schema(fields, metadata=metadata)), path)
