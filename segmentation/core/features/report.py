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
        description of every column); or ``.parquet``.
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
        table.to_parquet(path, index=False)
    else:
        with pd.ExcelWriter(path, engine="openpyxl") as writer:
            table.to_excel(writer, sheet_name="cells", index=False)
            columns_sheet(table, columns).to_excel(writer, sheet_name="columns", index=False)
    return path
