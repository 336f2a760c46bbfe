// The browser's next idle moment (or a short wait where it has no idle callbacks): for work that
// must not compete with what a person is waiting for.
export function idle() {
  return new Promise((resolve) => (globalThis.requestIdleCallback ? requestIdleCallback(resolve, { timeout: 500 }) : setTimeout(resolve, 50)));
}
