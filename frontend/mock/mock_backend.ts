import type { Plugin } from "vite";
export function mockBackend(): Plugin {
  return { name: "emportal-mock" };
}
