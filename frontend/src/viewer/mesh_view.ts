/**
 * three.js side of the viewer's 3D pane (loaded on first use, so the slice viewer's bundle stays
 * small): draws a label layer's GLB (nm, one node per class or cell) in the class colours.
 * dispose() frees the GPU resources.
 */
import type * as THREE from "three";
import { GLTFLoader } from "three/examples/jsm/loaders/GLTFLoader.js";
import type { Disposable } from "../core/disposable";
import { Viewport3D, disposeMeshes, isMesh, surfaceMaterial } from "../core/viewport3d";

export class MeshView implements Disposable {
  private readonly viewport: Viewport3D;
  private content: THREE.Object3D | null = null;
  private framed = false;

  constructor(box: HTMLElement) {
    this.viewport = new Viewport3D(box, 0x0b0d10);
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
      o.material = surfaceMaterial(colorOf(name), see ? 0.45 : 1);
      o.geometry.computeVertexNormals();
    });
    this.content = gltf.scene;
    this.viewport.scene.add(gltf.scene);
    if (!this.framed) this.viewport.frameCamera(gltf.scene);  // later loads keep the user's orbit
    this.framed = true;
    this.viewport.resize();
    return names;
  }

  private clear(): void {
    if (this.content === null) return;
    this.viewport.scene.remove(this.content);
    disposeMeshes(this.content);
    this.content = null;
  }

  dispose(): void {
    this.clear();
    this.viewport.dispose();
  }
}
