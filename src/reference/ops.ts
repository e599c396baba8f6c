/**
 * The float64 CPU reference of every op in the training step: the single source of truth that each WGSL
 * kernel is tested against. Plain loops, written for clarity rather than speed.
 *
 * All arrays are row-major `Float64Array`s unless stated; `N` = batch * seq tokens, `H` = heads * headDim.
 *
 * @module
 */
import { checkId, checkLength } from "./check.ts";

/** Shapes of the embedding sum. */
export interface EmbeddingOptions {
  /** Tokens embedded (sequences times `seq`). */
  tokens: number;
  /** Tokens per sequence: positions repeat every `seq` tokens. */
  seq: number;
  /** Width of an embedding. */
  hidden: number;
}

/** x[t] = word[ids[t]] + position[t % seq]; `position` [seq, hidden] is already scaled. */
export function embeddingForward(
  ids: ArrayLike<number>,
  word: ArrayLike<number>,
  position: ArrayLike<number>,
  options: EmbeddingOptions,
): Float64Array {
  const { tokens, seq, hidden } = options;
  checkLength("embedding ids", ids, tokens);
  checkLength("embedding position", position, seq * hidden);
  const vocab = word.length / hidden;
  const x = new Float64Array(tokens * hidden);
  for (let t = 0; t < tokens; t++) {
    const id = ids[t];
    checkId("embedding", id, t, vocab);
    const p = (t % seq) * hidden;
    for (let c = 0; c < hidden; c++) x[t * hidden + c] = word[id * hidden + c] + position[p + c];
  }
  return x;
}

/** dword [vocab, hidden]: the rows of dx scatter-added at their ids. */
export function embeddingBackward(
  dx: ArrayLike<number>,
  ids: ArrayLike<number>,
  options: { vocab: number; hidden: number; tokens: number },
): Float64Array {
  const { vocab, hidden, tokens } = options;
  checkLength("embeddingBackward dx", dx, tokens * hidden);
  checkLength("embeddingBackward ids", ids, tokens);
  const dword = new Float64Array(vocab * hidden);
  for (let t = 0; t < tokens; t++) {
    const id = ids[t];
    checkId("embeddingBackward", id, t, vocab);
    for (let c = 0; c < hidden; c++) dword[id * hidden + c] += dx[t * hidden + c];
  }
  return dword;
}

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
