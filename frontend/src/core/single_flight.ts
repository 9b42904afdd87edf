/**
 * Buttons that start server work ignore a click while the request of the last one is in
 * flight: a double-click on Retrain sent two POSTs (the server now refuses the second, but
 * the user saw an error toast for a click they did not mean twice).
 */
import type { Trackable } from "./trackable";

/**
 * Wrap `action` so that calls made while its last promise is pending are dropped (they
 * return that pending promise). `busy`, when given, is true while a call is in flight, so
 * the button can show itself disabled.
 */
export function singleFlight<A extends unknown[]>(
  action: (...args: A) => Promise<unknown>,
  busy?: Trackable<boolean>,
): (...args: A) => Promise<unknown> {
  let pending: Promise<unknown> | null = null;
  return (...args: A) => {
    if (pending !== null) return pending;
    if (busy !== undefined) busy.value = true;
    const run = (async () => {
      try {
        return await action(...args);
      } finally {
        pending = null;
        if (busy !== undefined) busy.value = false;
      }
    })();
    pending = run;
    return run;
  };
}
