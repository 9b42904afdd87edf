/**
 * Build: one ES-module entry per page. Every file is named after a hash of its content
 * (volume-Bx3f9a1c.js), so a deploy never serves a browser yesterday's JavaScript or CSS
 * under a cached name; dist/.vite/manifest.json maps each entry to its files, and the
 * Django templates resolve them through it ({% vite_script "volume" %}, emportal/vite_assets.py).
 * Dev (`npm run dev`): index.html / jobs.html are page shells like the Django ones, and
 * the mock backend in mock/ answers /api/ and /ws/ so the viewer runs without Django.
 */
import { resolve } from "node:path";
import type { ProxyOptions } from "vite";
import { defineConfig } from "vitest/config";
import { mockBackend } from "./mock/mock_backend.ts";

const root = import.meta.dirname;
const backend = process.env.EMPORTAL_BACKEND ?? "http://127.0.0.1:8000";
// EMPORTAL_NO_MOCK=1: talk to a running Django instead of the mock (log in on :8000 first;
// the session cookie is shared because cookies ignore the port).
const proxy: Record<string, string | ProxyOptions> =
  process.env.EMPORTAL_NO_MOCK === "1" ? { "/api": backend, "/ws": { target: backend, ws: true } } : {};

export default defineConfig(({ command }) => ({
  plugins: command === "serve" && process.env.EMPORTAL_NO_MOCK !== "1" ? [mockBackend()] : [],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    manifest: true,
    modulePreload: false,
    cssCodeSplit: true,
    rollupOptions: {
      input: {
        volume: resolve(root, "src/volume.ts"),
        jobs: resolve(root, "src/jobs.ts"),
        results: resolve(root, "src/results/results.ts"),
        cell3d: resolve(root, "src/results/cell3d.ts"),
        reviews: resolve(root, "src/review/pages.ts"),
      },
      output: {
        entryFileNames: "[name]-[hash].js",
        chunkFileNames: "chunks/[name]-[hash].js",
        assetFileNames: "[name]-[hash][extname]",
      },
    },
  },
  server: {
    host: "127.0.0.1",
    port: 5173,
    proxy,
  },
  test: {
    include: ["src/**/*.spec.ts", "mock/**/*.spec.ts"],
    environment: "node",
  },
}));
