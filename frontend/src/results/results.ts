/** Entry of the results pages (the "results" bundle): a volume's report, or a project's volumes side by side. */
import css from "./results.css?inline";
import { ProjectResultsPage } from "./project_results";
import { VolumeResultsPage } from "./volume_results";

const root = document.getElementById("results-app");
if (root !== null) {
  const style = document.createElement("style");
  style.textContent = css;
  document.head.append(style);
  const volumeId = Number(root.dataset.volumeId);
  const projectId = Number(root.dataset.projectId);
  if (root.dataset.mode === "volume" && Number.isInteger(volumeId)) {
    new VolumeResultsPage(root, volumeId, root.dataset.canRun === "true");
  } else if (root.dataset.mode === "project" && Number.isInteger(projectId)) {
    new ProjectResultsPage(root, projectId);
  } else {
    root.textContent = `results page without a volume or project id (${root.dataset.mode})`;
  }
}
