// A classic script that runs right after the runtime bundle: it starts fetching and compiling the
// WASM binary now, so that work overlaps the loading of the page's modules instead of waiting for
// them. runtime.js takes over the promise it leaves (and starts the backend itself if this script
// did not run).
(() => {
  const tf = globalThis.tf;
  if (!tf || !tf.wasm) return;
  const siteRoot = new URL('../../', document.currentScript.src);
  tf.wasm.setWasmPaths(new URL('vendor/', siteRoot).href);
  // One thread to start with: the multi-threaded build's workers each load the module, work that
  // would compete with the first result. The page moves to it afterwards (runtime.js).
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  globalThis.facemoodWasmStarting = tf.setBackend('wasm').catch((err) => {
    console.warn(`TF.js backend wasm unavailable: ${err.message}`);
    return false;  // runtime.js then starts the plain JavaScript backend
  });
})();
