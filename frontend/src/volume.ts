/** Entry point of the volume page (the "volume" bundle). */
import "./styles/volume.css";
import { VolumePage } from "./viewer/volume_page";

const root = document.getElementById("app");
if (root !== null) {
  VolumePage.mount(root).catch((err: unknown) => console.error(err));
}
