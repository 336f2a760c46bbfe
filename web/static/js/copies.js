// Copies of one TF.js graph network, one per input shape (faces.js keeps the face detector so).
//
// XNNPACK (under TF.js's WASM backend) sets each convolution up for the input size it last ran at:
// the table of where each output pixel reads its input. An input of another size makes every layer
// build that again, about 3 ms a photo here when landscape and portrait photos alternate. A copy
// has weights of its own, so a set-up of its own: each shape keeps its copy set up.

import { tf } from './runtime.js';

// A network of its own (its own weight tensors) from loaded model artifacts, at once: no await
// between the call and a first run. Not inside tf.tidy(): the weights would be disposed with it.
export function buildGraphModel(artifacts) {
  const network = new tf.GraphModel(tf.io.fromMemory(artifacts));
  network.loadSync(artifacts);
  return network;
}

// Copies for the first `kept` keys (input shapes) asked for, made when first asked for; `first`, an
// already built network, serves the first key. Beyond them a key borrows the least recently used
// copy, which is set up again for it, as the one network always was: a new copy's first run costs
// more than that (about 15 ms against 3 here: it builds and packs its weights), so dropping copies
// to make new ones made photos of more shapes than `kept`, in turn, slower than one network.
export function networkCopies(artifacts, kept, first = null) {
  let unbound = first;
  const copies = new Map();  // key -> network, the least recently used first
  return {
    get(key) {
      let network = copies.get(key);
      if (network) {
        copies.delete(key);
      } else if (copies.size >= kept) {
        return copies.values().next().value;
      } else {
        network = unbound ?? buildGraphModel(artifacts);
        unbound = null;
      }
      copies.set(key, network);
      return network;
    },
    has: (key) => copies.has(key),
    keys: () => [...copies.keys()],
    all: () => [unbound, ...copies.values()].filter(Boolean),
  };
}
