/**
 * Seeded, reproducible parameter init. Each element's value is a pure function of (seed, tensor index,
 * element index), via Box-Muller over PCG hashes, so init does not depend on the order tensors are filled.
 *
 * @module
 */
import type { ModelConfig } from "./config.ts";
import { paramLayout } from "./params.ts";
import { hashIndex, pcg } from "./hash.ts";
import { headLayout } from "./head_layout.ts";

/** Standard deviation of the normal init of matrices (BERT's initializer_range). */
export const INIT_STD = 0.02;

/**
 * The flat parameter vector of a fresh model in {@linkcode paramLayout}: matrices (and the learned position
 * table) normal(0, 0.02), LayerNorm weights 1 and biases 0, the position scale 1/sqrt(hidden), and the
 * alignment padding between tensors 0.
 */
export function initParams(config: ModelConfig, options: { seed: number }): Float32Array<ArrayBuffer> {
  const layout = paramLayout(config);
  const params = new Float32Array(layout.totalSize);
  layout.tensors.forEach((tensor, index) => {
    const view = params.subarray(tensor.offset, tensor.offset + tensor.size);
    switch (tensor.kind) {
      case "matrix":
      case "position-table": {
        fillNormal(view, pcg((pcg(options.seed >>> 0) ^ index) >>> 0));
        break;
      }
      case "norm-weight":
        view.fill(1);
        break;
      case "norm-bias":
      case "bias":
        break;
      case "position-scale":
        view.fill(1 / Math.sqrt(config.hidden));
        break;
    }
  });
  return params;
}

/**
 * The flat vector of a fresh finetuning head (`headLayout`): weights normal(0, 0.02) and biases 0, as the
 * Cramming recipe initializes its Linear layers. The weights' streams are disjoint from `initParams`'s
 * for the same seed.
 */
export function initHead(config: ModelConfig, labels: number, options: { seed: number }): Float32Array {
  const layout = headLayout(config, labels);
  const head = new Float32Array(layout.totalSize);
  layout.tensors.forEach((tensor, index) => {
    if (tensor.name.endsWith(".weight")) {
      const stream = pcg((pcg(options.seed >>> 0) ^ HEAD_STREAMS ^ index) >>> 0);
      fillNormal(head.subarray(tensor.offset, tensor.offset + tensor.size), stream);
    }
  });
  return head;
}

/** Set in the head's stream keys, whose tensor indices would otherwise repeat the encoder's. */
const HEAD_STREAMS = 0x68656164; // "head"

/**
 * Fills `view` with normal(0, INIT_STD) samples that are a pure function of (stream, element index):
 * elements 2j and 2j + 1 are the cosine and sine halves of one Box-Muller pair whose two uniforms hash
 * (stream, 2j) and (stream, 2j + 1).
 */
function fillNormal(view: Float32Array, stream: number): void {
  for (let j = 0; 2 * j < view.length; j++) {
    // Uniforms in (0, 1): the +0.5 keeps log away from 0.
    const u1 = (hashIndex(stream, 2 * j) + 0.5) / 2 ** 32;
    const u2 = (hashIndex(stream, 2 * j + 1) + 0.5) / 2 ** 32;
    const radius = INIT_STD * Math.sqrt(-2 * Math.log(u1));
    const angle = 2 * Math.PI * u2;
    view[2 * j] = radius * Math.cos(angle);
    if (2 * j + 1 < view.length) view[2 * j + 1] = radius * Math.sin(angle);
  }
}
