// Starts the TF.js runtime vendored into the site: WASM (SIMD when the browser has it) first,
// the plain JavaScript backend as a fallback. The runtime bundle is a classic script that
// defines the global `tf`; this module is the only place that reads it.
import { CodedError } from './errors.js';

export const tf = globalThis.tf;

const VENDOR = new URL('../../vendor/', import.meta.url);
// Not loaded with the page: only a browser where WASM cannot start needs it (render.py ships it).
const CPU_FALLBACK = 'tf-backend-cpu.es2017.min.js';
// The multi-threaded build's glue (web/runtime/bundle.mjs): loaded only when the page moves to threads.
const THREADS_GLUE = 'tf-wasm-threads.min.js';

// The multi-threaded WASM build, as a backend of its own (startThreadedBackend).
export const THREADED = 'wasm-threads';

let started = null;

// The backend's name once it runs. Safe to call from every loader: it starts the runtime once.
export function startBackend() {
  started ??= start();
  return started;
}

async function start() {
  if (!tf) throw new CodedError('runtime_missing', {}, 'the TF.js runtime did not load');
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
  throw new CodedError('no_backend', {}, 'no TF.js backend could start in this browser');
}

function startWasm() {
  // Binaries sit in vendor/ beside the page; resolve against this module so any sub-path works.
  tf.wasm.setWasmPaths(VENDOR.href);
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);  // see start-backend.js
  return tf.setBackend('wasm');
}

// The multi-threaded WASM build started beside the running single-threaded one and registered as
// THREADED with the same kernels, for the page to switch to when no photo is being classified
// (facemood.js). The page starts single-threaded: on a cold load the threaded build's workers each
// load the module while the page's own work already has both cores of a small machine busy (about
// 90 ms later to the first result, measured). It needs a cross-origin isolated page (shared memory:
// served with the isolation headers, or from the second visit on by sw.js) and more than one core.
// Returns the thread count, or null where it cannot run.
export async function startThreadedBackend() {
  const possible = globalThis.crossOriginIsolated && navigator.hardwareConcurrency > 1;
  if (!possible || tf.getBackend() !== 'wasm' || !(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'))) return null;
  await loadScript(new URL(THREADS_GLUE, VENDOR));
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);  // read once, as the loader starts
  const loading = tf.initWasmModule();
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  const backend = new tf.wasm.BackendWasm((await loading).wasm);
  tf.registerBackend(THREADED, () => backend, 0);
  for (const kernel of tf.getKernelsForBackend('wasm')) tf.registerKernel({ ...kernel, backendName: THREADED });
  return tf.wasm.getThreadsCount();
}

// Moves `tensors` to the running backend now. TF.js moves a tensor when a kernel of the new backend
// first reads it, but a graph reads some constants (shapes, axes) on the JavaScript side, from
// whichever backend holds them; those would keep the old backend alive.
export function moveToRunningBackend(tensors) {
  const backend = tf.engine().backend;
  for (const tensor of tensors) {
    if (!tensor.isDisposed && !backend.dataIdMap.has(tensor.dataId)) tf.engine().moveData(backend, tensor.dataId);
  }
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
