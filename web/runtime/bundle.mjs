// Bundles the TF.js runtime the page loads into one minified script that defines the global `tf`:
// tfjs-core without gradients, optimizers or chained ops, the graph-model loader with only the ops
// the site's models use (op functions and the converter's op definitions), and the WASM backend
// with only the kernels that code can ask for. About half the bytes of the three stock bundles to
// download and, on every cold load, to parse. The multi-threaded WASM build's glue goes into a file
// of its own beside it (THREADS_BUNDLE), which the page loads only when it moves to threads.
//
//   node web/runtime/bundle.mjs OUT.js MODEL.json [MODEL.json ...]
//
// The models' graph ops are mapped to TF.js op functions with the converter's own table
// (metadata/kernel2op.json), as TF.js's size-optimized bundles do; the converter's executors then
// see only those (their `ops_for_converter` import is replaced by a module that exports them).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TFJS = path.join(ROOT, 'node_modules', '@tensorflow');
const CORE_OPS = path.join(TFJS, 'tfjs-core', 'dist', 'ops');

// What the page, its tests and benchmarks call on `tf`.
const PAGE_API = ['env', 'setBackend', 'getBackend', 'ready', 'tidy', 'dispose', 'tensor4d', 'memory', 'engine',
  'io', 'version_core', 'registerBackend', 'removeBackend', 'findBackend', 'getKernelsForBackend', 'registerKernel'];
const CONVERTER_API = ['loadGraphModel', 'GraphModel', 'version_converter'];

// The graph ops of the models ('Conv2D', '_FusedConv2D', 'Placeholder').
function graphOpsOf(modelFiles) {
  const graphOps = new Set();
  for (const file of modelFiles) {
    const { modelTopology } = JSON.parse(readFileSync(file, 'utf8'));
    const nodes = [...(modelTopology.node ?? []),
      ...(modelTopology.library?.function ?? []).flatMap((f) => f.nodeDef ?? [])];
    for (const node of nodes) graphOps.add(node.op);
  }
  return graphOps;
}

// Graph op names -> TF.js op functions ('add', 'fused.conv2d', 'image.resizeBilinear').
function opFunctions(graphOps) {
  const table = JSON.parse(readFileSync(path.join(TFJS, 'tfjs-converter', 'metadata', 'kernel2op.json'), 'utf8'));
  const unknown = [...graphOps].filter((op) => !(op in table));
  if (unknown.length) throw new Error(`TF.js cannot run the graph op(s) ${unknown.join(', ')}`);
  return [...new Set([...graphOps].flatMap((op) => table[op]))].sort();
}

// The module the converter's executors import their ops from: only `functions`. A namespaced op
// (fused.conv2d, image.resizeBilinear) comes from the file tfjs-core's ops.js imports it from.
function opsModule(functions) {
  const opsIndex = path.join(CORE_OPS, 'ops.js');
  const source = readFileSync(opsIndex, 'utf8');
  const fileOf = new Map();
  for (const [, names, file] of source.matchAll(/import \{([^}]+)\} from '(\.\/[\w/]+)';/g)) {
    for (const name of names.split(',')) fileOf.set(name.trim(), file);
  }
  const namespaceFile = new Map([...source.matchAll(/import \* as (\w+) from '(\.\/[\w/]+)';/g)].map(([, ns, f]) => [ns, f]));
  const direct = functions.filter((fn) => !fn.includes('.'));
  const lines = direct.length ? [`export { ${direct.join(', ')} } from '${opsIndex}';`] : [];
  const namespaces = new Map();
  for (const fn of functions.filter((f) => f.includes('.'))) {
    const [ns, name] = fn.split('.');
    const file = namespaceFile.get(ns) ?? fileOf.get(name);
    if (!file) throw new Error(`cannot find the TF.js op ${fn}`);
    lines.push(`import { ${name} as ${ns}_${name} } from '${path.join(CORE_OPS, file)}.js';`);
    namespaces.set(ns, [...(namespaces.get(ns) ?? []), name]);
  }
  for (const [ns, names] of namespaces) {
    lines.push(`export const ${ns} = { ${names.map((n) => `${n}: ${ns}_${n}`).join(', ')} };`);
  }
  return lines.join('\n') + '\n';
}

