// Starts the TF.js runtime vendored into the site: WASM (SIMD when the browser has it) first,
// the plain JavaScript backend as a fallback. The runtime bundles are classic scripts that
// define the global `tf`; this module is the only place that reads it.
export const tf = globalThis.tf;

const BACKENDS = ['wasm', 'cpu'];

export async function startBackend() {
  if (!tf) throw new Error('the TF.js runtime did not load');
  // Binaries sit in vendor/ beside the page; resolve against this module so any sub-path works.
  tf.wasm.setWasmPaths(new URL('../../vendor/', import.meta.url).href);
  for (const name of BACKENDS) {
    try {
      if (await tf.setBackend(name)) {
        await tf.ready();
        return name;
      }
    } catch (err) {
      console.warn(`TF.js backend ${name} unavailable: ${err.message}`);
    }
  }
  throw new Error('no TF.js backend could start in this browser');
}
