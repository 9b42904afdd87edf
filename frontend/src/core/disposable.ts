/**
 * Disposers in the style of neuroglancer's util/disposable.ts: every listener, timer,
 * socket and canvas resource is registered with an owner and released exactly once.
 */

export type Disposer = () => void;

export interface Disposable {
  dispose(): void;
}

/** Owns a list of disposers and runs them in reverse order of registration. */
export class DisposableSet implements Disposable {
  private disposers: Disposer[] = [];
  private disposed = false;

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Register a disposer or a Disposable; returns it so callers can chain. */
  add<T extends Disposer | Disposable>(item: T): T {
    const fn: Disposer = typeof item === "function" ? item : () => item.dispose();
    if (this.disposed) {
      fn();
    } else {
      this.disposers.push(fn);
    }
    return item;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const list = this.disposers;
    this.disposers = [];
    for (let i = list.length - 1; i >= 0; i--) list[i]!();
  }
}

/** addEventListener that returns its own removal. */
export function listen<K extends keyof HTMLElementEventMap>(
  target: HTMLElement,
  type: K,
  handler: (ev: HTMLElementEventMap[K]) => void,
  options?: AddEventListenerOptions,
): Disposer;
export function listen<K extends keyof WindowEventMap>(
  target: Window,
  type: K,
  handler: (ev: WindowEventMap[K]) => void,
  options?: AddEventListenerOptions,
): Disposer;
export function listen(
  target: EventTarget,
  type: string,
  handler: (ev: Event) => void,
  options?: AddEventListenerOptions,
): Disposer;
export function listen(
  target: EventTarget,
  type: string,
  handler: (ev: never) => void,
  options?: AddEventListenerOptions,
): Disposer {
  const h = handler as unknown as EventListener;
  target.addEventListener(type, h, options);
  return () => target.removeEventListener(type, h, options);
}

/** setInterval with a disposer. */
export function every(ms: number, fn: () => void): Disposer {
  const id = setInterval(fn, ms);
  return () => clearInterval(id);
}
