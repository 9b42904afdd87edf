/**
 * Dev-only mock of the EM Portal backend (REST + websocket) for `npm run dev`, so the
 * viewer can be developed and screenshotted without Django. It follows the viewer
 * contract: volume metadata, image and label tiles, strokes with ack/broadcast/undo,
 * completeness, jobs. Not shipped: vite.config.ts only loads it for `vite serve`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { Plugin } from "vite";
import { type RawData, WebSocket, WebSocketServer } from "ws";
import { rasterizeBrush, rasterizePolygon } from "../src/annotation/brush.ts";
import { instanceColor, parseHexColor } from "../src/annotation/colors.ts";
import { encodePng } from "./png.ts";

type Axis = "z" | "y" | "x";
const Z = 24;
const Y = 700;
const X = 900;
const VOXEL = [20, 8, 8];
const TILE = 256;
const LEVELS = [0, 1, 2].map((l) => ({
  level: l,
  shape: [Z, Math.ceil(Y / 2 ** l), Math.ceil(X / 2 ** l)],
  downsample: [1, 2 ** l, 2 ** l],
}));
const CLASSES = [
  { id: 1, name: "background", value: 1, color: "#3c4a5a", kind: "semantic" },
  { id: 2, name: "nucleus", value: 2, color: "#ffd700", kind: "semantic" },
  { id: 3, name: "nucleolus", value: 3, color: "#ff2020", kind: "semantic" },
  { id: 4, name: "mitochondrion", value: 4, color: "#ff69b4", kind: "semantic" },
  { id: 5, name: "endosome", value: 5, color: "#ffffff", kind: "semantic" },
  { id: 6, name: "lysosome", value: 6, color: "#000000", kind: "semantic" },
  { id: 7, name: "cell", value: 0, color: "#00c8ff", kind: "instance" },
];
const LAYERS = [
  { name: "manual", kind: "labels" },
  { name: "prediction", kind: "labels" },
  { name: "cells", kind: "instances" },
];

function imageValue(z: number, y: number, x: number): number {
  // Blobby "cells" with darker membranes and some grain.
  const a = Math.sin(x / 37 + z / 9) + Math.sin(y / 29 - z / 11) + Math.sin((x + y) / 53);
  const membrane = Math.abs(Math.sin(x / 61 + Math.sin(y / 47)) * Math.cos(y / 57 + z / 13));
  const grain = ((x * 73856093) ^ (y * 19349663) ^ (z * 83492791)) & 31;
  return Math.max(0, Math.min(255, 120 + a * 28 - (membrane < 0.08 ? 70 : 0) + grain - 16));
}

const labels: Record<string, Uint16Array> = {};
for (const l of LAYERS) labels[l.name] = new Uint16Array(Z * Y * X);
// Some predictions so that layer shows something.
{
  const p = labels.prediction!;
  for (let z = 0; z < Z; z++)
    for (let y = 0; y < Y; y++)
      for (let x = 0; x < X; x++) {
        const d = Math.hypot(y - 350, x - 450, (z - 12) * 2.5);
        if (d < 90) p[(z * Y + y) * X + x] = d < 30 ? 3 : 2;
      }
}
let version = 1;
const strokes = new Map<string, { stroke: Stroke; before: Array<[number, number]>; user: string; undone: boolean }>();
const complete = new Set<string>();
interface Stroke {
  uuid: string;
  layer: string;
  axis: Axis;
  index: number;
  points: Array<[number, number]>;
  radius: number;
  value: number;
  mode: string;
}
/** What the viewer sends on the socket (src/api/types.ts ClientMessage, with the mock's Stroke). */
type ClientMessage =
  | { type: "stroke"; stroke: Stroke }
  | { type: "undo" | "redo"; uuid: string }
  | { type: "mark_complete"; axis: Axis; index: number; complete: boolean };

/** A frame's text: ws hands over one Buffer, an ArrayBuffer or (fragmented) a Buffer list. */
function frameText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString("utf8");
  return Buffer.isBuffer(data) ? data.toString("utf8") : Buffer.from(data).toString("utf8");
}

function planeShape(axis: Axis): [number, number] {
  return axis === "z" ? [Y, X] : axis === "y" ? [Z, X] : [Z, Y];
}
function flat(axis: Axis, index: number, r: number, c: number): number {
  const [z, y, x] = axis === "z" ? [index, r, c] : axis === "y" ? [r, index, c] : [r, c, index];
  return (z * Y + y) * X + x;
}

