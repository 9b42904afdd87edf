import { describe, expect, it } from "vitest";
import { BINDINGS, bindingFor, bindingGroups, bindingKeys } from "./keymap";

const key = (k: string, extra: Partial<{ ctrlKey: boolean; metaKey: boolean; shiftKey: boolean; altKey: boolean }> = {}) =>
  ({ key: k, ctrlKey: false, metaKey: false, shiftKey: false, altKey: false, ...extra });

describe("keymap", () => {
  it("tells undo from redo by Shift and accepts Cmd for Ctrl", () => {
    expect(bindingFor(key("z", { ctrlKey: true }))?.action).toBe("undo");
    expect(bindingFor(key("Z", { ctrlKey: true, shiftKey: true }))?.action).toBe("redo");
    expect(bindingFor(key("y", { metaKey: true }))?.action).toBe("redo");
    expect(bindingFor(key("z"))).toBeNull();
  });

  it("finds tools by letter either case, slices with or without Shift, and ? with Shift", () => {
    expect(bindingFor(key("B"))?.action).toBe("tool:brush");
    expect(bindingFor(key("ArrowUp", { shiftKey: true }))?.action).toBe("slicePrev");
    expect(bindingFor(key("?", { shiftKey: true }))?.action).toBe("help");
    expect(bindingFor(key("7"))?.action).toBe("class");
    expect(bindingFor(key("m"))?.action).toBe("maximise");
    expect(bindingFor(key("b", { altKey: true }))).toBeNull();
    expect(bindingFor(key("b", { ctrlKey: true }))).toBeNull();
  });

  it("no key press triggers two bindings", () => {
    const combos = BINDINGS.flatMap((b) => b.combos.map((c) => `${c.mod ? "mod+" : ""}${c.shift === true ? "shift+" : ""}${c.key}`));
    expect(new Set(combos).size).toBe(combos.length);
  });

  it("writes keys as the overlay shows them, grouped in table order", () => {
    expect(bindingKeys(BINDINGS.find((b) => b.action === "redo")!)).toBe("Ctrl+Shift+Z · Ctrl+Y");
    expect(bindingKeys(BINDINGS.find((b) => b.action === "slicePrev")!)).toBe("↑ · ← · PgUp");
    expect(bindingKeys(BINDINGS.find((b) => b.action === "class")!)).toBe("1 – 9");
    expect(bindingGroups().map(([g]) => g)).toEqual(["View", "Navigate", "Paint", "Edit"]);
  });
});
