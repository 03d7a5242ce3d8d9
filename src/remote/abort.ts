/**
 * One 'abort' listener per signal, however many commands wait on it: a run
 * hands the same interruption signals to every command it starts (20 hosts
 * at once is 20 waiters), and an AbortSignal with more than 10 listeners
 * makes Node print a MaxListenersExceededWarning.
 */
const waiters = new WeakMap<AbortSignal, Set<() => void>>();

/** Calls `fn` once when `signal` aborts (at once if it already has); the function returned stops waiting. */
export function whenAborted(signal: AbortSignal, fn: () => void): () => void {
  if (signal.aborted) {
    fn();
    return () => undefined;
  }
  let set = waiters.get(signal);
  if (!set) {
    const all = new Set<() => void>();
    set = all;
    waiters.set(signal, all);
    signal.addEventListener(
      'abort',
      () => {
        waiters.delete(signal);
        for (const f of [...all]) f();
      },
      { once: true },
    );
  }
  const mine = set;
  const once = () => {
    mine.delete(once);
    fn();
  };
  mine.add(once);
  return () => {
    mine.delete(once);
  };
}
