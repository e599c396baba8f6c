/**
 * The float64 reference of the embedding sum and its backward scatter-add (kernels/embedding.wgsl,
 * src/model/layers/embedding.ts). Part of the float64 CPU reference that every WGSL kernel is tested against:
 * plain loops, written for clarity rather than speed. Arrays are row-major `Float64Array`s unless stated.
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
