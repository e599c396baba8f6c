/**
 * GLUE examples as model inputs: `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]`, at most 128 tokens, then
 * right-padded batches with an attention mask.
 *
 * A pair too long for the limit loses tokens from the end of its longer sentence, one at a time (from b
 * on a tie), as Hugging Face's `longest_first` truncation, so both sentences keep as much as they can.
 *
 * @module
 */
import { CLS_ID, PAD_ID, SEP_ID, type Tokenizer } from "../data/tokenizer.ts";

/** The recipe's sequence limit for finetuning, special tokens included. */
export const MAX_LENGTH = 128;

/** A padded batch of token ids and its attention mask, row-major [batch, seq]. */
export interface TokenBatch {
  batch: number;
  seq: number;
  inputIds: Int32Array;
  /** 1 for a real token, 0 for padding. */
  attentionMask: Int32Array;
}

/** The ids of one example with its special tokens, truncated to `maxLength`. */
export function encodeExample(
  tokenizer: Pick<Tokenizer, "encode">,
  example: { a: string; b?: string },
  maxLength = MAX_LENGTH,
): number[] {
  const a = tokenizer.encode(example.a);
  if (example.b === undefined) {
    if (maxLength < 2) throw new RangeError(`maxLength must be >= 2 for one sentence, got ${maxLength}`);
    return [CLS_ID, ...a.slice(0, maxLength - 2), SEP_ID];
  }
  if (maxLength < 3) throw new RangeError(`maxLength must be >= 3 for a pair, got ${maxLength}`);
  const b = tokenizer.encode(example.b);
  const [keepA, keepB] = longestFirst(a.length, b.length, maxLength - 3);
  return [CLS_ID, ...a.slice(0, keepA), SEP_ID, ...b.slice(0, keepB), SEP_ID];
}

/**
 * How many tokens of each sentence stay within `budget` when tokens are removed one at a time from the
 * longer one (from b on a tie).
 */
export function longestFirst(lengthA: number, lengthB: number, budget: number): [number, number] {
  let a = lengthA;
  let b = lengthB;
  while (a + b > budget) {
    if (a > b) a--;
    else b--;
  }
  return [a, b];
}

/** Right-pads `sequences` with [PAD] to `seq` (default: the longest) and marks the real tokens. */
export function padBatch(sequences: readonly (readonly number[])[], seq?: number): TokenBatch {
  const longest = Math.max(0, ...sequences.map((s) => s.length));
  const width = seq ?? longest;
  if (longest > width) throw new RangeError(`a sequence of ${longest} tokens does not fit seq ${width}`);
  const inputIds = new Int32Array(sequences.length * width).fill(PAD_ID);
  const attentionMask = new Int32Array(sequences.length * width);
  sequences.forEach((ids, row) => {
    inputIds.set(ids, row * width);
    attentionMask.fill(1, row * width, row * width + ids.length);
  });
  return { batch: sequences.length, seq: width, inputIds, attentionMask };
}
