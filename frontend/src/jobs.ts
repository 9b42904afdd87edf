/** Entry point of the jobs page (the "jobs" bundle); styles are injected so the page needs no CSS link. */
import css from "./styles/jobs.css?inline";
import { JobsPage } from "./jobs/jobs_page";

const root = document.getElementById("jobs-app");
if (root !== null) {
  const style = document.createElement("style");
  style.textContent = css;
  document.head.append(style);
  const projectId = Number(root.dataset.projectId);
  if (Number.isInteger(projectId)) new JobsPage(root, projectId);
  else root.textContent = `data-project-id is not an integer: ${root.dataset.projectId}`;
}
