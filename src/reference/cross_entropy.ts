/**
 * The float64 reference of the mean softmax cross-entropy and its gradient (kernels/cross_entropy.wgsl,
 * src/model/layers/cross_entropy.ts). Part of the float64 CPU reference that every WGSL kernel is tested
 * against: plain loops, written for clarity rather than speed. Arrays are row-major `Float64Array`s unless
 * stated.
 *
 * @module
 */
import { checkId, checkLength } from "./check.ts";

/** Mean over rows of -log softmax(logits)[label], max-subtracted; dlogits = (softmax - onehot) / rows. */
export function crossEntropy(
  logits: ArrayLike<number>,
  labels: ArrayLike<number>,
  options: { rows: number; vocab: number },
): { loss: number; dlogits: Float64Array } {
  const { rows, vocab } = options;
  checkLength("crossEntropy logits", logits, rows * vocab);
  checkLength("crossEntropy labels", labels, rows);
  const dlogits = new Float64Array(rows * vocab);
  let loss = 0;
  for (let r = 0; r < rows; r++) {
    const label = labels[r];
    checkId("crossEntropy label", label, r, vocab);
    const base = r * vocab;
    let max = -Infinity;
    for (let c = 0; c < vocab; c++) max = Math.max(max, logits[base + c]);
    let sum = 0;
    for (let c = 0; c < vocab; c++) sum += Math.exp(logits[base + c] - max);
    loss += Math.log(sum) + max - logits[base + label];
    for (let c = 0; c < vocab; c++) dlogits[base + c] = Math.exp(logits[base + c] - max) / sum / rows;
    dlogits[base + label] -= 1 / rows;
  }
  return { loss: loss / rows, dlogits };
}
