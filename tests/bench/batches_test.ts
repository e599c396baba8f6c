import assert from "node:assert/strict";
import { small } from "../../src/model/config.ts";
import { zipfBatch } from "../../src/bench/batches.ts";
import { FIRST_REGULAR_ID, maxLabels } from "../../src/train/masking.ts";

Deno.test("zipfBatch draws frequent low ranks and masks as in training", () => {
  const b = zipfBatch(small, 2, 0);
  assert.equal(b.inputIds.length, 2 * small.maxSeqLen);
  assert.ok(b.labelIds.length > 0 && b.labelIds.length <= maxLabels(2, small.maxSeqLen, 0.15));
  assert.deepEqual(zipfBatch(small, 2, 0), b, "deterministic for a seed");
  const counts = new Map<number, number>();
  for (const id of b.inputIds) {
    assert.ok(id < small.vocabSize);
    if (id >= FIRST_REGULAR_ID) counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  const [mostFrequent] = [...counts].sort((a, b) => b[1] - a[1])[0];
  // Rank 0 has weight 1 / H(32763) ~ 9% of the tokens: about 23 of 256, far above any other id.
  assert.equal(mostFrequent, FIRST_REGULAR_ID);
});