function applyStroke(s: Stroke): Array<[number, number]> {
  const arr = labels[s.layer]!;
  const [rows, cols] = planeShape(s.axis);
  const before: Array<[number, number]> = [];
  const set = (i: number, v: number) => {
    before.push([i, arr[i]!]);
    arr[i] = v;
  };
  if (s.mode === "fill") {
    const [r0, c0] = s.points[0]!;
    const target = arr[flat(s.axis, s.index, r0, c0)]!;
    if (target === s.value) return before;
    const stack: Array<[number, number]> = [[r0, c0]];
    const seen = new Uint8Array(rows * cols);
    while (stack.length > 0) {
      const [r, c] = stack.pop()!;
      if (r < 0 || c < 0 || r >= rows || c >= cols || seen[r * cols + c]) continue;
      seen[r * cols + c] = 1;
      const i = flat(s.axis, s.index, r, c);
      if (arr[i] !== target) continue;
      set(i, s.value);
      stack.push([r + 1, c], [r - 1, c], [r, c + 1], [r, c - 1]);
    }
    return before;
  }
  const m = s.mode === "polygon" ? rasterizePolygon(s.points, rows, cols) : rasterizeBrush(s.points, s.radius, rows, cols);
  const v = s.mode === "erase" ? 0 : s.value;
  for (let r = 0; r < m.rows; r++)
    for (let c = 0; c < m.cols; c++) if (m.data[r * m.cols + c]) set(flat(s.axis, s.index, m.r0 + r, m.c0 + c), v);
  return before;
}

function tile(axis: Axis, index: number, level: number, ty: number, tx: number, sample: (z: number, y: number, x: number) => number[] | number, channels: 1 | 4): Buffer | null {
  const ds = 2 ** level;
  const [rows0, cols0] = planeShape(axis);
  const rowDs = axis === "z" ? ds : 1;
  const rows = Math.ceil(rows0 / rowDs);
  const cols = Math.ceil(cols0 / ds);
  const idx0 = axis === "z" ? index : index * ds;
  if (idx0 >= (axis === "z" ? Z : axis === "y" ? Y : X) || ty * TILE >= rows || tx * TILE >= cols) return null;
  const h = Math.min(TILE, rows - ty * TILE);
  const w = Math.min(TILE, cols - tx * TILE);
  const px = new Uint8Array(h * w * channels);
  for (let r = 0; r < h; r++)
    for (let c = 0; c < w; c++) {
      const R = (ty * TILE + r) * rowDs;
      const C = (tx * TILE + c) * ds;
      const [z, y, x] = axis === "z" ? [idx0, R, C] : axis === "y" ? [R, idx0, C] : [R, C, idx0];
      const v = sample(z, y, x);
      if (channels === 1) px[r * w + c] = v as number;
      else px.set(v as number[], (r * w + c) * 4);
    }
  return encodePng(w, h, channels, px);
}

function send(res: ServerResponse, status: number, body: unknown, type = "application/json"): void {
  res.statusCode = status;
  res.setHeader("Content-Type", type);
  res.end(type === "application/json" ? JSON.stringify(body) : (body as Buffer));
}

const jobs = [
  { id: 1, kind: "import", state: "succeeded", progress: 1, message: "imported 24 slices", created: new Date(Date.now() - 3600e3).toISOString(), volume: 12 },
  { id: 2, kind: "predict", state: "running", progress: 0.1, message: "sliding window", created: new Date().toISOString(), volume: 12 },
  { id: 3, kind: "train", state: "queued", progress: 0, message: "", created: new Date().toISOString(), volume: null },
];

