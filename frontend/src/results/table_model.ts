/**
 * The cell table as data: column lookup, sorting, filter expressions, visible columns,
 * number formatting. Pure, so the page only renders what this decides.
 */
import type { CellTable, CellValue, ColumnInfo } from "./results_api";

export type SortDir = "asc" | "desc";

export interface SortState {
  column: string;
  dir: SortDir;
}

export type FilterOp = "<" | "<=" | ">" | ">=" | "=" | "!=";

/** One condition `column op value` of a filter expression. */
export interface Condition {
  column: string;
  op: FilterOp;
  value: number;
}

export type FilterResult = { ok: true; conditions: Condition[] } | { ok: false; error: string };

export function columnIndex(table: CellTable, name: string): number {
  return table.columns.findIndex((c) => c.name === name);
}

/** Values of one column (null for a missing column). */
export function columnValues(table: CellTable, name: string): CellValue[] {
  const j = columnIndex(table, name);
  return table.rows.map((row) => (j < 0 ? null : (row[j] ?? null)));
}

function numeric(v: CellValue | undefined): number | null {
  if (v === null || v === undefined) return null;
  if (typeof v === "boolean") return v ? 1 : 0;
  return Number.isFinite(v) ? v : null;
}

/**
 * Parse `nucleus_solidity > 0.9 and cell_touches_border = 0` (conditions joined by
 * "and", "&&" or ","; booleans compare as 1/0). Unknown columns are errors.
 */
export function parseFilter(text: string, columns: readonly ColumnInfo[]): FilterResult {
  const trimmed = text.trim();
  if (trimmed === "") return { ok: true, conditions: [] };
  const names = new Set(columns.map((c) => c.name));
  const conditions: Condition[] = [];
  for (const part of trimmed.split(/\s*(?:\band\b|&&|,)\s*/i)) {
    if (part === "") continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|!=|==|=|<|>)\s*(true|false|[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)$/i.exec(part);
    if (m === null) return { ok: false, error: `cannot read "${part}": write column op number, e.g. nucleus_solidity > 0.9` };
    const [, column, rawOp, rawValue] = m as unknown as [string, string, string, string];
    if (!names.has(column)) return { ok: false, error: `no column "${column}"` };
    const op = (rawOp === "==" ? "=" : rawOp) as FilterOp;
    const lower = rawValue.toLowerCase();
    const value = lower === "true" ? 1 : lower === "false" ? 0 : Number(rawValue);
    conditions.push({ column, op, value });
  }
  return { ok: true, conditions };
}

function holds(v: number | null, op: FilterOp, x: number): boolean {
  if (v === null) return op === "!=";
  switch (op) {
    case "<": return v < x;
    case "<=": return v <= x;
    case ">": return v > x;
    case ">=": return v >= x;
    case "=": return v === x;
    case "!=": return v !== x;
  }
}

/** Indices of the rows that satisfy every condition (a null value satisfies only "!="). */
export function filterRows(table: CellTable, conditions: readonly Condition[]): number[] {
  const idx = conditions.map((c) => columnIndex(table, c.column));
  const out: number[] = [];
  table.rows.forEach((row, i) => {
    if (conditions.every((c, k) => holds(numeric(row[idx[k]!]), c.op, c.value))) out.push(i);
  });
  return out;
}

/** Row indices sorted by a column; nulls always last, ties keep their order. */
export function sortRows(table: CellTable, rows: readonly number[], sort: SortState | null): number[] {
  const out = [...rows];
  if (sort === null) return out;
  const j = columnIndex(table, sort.column);
  if (j < 0) return out;
  const sign = sort.dir === "asc" ? 1 : -1;
  return out
    .map((i, order) => ({ i, order, v: numeric(table.rows[i]![j]) }))
    .sort((a, b) => {
      if (a.v === null || b.v === null) return a.v === b.v ? a.order - b.order : a.v === null ? 1 : -1;
      return a.v === b.v ? a.order - b.order : sign * (a.v - b.v);
    })
    .map((e) => e.i);
}

/** Clicking a header: a new column sorts ascending, the same column flips direction. */
export function nextSort(current: SortState | null, column: string): SortState {
  if (current !== null && current.column === column) return { column, dir: current.dir === "asc" ? "desc" : "asc" };
  return { column, dir: "asc" };
}

/** The columns shown by default: id, size, per-class volume and share, and the paper's shape measures. */
export function defaultColumns(columns: readonly ColumnInfo[], classes: readonly string[]): string[] {
  const wanted = [
    "cell_id",
    "cell_volume_um3",
    ...classes.flatMap((c) => [`${c}_volume_um3`, `${c}_pct_of_cell`]),
    "mitochondrion_count",
    "nucleus_solidity",
    "nucleus_sphericity",
    "nucleolus_fenestrated_pct",
    "nucleolus_fenestration_count",
    "cell_touches_border",
  ];
  const present = new Set(columns.map((c) => c.name));
  return wanted.filter((name) => present.has(name));
}

/** A cell's value as text: 3-4 significant digits, "—" when it does not apply. */
export function formatValue(v: CellValue | undefined, unit = ""): string {
  if (v === null || v === undefined) return "—";
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (unit === "id" || (unit === "voxel" && Number.isInteger(v))) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e6) return String(v);
  const a = Math.abs(v);
  if (a === 0) return "0";
  if (a >= 1000) return v.toFixed(0);
  if (a >= 1) return v.toPrecision(4).replace(/\.?0+$/, "");
  return v.toPrecision(3).replace(/(\.\d*?)0+$/, "$1").replace(/\.$/, "");
}

/** Header label: the column name with its unit, e.g. "nucleus_volume_um3 (µm³)". */
export function headerLabel(c: ColumnInfo): string {
  const show = c.unit !== "" && c.unit !== "1" && c.unit !== "id" && c.unit !== "bool";
  return show ? `${c.name} (${c.unit})` : c.name;
}