// The names the plain JavaScript backend's own bundle (loaded only when WASM cannot start) reads
// from the global `tf`: kernel names, backend utilities.
function cpuFallbackNames() {
  const source = readFileSync(path.join(TFJS, 'tfjs-backend-cpu', 'dist', 'tf-backend-cpu.es2017.js'), 'utf8');
  return [...new Set([...source.matchAll(/tfjsCore\.(\w+)/g)].map(([, name]) => name))];
}

function entryModule(standIn) {
  const core = [...new Set([...PAGE_API, ...cpuFallbackNames()])].sort();
  return [
    "import '@tensorflow/tfjs-core/dist/base_side_effects';",
    `export { ${core.join(', ')} } from '@tensorflow/tfjs-core/dist/base';`,
    `export { ${CONVERTER_API.join(', ')} } from '@tensorflow/tfjs-converter';`,
    "import * as wasm from '@tensorflow/tfjs-backend-wasm';",
    'export { wasm };',
    // A second WASM module (the multi-threaded one) is started with the backend's own loader.
    "export { init as initWasmModule } from '@tensorflow/tfjs-backend-wasm/dist/backend_wasm';",
    `export { useThreadedGlue } from '${standIn}';`,
  ].join('\n') + '\n';
}

// One of the converter's op-definition files (op_list/*.js: `export const json = [...]`, one entry
// per graph op) with only the entries of `graphOps`: the converter maps a graph with these alone.
function opDefinitions(file, graphOps) {
  const source = readFileSync(file, 'utf8');
  const start = source.indexOf('export const json = ');
  if (start < 0) throw new Error(`unexpected TF.js op list ${file}`);
  const literal = source.slice(start + 'export const json = '.length).replace(/;\s*(\/\/#.*)?\s*$/, '');
  const entries = new Function(`return ${literal};`)();  // a data literal of the package's own
  return `export const json = ${JSON.stringify(entries.filter((entry) => graphOps.has(entry.tfOpName)))};\n`;
}

// The WASM backend's kernel registration (register_all_kernels.js registers every kernel; TF.js
// says a modular build replaces it) for only the `kernels` named. Its kernel files are named after
// their kernels.
function kernelRegistration(kernels) {
  const dir = path.join(TFJS, 'tfjs-backend-wasm', 'dist');
  const source = readFileSync(path.join(dir, 'register_all_kernels.js'), 'utf8');
  const configs = [...source.matchAll(/import \{ (\w+) \} from '\.\/kernels\/(\w+)';/g)]
    .filter(([, , kernel]) => kernels.has(kernel));
  return [
    "import { registerKernel } from '@tensorflow/tfjs-core';",
    ...configs.map(([, config, kernel]) => `import { ${config} } from '${path.join(dir, 'kernels', kernel)}.js';`),
    `for (const config of [${configs.map(([, config]) => config).join(', ')}]) registerKernel(config);`,
  ].join('\n') + '\n';
}

// The kernels the bundled code can ask a backend for: the `runKernel(Name, ...)` calls in the
// tfjs-core and converter sources of a build (kernel names are constants named as they read), and
// the WASM kernels that registered ones call directly (their WASM functions are bound only when
// they are registered themselves).
function kernelsCalled(metafile) {
  const [output] = Object.values(metafile.outputs);
  const kernels = new Set();
  for (const [file, { bytesInOutput }] of Object.entries(output.inputs)) {
    if (bytesInOutput === 0) continue;
    const wasmKernel = file.match(/tfjs-backend-wasm\/dist\/kernels\/(\w+)\.js$/);
    if (wasmKernel) kernels.add(wasmKernel[1]);
    if (!/@tensorflow\/tfjs-(core|converter)\//.test(file)) continue;
    for (const [, name] of readFileSync(path.resolve(ROOT, file), 'utf8').matchAll(/runKernel\((\w+)/g)) kernels.add(name);
  }
  kernels.delete('kernelName');  // the engine's own definition
  return kernels;
}

const BANNER = `/**
 * TensorFlow.js ${JSON.parse(readFileSync(path.join(TFJS, 'tfjs-core', 'package.json'), 'utf8')).version}: tfjs-core, tfjs-converter and tfjs-backend-wasm, bundled for this site.
 * Copyright Google LLC. All Rights Reserved.
 * Licensed under the Apache License, Version 2.0 (http://www.apache.org/licenses/LICENSE-2.0).
 */`;

// The multi-threaded build's glue, written beside the runtime bundle (runtime.js loads it by name).
const THREADS_BUNDLE = 'tf-wasm-threads.min.js';

// The multi-threaded build's Emscripten glue, changed in two places. XNNPACK's thread pool is given
// half the logical cores it is told of (TF.js assumes two hyper-threads per core), which on a 2-core
// machine is one thread: so it is told twice the count it should use, all logical cores up to
// MAX_THREADS. And the glue starts one worker per thread beyond the page's own before the module
// counts as loaded, not a fixed 8 (each loads the module: CPU the page's own thread then lacks).
const MAX_THREADS = 4;
function threadedGlue(source) {
  const threads = `Math.min(navigator.hardwareConcurrency,${MAX_THREADS})`;
  return patched(source, 'WASM glue', [
    ['var pthreadPoolSize=8;', `var pthreadPoolSize=${threads}-1;`],
    ['return navigator["hardwareConcurrency"]}', `return 2*${threads}}`],
  ]);
}

// `source` with each [from, to] replaced, each `from` found exactly once (else the package changed).
function patched(source, what, patches) {
  for (const [from, to] of patches) {
    if (source.split(from).length !== 2) throw new Error(`unexpected TF.js ${what}: no single "${from.split('\n')[0].trim()}"`);
    source = source.replace(from, () => to);
  }
  return source;
}

// What the runtime bundle's WASM backend imports in place of the multi-threaded build's glue and
// worker source, until THREADS_BUNDLE has handed them over (`tf.useThreadedGlue`). TF.js gives its
// workers the factory's source text, so the stand-in's is the glue's own.
const GLUE_STAND_IN = `let glue = null;
export let wasmWorkerContents = '';
export function useThreadedGlue(loaded) {
  glue = loaded;
  wasmWorkerContents = loaded.worker;
}
export default function threadedFactory(config) {
  if (!glue) throw new Error('the multi-threaded WASM glue (${THREADS_BUNDLE}) is not loaded');
  return glue.factory(config);
}
threadedFactory.toString = () => glue.factory.toString();
`;

// tfjs-core's weight decoding (io_utils.js), which runs on the page's main thread while it loads,
// made cheaper in two ways that give the same values:
// - the float16 decoder builds its lookup tables (2,048 + 64 + 64 entries) afresh for every float16
//   weight it decodes, 106 times for the photo detector's shards: it is made once;
// - a uint8 weight is dequantized through a table of its 256 values (byte * scale + min, computed
//   as before) instead of a multiply and an add per byte.
function weightDecoding(source) {
  return patched(source, 'io_utils', [
    ['export function getFloat16Decoder() {', `let float16Decoder = null;
export function getFloat16Decoder() {
    return float16Decoder ??= makeFloat16Decoder();
}
function makeFloat16Decoder() {`],
    [`                values = new Float32Array(quantizedArray.length);
                for (let i = 0; i < quantizedArray.length; i++) {
                    const v = quantizedArray[i];
                    values[i] = v * quantization.scale + quantization.min;
                }`, `                values = dequantized(quantizedArray, quantization.scale, quantization.min);`],
  ]) + `
function dequantized(bytes, scale, min) {
    const values = new Float32Array(bytes.length);
    if (bytes.BYTES_PER_ELEMENT === 1) {
        const table = new Float32Array(256);
        for (let v = 0; v < 256; v++) table[v] = v * scale + min;
        for (let i = 0; i < bytes.length; i++) values[i] = table[bytes[i]];
    } else {
        for (let i = 0; i < bytes.length; i++) values[i] = bytes[i] * scale + min;
    }
    return values;
}
`;
}

// THREADS_BUNDLE: the glue and worker source, patched (threadedGlue), handed to the runtime bundle.
const THREADS_ENTRY = `import factory from '@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js';
import { wasmWorkerContents } from '@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js';
globalThis.tf.useThreadedGlue({ factory, worker: wasmWorkerContents });
`;

export async function bundle(out, modelFiles) {
  const work = mkdtempSync(path.join(tmpdir(), 'facemood-runtime-'));
  try {
    const ops = path.join(work, 'ops.js');
    const entry = path.join(work, 'entry.js');
    const kernels = path.join(work, 'kernels.js');
    const standIn = path.join(work, 'threads-stand-in.js');
    const threadsEntry = path.join(work, 'threads.js');
    const graphOps = graphOpsOf(modelFiles);
    writeFileSync(ops, opsModule(opFunctions(graphOps)));
    writeFileSync(entry, entryModule(standIn));
    writeFileSync(standIn, GLUE_STAND_IN);
    writeFileSync(threadsEntry, THREADS_ENTRY);
    const redirect = {
      name: 'facemood-runtime',
      setup(build) {
        // Everything that imports tfjs-core as a whole gets the core without gradients and the rest.
        build.onResolve({ filter: /^@tensorflow\/tfjs-core$/ },
          () => ({ path: path.join(TFJS, 'tfjs-core', 'dist', 'base.js') }));
        build.onResolve({ filter: /\/ops\/ops_for_converter$/ }, () => ({ path: ops }));
        build.onResolve({ filter: /\/register_all_kernels$/ }, () => ({ path: kernels }));
        build.onLoad({ filter: /tfjs-converter\/dist\/operations\/op_list\/\w+\.js$/ },
          (args) => ({ contents: opDefinitions(args.path, graphOps), resolveDir: path.dirname(args.path) }));
        build.onResolve({ filter: /wasm-out\/tfjs-backend-wasm-threaded-simd(\.worker)?\.js$/ }, () => ({ path: standIn }));
        build.onLoad({ filter: /tfjs-core\/dist\/io\/io_utils\.js$/ },
          (args) => ({ contents: weightDecoding(readFileSync(args.path, 'utf8')), loader: 'js', resolveDir: path.dirname(args.path) }));
      },
    };
    const patchGlue = {
      name: 'facemood-threads',
      setup(build) {
        build.onLoad({ filter: /wasm-out\/tfjs-backend-wasm-threaded-simd\.js$/ },
          (args) => ({ contents: threadedGlue(readFileSync(args.path, 'utf8')), loader: 'js' }));
      },
    };
    const options = {
      entryPoints: [entry], outfile: out, bundle: true, minify: true, format: 'iife', globalName: 'tf',
      target: 'es2017', legalComments: 'none', banner: { js: BANNER }, plugins: [redirect],
      nodePaths: [path.join(ROOT, 'node_modules')], logLevel: 'error', absWorkingDir: ROOT, metafile: true,
      // Node-only branches of the WASM glue; never taken in a browser.
      external: ['fs', 'path', 'worker_threads', 'perf_hooks', 'os', 'crypto', 'util'],
    };
    // Kernels in, until the code they bring asks for no kernel not yet in (once or twice).
    let registered = new Set();
    for (;;) {
      writeFileSync(kernels, kernelRegistration(registered));
      const called = kernelsCalled((await esbuild.build(options)).metafile);
      if ([...called].every((kernel) => registered.has(kernel))) break;
      registered = new Set([...registered, ...called]);
    }
    await esbuild.build({ ...options, entryPoints: [threadsEntry], outfile: path.join(path.dirname(out), THREADS_BUNDLE),
      globalName: undefined, metafile: false, plugins: [patchGlue] });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [out, ...models] = process.argv.slice(2);
  if (!out || models.length === 0) {
    console.error('usage: node web/runtime/bundle.mjs OUT.js MODEL.json [MODEL.json ...]');
    process.exit(2);
  }
  bundle(out, models).catch((err) => {
    // esbuild's message ends with a count of errors; the first error itself says what went wrong.
    console.error((err.errors?.[0]?.text ?? err.message).split('\n')[0]);
    process.exit(1);
  });
}
