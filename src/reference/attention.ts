/**
 * The float64 reference of bidirectional multi-head self-attention over the fused QKV projection
 * (kernels/attention.wgsl, src/model/layers/attention.ts), with optional dropout on the probabilities. `N` =
 * batch * seq tokens, `H` = heads * headDim. Part of the float64 CPU reference that every WGSL kernel is
 * tested against: plain loops, written for clarity rather than speed. Arrays are row-major `Float64Array`s
 * unless stated.
 *
 * @module
 */
import { checkLength } from "./check.ts";
import { dropoutFactor, type DropoutOptions } from "./dropout.ts";

/** Shapes of multi-head self-attention over the fused QKV projection. */
export interface AttentionOptions {
  /** Sequences. */
  batch: number;
  /** Tokens per sequence. */
  seq: number;
  /** Attention heads. */
  heads: number;
  /** Width of one head. */
  headDim: number;
}

/**
 * Bidirectional multi-head attention. qkv [N, 3H]: all q heads (head h at columns h*headDim..), then all
 * k heads, then all v heads. `keyMask` [N] marks keys to attend (1) or padding (0, left out of the
 * softmax); a query whose keys are all padding gets all-zero probabilities and output. `dropout` drops
 * probabilities (finetuning): out = (probs * keep / (1 - p)) V, the mask {@linkcode dropoutKeep} over
 * the flat probs index.
 * Returns out [N, H] and probs [batch, heads, seq, seq] (before dropout, kept for backward).
 */
export function attentionForward(
  qkv: ArrayLike<number>,
  options: AttentionOptions & { keyMask?: ArrayLike<number>; dropout?: DropoutOptions },
): { out: Float64Array; probs: Float64Array } {
  const { batch, seq, heads, headDim, keyMask } = options;
  const factor = dropoutFactor(options.dropout);
  const hidden = heads * headDim;
  checkLength("attention qkv", qkv, batch * seq * 3 * hidden);
  if (keyMask) checkLength("attention keyMask", keyMask, batch * seq);
  const scale = 1 / Math.sqrt(headDim);
  const out = new Float64Array(batch * seq * hidden);
  const probs = new Float64Array(batch * heads * seq * seq);
  const row = (b: number, t: number) => (b * seq + t) * 3 * hidden;
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const q0 = h * headDim;
      const k0 = hidden + h * headDim;
      const v0 = 2 * hidden + h * headDim;
      for (let i = 0; i < seq; i++) {
        const p = probs.subarray(((b * heads + h) * seq + i) * seq, ((b * heads + h) * seq + i + 1) * seq);
        let max = -Infinity;
        for (let j = 0; j < seq; j++) {
          if (keyMask && keyMask[b * seq + j] === 0) {
            p[j] = -Infinity;
            continue;
          }
          let s = 0;
          for (let d = 0; d < headDim; d++) s += qkv[row(b, i) + q0 + d] * qkv[row(b, j) + k0 + d];
          p[j] = s * scale;
          if (p[j] > max) max = p[j];
        }
        if (max === -Infinity) {
          p.fill(0);
          continue;
        }
        let sum = 0;
        for (let j = 0; j < seq; j++) {
          p[j] = Math.exp(p[j] - max);
          sum += p[j];
        }
        for (let j = 0; j < seq; j++) p[j] /= sum;
        const o = (b * seq + i) * hidden + h * headDim;
        const pBase = ((b * heads + h) * seq + i) * seq;
        for (let j = 0; j < seq; j++) {
          const weight = p[j] * factor(pBase + j);
          if (weight === 0) continue;
          for (let d = 0; d < headDim; d++) out[o + d] += weight * qkv[row(b, j) + v0 + d];
        }
      }
    }
  }
  return { out, probs };
}

/**
 * dqkv [N, 3H] of {@linkcode attentionForward} from its saved probs (masked keys have probability 0),
 * with the forward's `dropout` if it had one.
 */
export function attentionBackward(
  dout: ArrayLike<number>,
  qkv: ArrayLike<number>,
  probs: ArrayLike<number>,
  options: AttentionOptions & { dropout?: DropoutOptions },
): Float64Array {
  const { batch, seq, heads, headDim } = options;
  const factor = dropoutFactor(options.dropout);
  const hidden = heads * headDim;
  checkLength("attentionBackward dout", dout, batch * seq * hidden);
  checkLength("attentionBackward qkv", qkv, batch * seq * 3 * hidden);
  checkLength("attentionBackward probs", probs, batch * heads * seq * seq);
  const scale = 1 / Math.sqrt(headDim);
  const dqkv = new Float64Array(batch * seq * 3 * hidden);
  const row = (b: number, t: number) => (b * seq + t) * 3 * hidden;
  const dscore = new Float64Array(seq);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const q0 = h * headDim;
      const k0 = hidden + h * headDim;
      const v0 = 2 * hidden + h * headDim;
      for (let i = 0; i < seq; i++) {
        const pBase = ((b * heads + h) * seq + i) * seq;
        const o = (b * seq + i) * hidden + h * headDim;
        // dprobs[j] = (dout_i . v_j) * keep_j / (1 - p); dscore = probs * (dprobs - sum(probs * dprobs)).
        let dot = 0;
        for (let j = 0; j < seq; j++) {
          let dp = 0;
          for (let d = 0; d < headDim; d++) dp += dout[o + d] * qkv[row(b, j) + v0 + d];
          dscore[j] = dp * factor(pBase + j);
          dot += probs[pBase + j] * dscore[j];
        }
        for (let j = 0; j < seq; j++) {
          const pj = probs[pBase + j];
          const ds = pj * (dscore[j] - dot) * scale;
          const dropped = pj * factor(pBase + j);
          for (let d = 0; d < headDim; d++) {
            dqkv[row(b, j) + v0 + d] += dropped * dout[o + d];
            dqkv[row(b, i) + q0 + d] += ds * qkv[row(b, j) + k0 + d];
            dqkv[row(b, j) + k0 + d] += ds * qkv[row(b, i) + q0 + d];
          }
        }
      }
    }
  }
  return dqkv;
}
