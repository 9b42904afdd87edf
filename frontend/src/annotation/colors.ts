/**
 * Colours: class colours come from the server ("#rrggbb"); cell instances get
 * deterministic pseudo-random colours from their id, so every client shows a given cell
 * in the same colour. (The server's label tiles use their own function; this one only
 * colours the optimistic preview and the id swatch.)
 */

export type Rgb = [number, number, number];

export function parseHexColor(hex: string): Rgb {
  const m = /^#?([0-9a-f]{6})$/i.exec(hex.trim());
  if (m === null) throw new TypeError(`not a #rrggbb colour: ${JSON.stringify(hex)}`);
  const n = parseInt(m[1]!, 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

export function toHex([r, g, b]: Rgb): string {
  return "#" + [r, g, b].map((v) => v.toString(16).padStart(2, "0")).join("");
}

/** 32-bit integer hash (murmur3 finaliser). */
export function hash32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

function hsvToRgb(h: number, s: number, v: number): Rgb {
  const i = Math.floor(h * 6);
  const f = h * 6 - i;
  const p = v * (1 - s);
  const q = v * (1 - f * s);
  const t = v * (1 - (1 - f) * s);
  const table: Array<[number, number, number]> = [
    [v, t, p],
    [q, v, p],
    [p, v, t],
    [p, q, v],
    [t, p, v],
    [v, p, q],
  ];
  const [r, g, b] = table[((i % 6) + 6) % 6]!;
  return [Math.round(r * 255), Math.round(g * 255), Math.round(b * 255)];
}

/** Bright, saturated colour for instance `id` (> 0). */
export function instanceColor(id: number): Rgb {
  const h = hash32(id);
  const hue = (h & 0xffff) / 0x10000;
  const sat = 0.55 + ((h >>> 16) & 0xff) / 0xff * 0.4;
  const val = 0.8 + ((h >>> 24) & 0xff) / 0xff * 0.2;
  return hsvToRgb(hue, sat, val);
}
