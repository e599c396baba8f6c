import assert from "node:assert/strict";
import { MASK_ID } from "../../src/data/tokenizer.ts";
import { FIRST_REGULAR_ID, maskBatch, maxLabels } from "../../src/train/masking.ts";

const V = 1000;
const options = { rate: 0.15, vocabSize: V, seed: 1 };

/** B sequences of T tokens: [CLS] at 0, [SEP] at the end, some [PAD]/[UNK], the rest regular. */
function corpus(batch: number, seqLen: number): Uint16Array {
  const tokens = new Uint16Array(batch * seqLen);
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < seqLen; t++) {
      const i = b * seqLen + t;
      if (t === 0) tokens[i] = 2;
      else if (t === seqLen - 1) tokens[i] = 3;
      else if (t % 17 === 0) tokens[i] = (b + t) % 2; // [PAD] or [UNK]
      else tokens[i] = FIRST_REGULAR_ID + ((b * 31 + t * 7) % (V - FIRST_REGULAR_ID));
    }
  }
  return tokens;
}

const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

Deno.test("masking statistics on a large batch: counts exact, 80/10/10 within 4 sd, specials never chosen", () => {
  const B = 256, T = 128;
  const tokens = corpus(B, T);
  const { inputIds, labelPositions, labelIds } = maskBatch(
    tokens,
    T,
    { epoch: 0, indices: range(B) },
    options,
  );
  assert.equal(inputIds.length, B * T);
  assert.equal(labelPositions.length, labelIds.length);

  let masked = 0, replaced = 0, kept = 0;
  const perSequence = new Array(B).fill(0);
  for (let i = 0; i < labelPositions.length; i++) {
    const p = labelPositions[i];
    if (i > 0) assert.ok(p > labelPositions[i - 1], "positions ascend");
    assert.equal(labelIds[i], tokens[p], "label is the original token");
    assert.ok(tokens[p] >= FIRST_REGULAR_ID, `special token ${tokens[p]} chosen at ${p}`);
    perSequence[Math.floor(p / T)]++;
    if (inputIds[p] === MASK_ID) masked++;
    else if (inputIds[p] === tokens[p]) kept++;
    else {
      replaced++;
      assert.ok(inputIds[p] >= FIRST_REGULAR_ID && inputIds[p] < V, `random token ${inputIds[p]}`);
    }
  }
  // Every sequence has 119 regular tokens: round(0.15 * 119) = 18 predictions each.
  const regular = [...tokens.subarray(0, T)].filter((id) => id >= FIRST_REGULAR_ID).length;
  assert.equal(regular, 119);
  for (const c of perSequence) assert.equal(c, 18);
  // Positions that were not chosen are unchanged.
  const chosen = new Set(labelPositions);
  for (let p = 0; p < B * T; p++) if (!chosen.has(p)) assert.equal(inputIds[p], tokens[p]);

  const n = labelPositions.length;
  const within = (count: number, p: number, what: string) => {
    const sd = Math.sqrt(n * p * (1 - p));
    assert.ok(Math.abs(count - n * p) < 4 * sd, `${what}: ${count} of ${n}, expected ${n * p} ± ${sd}`);
  };
  within(masked, 0.8, "[MASK]");
  // A random replacement equals the original with probability 1/995: counted as kept.
  within(replaced, 0.1 * (1 - 1 / (V - FIRST_REGULAR_ID)), "random");
  within(kept, 0.1 + 0.1 / (V - FIRST_REGULAR_ID), "kept");

  // Chosen positions are spread evenly along the sequence (first half vs second half).
  const firstHalf = [...labelPositions].filter((p) => p % T < T / 2).length;
  const regularFirstHalf = [...tokens.subarray(0, T / 2)].filter((id) => id >= FIRST_REGULAR_ID).length;
  within(firstHalf, regularFirstHalf / regular, "first half");
});

Deno.test("masks depend only on seed, epoch and sequence index", () => {
  const T = 64;
  const tokens = corpus(4, T);
  const a = maskBatch(tokens, T, { epoch: 2, indices: [10, 11, 12, 13] }, options);
  // The same sequences in another micro-batch split and order mask the same way.
  const swapped = new Uint16Array(2 * T);
  swapped.set(tokens.subarray(2 * T, 3 * T), 0);
  swapped.set(tokens.subarray(0, T), T);
  const b = maskBatch(swapped, T, { epoch: 2, indices: [12, 10] }, options);
  assert.deepEqual(b.inputIds.subarray(0, T), a.inputIds.subarray(2 * T, 3 * T));
  assert.deepEqual(b.inputIds.subarray(T, 2 * T), a.inputIds.subarray(0, T));
  // Another epoch or seed masks differently.
  const epoch3 = maskBatch(tokens, T, { epoch: 3, indices: [10, 11, 12, 13] }, options);
  const seed2 = maskBatch(tokens, T, { epoch: 2, indices: [10, 11, 12, 13] }, { ...options, seed: 2 });
  assert.notDeepEqual(epoch3.labelPositions, a.labelPositions);
  assert.notDeepEqual(seed2.labelPositions, a.labelPositions);
});

Deno.test("label count never exceeds maxLabels; sequences of specials get none", () => {
  const T = 16;
  const tokens = new Uint32Array(3 * T).fill(7);
  tokens.fill(0, T, 2 * T); // an all-[PAD] sequence
  const masked = maskBatch(tokens, T, { epoch: 0, indices: [0, 1, 2] }, { ...options, rate: 0.5 });
  assert.equal(masked.labelPositions.length, 16);
  assert.ok(masked.labelPositions.length <= maxLabels(3, T, 0.5));
  assert.ok([...masked.labelPositions].every((p) => p < T || p >= 2 * T));
  assert.equal(maxLabels(128, 128, 0.15), 128 * 19);
  // A short sequence still gets one prediction.
  const one = maskBatch(Uint16Array.from([2, 9, 9, 3]), 4, { epoch: 0, indices: [0] }, options);
  assert.equal(one.labelPositions.length, 1);
});

Deno.test("a token outside the vocabulary is a one-line error naming the sequence", () => {
  const tokens = Uint16Array.from([2, 5, 1000, 3]);
  assert.throws(
    () => maskBatch(tokens, 4, { epoch: 0, indices: [77] }, options),
    /^RangeError: token id 1000 of sequence 77 is outside the vocabulary of 1000 ids/,
  );
  assert.throws(
    () => maskBatch(tokens, 3, { epoch: 0, indices: [0] }, options),
    /4 tokens is not 1 sequences of 3/,
  );
});
