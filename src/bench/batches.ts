/**
 * The benchmarks' input: micro-batches of Zipf-distributed token ids (as natural text's are), masked as
 * in training.
 *
 * @module
 */
import type { ModelConfig } from "../model/config.ts";
import type { ModelBatch } from "../model/model.ts";
import { BERT_MASK_RATE, FIRST_REGULAR_ID, maskBatch } from "../train/masking.ts";
import { streamKey, uniform } from "../train/random.ts";

/** A micro-batch of Zipf-distributed ids (rank r drawn with weight 1/(r+1)), masked at 15% as in training. */
export function zipfBatch(config: ModelConfig, microBatch: number, seed: number): ModelBatch {
  const seq = config.maxSeqLen;
  const regular = config.vocabSize - FIRST_REGULAR_ID;
  const cumulative = new Float64Array(regular);
  let total = 0;
  for (let r = 0; r < regular; r++) cumulative[r] = total += 1 / (r + 1);
  const key = streamKey(seed, 0x21bf);
  const tokens = new Uint32Array(microBatch * seq);
  for (let t = 0; t < tokens.length; t++) {
    const target = uniform(key, t) * total;
    let lo = 0;
    let hi = regular - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid] > target) hi = mid;
      else lo = mid + 1;
    }
    tokens[t] = FIRST_REGULAR_ID + lo;
  }
  const indices = Array.from({ length: microBatch }, (_, b) => b);
  return maskBatch(tokens, seq, { epoch: 0, indices }, {
    rate: BERT_MASK_RATE,
    vocabSize: config.vocabSize,
    seed,
  });
}
