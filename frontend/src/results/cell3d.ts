/** Entry of the 3D cell view (the "cell3d" bundle): three.js stays out of the results page bundle. */
import css from "./results.css?inline";
import { CellView } from "./cell_view";

const root = document.getElementById("cell3d-app");
if (root !== null) {
  const style = document.createElement("style");
  style.textContent = css;
  document.head.append(style);
  const reportId = Number(root.dataset.reportId);
  const cellId = Number(root.dataset.cellId);
  if (Number.isInteger(reportId) && Number.isInteger(cellId)) new CellView(root, reportId, cellId);
  else root.textContent = "3D view without a report or cell id";
}
