/**
 * Masked-language-model masking of a micro-batch on the CPU, done while the GPU runs the previous
 * step (see batches.ts), so it costs no GPU time.
 *
 * As in the original BERT data pipeline, each sequence gets an exact number of predictions:
 * round(rate * n) of its n regular tokens (at least one when n > 0), chosen uniformly; the special
 * tokens ([PAD], [UNK], [CLS], [SEP], [MASK]) are never chosen, [UNK] included since predicting
 * "unknown" teaches nothing. Of the chosen tokens 80% become [MASK], 10% a random regular token and
 * 10% stay as they are (each decided independently per token). A fixed count per sequence bounds
 * the labels of a micro-batch (`maxLabels`), so the GPU's sparse loss buffers have a size known at
 * plan time.
 *
 * Every decision is a counter-based draw keyed by (seed, epoch, sequence index, position): the masks
 * of a sequence depend on nothing else, so a resumed run masks exactly as the uninterrupted one, and
 * each epoch masks a sequence differently.
 */
import { MASK_ID, SPECIAL_TOKENS } from "../data/tokenizer.ts";
import { below, streamKey, uniform } from "./random.ts";

/** BERT's masking rate: the fraction of tokens to predict, the recipe's default. */
export const BERT_MASK_RATE = 0.15;

/** Ids below this are special tokens: [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4. */
export const FIRST_REGULAR_ID = SPECIAL_TOKENS.length;

export interface MaskingOptions {
  /** Fraction of each sequence's regular tokens to predict, in (0, 1); 0.15 in BERT. */
  rate: number;
  /** Vocabulary size: every token must be below it, random replacements are drawn below it. */
  vocabSize: number;
  /** The run's seed. */
  seed: number;
}

/** Where a micro-batch comes from: the epoch and the corpus index of each of its sequences. */
export interface SequenceOrigin {
  epoch: number;
  /** Corpus index of sequence b of the micro-batch, for b in 0..B-1. */
  indices: ArrayLike<number>;
}

/** A masked micro-batch, ready to upload. */
export interface MaskedBatch {
  /** Token ids after masking, [B*T] row-major. */
  inputIds: Uint32Array<ArrayBuffer>;
  /** Flat positions b*T+t of the tokens to predict, ascending. */
  labelPositions: Uint32Array<ArrayBuffer>;
  /** The original token at each label position. */
  labelIds: Uint32Array<ArrayBuffer>;
}

/** Predictions per sequence at most, for sequences of `seqLen` tokens. */
function maxPerSequence(seqLen: number, rate: number): number {
  return Math.max(1, Math.round(rate * seqLen));
}

/** The most labels a micro-batch of `batch` sequences of `seqLen` tokens can have at `rate`. */
export function maxLabels(batch: number, seqLen: number, rate: number): number {
  return batch * maxPerSequence(seqLen, rate);
}

/**
 * Masks `tokens` ([B*T], B = origin.indices.length, T = seqLen). Throws a one-line error when a
 * token id is not below `vocabSize` (shards made with another vocabulary).
 */
export function maskBatch(
  tokens: Uint16Array | Uint32Array,
  seqLen: number,
  origin: SequenceOrigin,
  options: MaskingOptions,
): MaskedBatch {
  const { rate, vocabSize, seed } = options;
  const batch = origin.indices.length;
  if (tokens.length !== batch * seqLen) {
    throw new RangeError(`masking: ${tokens.length} tokens is not ${batch} sequences of ${seqLen}`);
  }
  const inputIds = Uint32Array.from(tokens);
  const positions = new Uint32Array(maxLabels(batch, seqLen, rate));
  const labels = new Uint32Array(positions.length);
  const regularCount = vocabSize - FIRST_REGULAR_ID;
  let count = 0;
  for (let b = 0; b < batch; b++) {
    const row = b * seqLen;
    let regular = 0;
    for (let t = 0; t < seqLen; t++) {
      const id = tokens[row + t];
      if (id >= vocabSize) {
        throw new RangeError(
          `token id ${id} of sequence ${origin.indices[b]} is outside the vocabulary of ${vocabSize} ids ` +
            `(were the shards made with another vocabulary?)`,
        );
      }
      if (id >= FIRST_REGULAR_ID) regular++;
    }
    if (regular === 0) continue;
    const key = streamKey(seed, origin.epoch, origin.indices[b]);
    // Selection sampling (Knuth's algorithm S): exactly `needed` of the `regular` candidates, in
    // position order, each subset equally likely.
    let needed = Math.min(regular, maxPerSequence(regular, rate));
    let left = regular;
    for (let t = 0; t < seqLen && needed > 0; t++) {
      const id = tokens[row + t];
      if (id < FIRST_REGULAR_ID) continue;
      if (uniform(key, t) * left < needed) {
        positions[count] = row + t;
        labels[count] = id;
        count++;
        needed--;
        const kind = uniform(key, seqLen + t);
        if (kind < 0.8) inputIds[row + t] = MASK_ID;
        else if (kind < 0.9) inputIds[row + t] = FIRST_REGULAR_ID + below(key, seqLen + t, regularCount);
      }
      left--;
    }
  }
  return { inputIds, labelPositions: positions.slice(0, count), labelIds: labels.slice(0, count) };
}
