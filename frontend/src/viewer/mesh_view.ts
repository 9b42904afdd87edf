/**
 * three.js side of the viewer's 3D pane (loaded on first use, so the slice viewer's bundle stays
 * small): draws a label layer's GLB (nm, one node per class or cell) in the class colours,
 * orbit controls, rendering on demand. dispose() frees the GPU resources.
 */
import * as THREE from "three";
import { OrbitControls } from "three/examples/jsm/controls/OrbitControls.js";
import { GLTFLoader } from "three/examples/jsm/loaders/GLTFLoader.js";
import type { Disposable } from "../core/disposable";

function isMesh(o: THREE.Object3D): o is THREE.Mesh {
  return o instanceof THREE.Mesh;
}

export class MeshView implements Disposable {
  private readonly renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
  private readonly scene = new THREE.Scene();
  private readonly camera = new THREE.PerspectiveCamera(35, 1, 1, 1e7);
  private readonly controls: OrbitControls;
  private readonly resizer: ResizeObserver;
  private content: THREE.Object3D | null = null;
  private frame = 0;
  private framed = false;

  constructor(private readonly box: HTMLElement) {
    this.renderer.setPixelRatio(Math.min(2, window.devicePixelRatio));
    this.renderer.setClearColor(0x0b0d10);
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

  /** Show the GLB `data`, colouring node `name` with `colorOf(name)`; returns the node names. */
  async show(data: ArrayBuffer, colorOf: (name: string) => string): Promise<string[]> {
    const gltf = await new GLTFLoader().parseAsync(data, "");
    this.clear();
    const names: string[] = [];
    gltf.scene.traverse((o) => {
      if (!isMesh(o)) return;
      const name = o.name || o.parent?.name || "";
      names.push(name);
      for (const old of [o.material].flat()) old.dispose();
      const see = name === "nucleus" || name.startsWith("cell");
      o.material = new THREE.MeshStandardMaterial({
        color: new THREE.Color(colorOf(name)), roughness: 0.55, metalness: 0.05,
        transparent: see, opacity: see ? 0.45 : 1, depthWrite: !see, side: see ? THREE.DoubleSide : THREE.FrontSide,
      });
      o.geometry.computeVertexNormals();
    });
    this.content = gltf.scene;
    this.scene.add(gltf.scene);
    if (!this.framed) this.frameCamera(gltf.scene);  // later loads keep the user's orbit
    this.framed = true;
    this.resize();
    return names;
  }

  private clear(): void {
    if (this.content === null) return;
    this.scene.remove(this.content);
    this.content.traverse((o) => {
      if (isMesh(o)) {
        o.geometry.dispose();
        for (const m of [o.material].flat()) m.dispose();
      }
    });
    this.content = null;
  }

  private frameCamera(object: THREE.Object3D): void {
    const sphere = new THREE.Box3().setFromObject(object).getBoundingSphere(new THREE.Sphere());
    const distance = sphere.radius / Math.sin(THREE.MathUtils.degToRad(this.camera.fov / 2)) * 1.05;
    this.camera.near = distance / 100;
    this.camera.far = distance * 100;
    this.camera.updateProjectionMatrix();
    const dir = new THREE.Vector3(0.35, -0.55, -1).normalize();  // down the slices, slightly from above
    this.camera.up.set(0, -1, 0);
    this.camera.position.copy(sphere.center).addScaledVector(dir, -distance);
    this.controls.target.copy(sphere.center);
    this.controls.update();
  }

  private resize(): void {
    const { clientWidth: w, clientHeight: hgt } = this.box;
    if (w === 0 || hgt === 0) return;
    this.renderer.setSize(w, hgt, true);
    this.camera.aspect = w / hgt;
    this.camera.updateProjectionMatrix();
    this.requestRender();
  }

  private requestRender(): void {
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
    this.clear();
    this.renderer.dispose();
    this.renderer.domElement.remove();
  }
}
