/**
 * Small observable values (neuroglancer's trackable_value.ts, reduced): a value, a
 * change signal, and subscriptions that return disposers.
 */
import type { Disposer } from "./disposable";

export type Listener<T> = (value: T, previous: T) => void;

export class Trackable<T> {
  private listeners = new Set<Listener<T>>();

  constructor(
    private current: T,
    private readonly equals: (a: T, b: T) => boolean = Object.is,
  ) {}

  get value(): T {
    return this.current;
  }

  set value(next: T) {
    const previous = this.current;
    if (this.equals(previous, next)) return;
    this.current = next;
    for (const fn of [...this.listeners]) fn(next, previous);
  }

  /** Apply a function to the current value and store the result. */
  update(fn: (value: T) => T): void {
    this.value = fn(this.current);
  }

  /** Call `fn` on every change; returns the unsubscription. */
  subscribe(fn: Listener<T>): Disposer {
    this.listeners.add(fn);
    return () => {
      this.listeners.delete(fn);
    };
  }

  /** Like subscribe, but also calls `fn` once now. */
  watch(fn: Listener<T>): Disposer {
    fn(this.current, this.current);
    return this.subscribe(fn);
  }

  get listenerCount(): number {
    return this.listeners.size;
  }
}

/** Equality for small arrays of primitives (tuples such as [z, y, x]). */
export function tupleEquals<T extends readonly unknown[]>(a: T, b: T): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

/** A plain event stream (signal) with disposable subscriptions. */
export class Signal<A extends unknown[] = []> {
  private listeners = new Set<(...args: A) => void>();

  add(fn: (...args: A) => void): Disposer {
    this.listeners.add(fn);
    return () => {
      this.listeners.delete(fn);
    };
  }

  dispatch(...args: A): void {
    for (const fn of [...this.listeners]) fn(...args);
  }
}