export function mockBackend(): Plugin {
  const clients = new Set<WebSocket>();
  const broadcast = (msg: unknown, except?: WebSocket) => {
    for (const c of clients) if (c !== except && c.readyState === WebSocket.OPEN) c.send(JSON.stringify(msg));
  };
  return {
    name: "emportal-mock",
    configureServer(server) {
      setInterval(() => {
        for (const j of jobs) if (j.state === "running") {
          j.progress = Math.min(1, j.progress + 0.03);
          if (j.progress >= 1) j.state = "succeeded";
          broadcast({ type: "job", job: j });
        }
      }, 2000).unref();
      const wss = new WebSocketServer({ noServer: true });
      server.httpServer?.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
        if (!req.url?.startsWith("/ws/volumes/")) return;
        wss.handleUpgrade(req, socket, head, (ws) => {
          clients.add(ws);
          const role = new URL(req.url!, "http://x").searchParams.get("role") ?? "annotator";
          ws.send(JSON.stringify({ type: "hello", user: "demo", role, version }));
          ws.on("close", () => clients.delete(ws));
          ws.on("message", (data) => {
            const msg = JSON.parse(frameText(data)) as ClientMessage;
            if (msg.type === "stroke") {
              const s = msg.stroke;
              const seen = strokes.get(s.uuid);
              if (seen !== undefined) {
                ws.send(JSON.stringify({ type: "ack", uuid: s.uuid, version }));
                return;
              }
              if (!(s.layer in labels)) {
                ws.send(JSON.stringify({ type: "error", uuid: s.uuid, code: "bad_layer", message: `no layer ${s.layer}` }));
                return;
              }
              const before = applyStroke(s);
              version++;
              strokes.set(s.uuid, { stroke: s, before, user: "demo", undone: false });
              setTimeout(() => {
                ws.send(JSON.stringify({ type: "ack", uuid: s.uuid, version }));
                broadcast({ type: "stroke", stroke: { ...s, user: "demo" }, version }, ws);
              }, 30);
            } else if (msg.type === "undo" || msg.type === "redo") {
              const e = strokes.get(msg.uuid);
              if (e === undefined) return;
              const arr = labels[e.stroke.layer]!;
              if (msg.type === "undo" && !e.undone) {
                for (let k = e.before.length - 1; k >= 0; k--) arr[e.before[k]![0]] = e.before[k]![1];
                e.undone = true;
              } else if (msg.type === "redo" && e.undone) {
                e.before = applyStroke(e.stroke);
                e.undone = false;
              }
              version++;
              broadcast({ type: msg.type, uuid: msg.uuid, version, user: "demo" });
            } else if (msg.type === "mark_complete") {
              const key = `${msg.axis}:${msg.index}`;
              if (msg.complete) complete.add(key);
              else complete.delete(key);
              broadcast({ type: "mark_complete", axis: msg.axis, index: msg.index, complete: msg.complete, user: "demo" }, ws);
            }
          });
        });
      });
      server.middlewares.use((req, res, next) => {
        const url = new URL(req.url ?? "/", "http://x");
        const p = url.pathname;
        let m: RegExpMatchArray | null;
        if (p === "/api/volumes/12/") {
          res.setHeader("Set-Cookie", "csrftoken=mock-token; Path=/");
          return send(res, 200, {
            id: 12, name: "phantom-demo", project: { id: 3, name: "Demo" }, shape: [Z, Y, X], voxel_size_nm: VOXEL,
            dtype: "uint8", tile_size: TILE, levels: LEVELS, window: [30, 230], role: "annotator", layers: LAYERS,
            classes: CLASSES, complete_slices: [...complete].map((k) => [k.split(":")[0], Number(k.split(":")[1])]),
          });
        }
        if ((m = p.match(/^\/api\/volumes\/12\/tiles\/([zyx])\/(\d+)\/(\d+)\/(\d+)\/(\d+)\.png$/))) {
          const [lo, hi] = (url.searchParams.get("window") ?? "0,255").split(",").map(Number) as [number, number];
          const png = tile(m[1] as Axis, +m[2]!, +m[3]!, +m[4]!, +m[5]!, (z, y, x) =>
            Math.max(0, Math.min(255, ((imageValue(z, y, x) - lo) / Math.max(1, hi - lo)) * 255)), 1);
          return png === null ? send(res, 404, { detail: "outside" }) : send(res, 200, png, "image/png");
        }
        if ((m = p.match(/^\/api\/volumes\/12\/layers\/(\w+)\/tiles\/([zyx])\/(\d+)\/(\d+)\/(\d+)\/(\d+)\.png$/))) {
          const arr = labels[m[1]!];
          if (arr === undefined) return send(res, 404, { detail: "no layer" });
          const inst = m[1] === "cells";
          const png = tile(m[2] as Axis, +m[3]!, +m[4]!, +m[5]!, +m[6]!, (z, y, x) => {
            const v = arr[(z * Y + y) * X + x]!;
            if (v === 0) return [0, 0, 0, 0];
            const rgb = inst ? instanceColor(v) : parseHexColor(CLASSES.find((c) => c.value === v)?.color ?? "#ff00ff");
            return [...rgb, 255];
          }, 4);
          return png === null ? send(res, 404, { detail: "outside" }) : send(res, 200, png, "image/png");
        }
        if ((m = p.match(/^\/api\/volumes\/12\/layers\/(\w+)\/value\/$/))) {
          const arr = labels[m[1]!];
          const [z, y, x] = ["z", "y", "x"].map((k) => Number(url.searchParams.get(k)));
          return send(res, 200, { value: arr?.[(z! * Y + y!) * X + x!] ?? 0 });
        }
        if (p === "/api/projects/3/jobs/") return send(res, 200, jobs);
        if ((m = p.match(/^\/api\/jobs\/(\d+)\/cancel\/$/)) && req.method === "POST") {
          const j = jobs.find((x) => x.id === Number(m![1]));
          if (j !== undefined && (j.state === "running" || j.state === "queued")) j.state = "cancelled";
          return send(res, 200, j ?? {});
        }
        if (p === "/volumes/12/" || p === "/") req.url = "/index.html";
        if (p === "/jobs/") req.url = "/jobs.html";
        next();
      });
    },
  };
}
