/**
 * A three.js viewport for surface meshes in nm: renderer, lights, orbit controls, rendering on
 * demand (orbit changes, resizes, requestRender), a camera framing that looks down the slices,
 * and disposal of everything it drew. The viewer's 3D pane and the report's cell view share it.
 */
import * as THREE from "three";
import { OrbitControls } from "three/examples/jsm/controls/OrbitControls.js";
import type { Disposable } from "./disposable";

/** `instanceof THREE.Mesh` narrows to Mesh<any, any>; this keeps geometry and material typed. */
export function isMesh(o: THREE.Object3D): o is THREE.Mesh {
  return o instanceof THREE.Mesh;
}

/** A lit surface material; below opacity 1 it is see-through from both sides so nested meshes show. */
export function surfaceMaterial(color: string, opacity = 1): THREE.MeshStandardMaterial {
  const see = opacity < 1;
  return new THREE.MeshStandardMaterial({
    color: new THREE.Color(color), roughness: 0.55, metalness: 0.05,
    transparent: see, opacity, depthWrite: !see, side: see ? THREE.DoubleSide : THREE.FrontSide,
  });
}

/** Free the geometries and materials of every mesh under `object`. */
export function disposeMeshes(object: THREE.Object3D): void {
  object.traverse((o) => {
    if (isMesh(o)) {
      o.geometry.dispose();
      for (const m of [o.material].flat()) m.dispose();
    }
  });
}

export class Viewport3D implements Disposable {
  readonly scene = new THREE.Scene();
  private readonly renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
  private readonly camera = new THREE.PerspectiveCamera(35, 1, 1, 1e7);
  private readonly controls: OrbitControls;
  private readonly resizer: ResizeObserver;
  private home: { target: THREE.Vector3; position: THREE.Vector3 } | null = null;
  private frame = 0;

  constructor(private readonly box: HTMLElement, background: number) {
    this.renderer.setPixelRatio(Math.min(2, window.devicePixelRatio));
    this.renderer.setClearColor(background);
    box.append(this.renderer.domElement);
    this.scene.add(new THREE.HemisphereLight(0xffffff, 0x3a3f47, 1.6));
    const key = new THREE.DirectionalLight(0xffffff, 1.6);
    key.position.set(1, 1.5, 2);
    this.camera.add(key);
    this.scene.add(this.camera);
    this.controls = new OrbitControls(this.camera, this.renderer.domElement);
    this.controls.addEventListener("change", () => this.requestRender());
    this.resizer = new ResizeObserver(() => this.resize());
    this.resizer.observe(box);
  }

  /** Point the camera at `object`'s bounding sphere, down the slices from slightly above (as the
   * paper's renderings), and remember that as the home view. */
  frameCamera(object: THREE.Object3D): void {
    const sphere = new THREE.Box3().setFromObject(object).getBoundingSphere(new THREE.Sphere());
    const distance = sphere.radius / Math.sin(THREE.MathUtils.degToRad(this.camera.fov / 2)) * 1.05;
    this.camera.near = distance / 100;
    this.camera.far = distance * 100;
    this.camera.updateProjectionMatrix();
    const dir = new THREE.Vector3(0.35, -0.55, -1).normalize();
    this.camera.up.set(0, -1, 0);
    this.camera.position.copy(sphere.center).addScaledVector(dir, -distance);
    this.controls.target.copy(sphere.center);
    this.controls.update();
    this.home = { target: sphere.center.clone(), position: this.camera.position.clone() };
  }

  /** Back to the view of the last frameCamera. */
  resetView(): void {
    if (this.home === null) return;
    this.camera.position.copy(this.home.position);
    this.controls.target.copy(this.home.target);
    this.controls.update();
    this.requestRender();
  }

  resize(): void {
    const { clientWidth: w, clientHeight: hgt } = this.box;
    if (w === 0 || hgt === 0) return;
    this.renderer.setSize(w, hgt, true);
    this.camera.aspect = w / hgt;
    this.camera.updateProjectionMatrix();
    this.requestRender();
  }

  requestRender(): void {
    if (this.frame !== 0) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.renderer.render(this.scene, this.camera);
    });
  }

  dispose(): void {
    cancelAnimationFrame(this.frame);
    this.resizer.disconnect();
    this.controls.dispose();
    disposeMeshes(this.scene);
    this.renderer.dispose();
    this.renderer.domElement.remove();
  }
}
