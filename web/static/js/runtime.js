// Starts the TF.js runtime vendored into the site: WASM (SIMD when the browser has it) first,
// the plain JavaScript backend as a fallback. The runtime bundle is a classic script that
// defines the global `tf`; this module is the only place that reads it.
export const tf = globalThis.tf;

const VENDOR = new URL('../../vendor/', import.meta.url);
// Not loaded with the page: only a browser where WASM cannot start needs it (render.py ships it).
const CPU_FALLBACK = 'tf-backend-cpu.es2017.min.js';

let started = null;

// The backend's name once it runs. Safe to call from every loader: it starts the runtime once.
export function startBackend() {
  started ??= start();
  return started;
}

async function start() {
  if (!tf) throw new Error('the TF.js runtime did not load');
  try {
    // Usually start-backend.js began this already, while the page was still loading.
    if (await (globalThis.facemoodWasmStarting ?? startWasm())) {
      await tf.ready();
      return 'wasm';
    }
  } catch (err) {
    console.warn(`TF.js backend wasm unavailable: ${err.message}`);
  }
  try {
    await loadScript(new URL(CPU_FALLBACK, VENDOR));
    if (await tf.setBackend('cpu')) {
      await tf.ready();
      return 'cpu';
    }
  } catch (err) {
    console.warn(`TF.js backend cpu unavailable: ${err.message}`);
  }
  throw new Error('no TF.js backend could start in this browser');
}

function startWasm() {
  // Binaries sit in vendor/ beside the page; resolve against this module so any sub-path works.
  tf.wasm.setWasmPaths(VENDOR.href);
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);  // see start-backend.js
  return tf.setBackend('wasm');
}

function loadScript(url) {
  return new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = url.href;
    script.onload = resolve;
    script.onerror = () => reject(new Error(`${url.pathname} could not be loaded`));
    document.head.append(script);
  });
}
