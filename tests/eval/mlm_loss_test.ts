import assert from "node:assert/strict";
import { requestGpu } from "../../src/gpu/device.ts";
import { Kernels } from "../../src/gpu/kernels.ts";
import { tiny } from "../../src/model/config.ts";
import { initParams } from "../../src/model/init.ts";
import { mlmLoss, type TokenSource } from "../../src/eval/mlm_loss.ts";
import { BatchSource } from "../../src/train/batches.ts";
import { referenceForwardBackward } from "../../src/reference/model.ts";
import { seededUniform } from "../_helpers.ts";

const k = new Kernels(await requestGpu());
const seq = tiny.maxSeqLen;

/** `sequences` sequences of regular token ids (5 and up), in memory. */
function memorySource(sequences: number): TokenSource {
  const draws = seededUniform(sequences * seq, 3, 0, 1);
  const tokens = Uint16Array.from(draws, (d) => 5 + Math.floor(d * (tiny.vocabSize - 5)));
  return {
    sequences,
    seqLen: seq,
    vocabSize: tiny.vocabSize,
    read: (first, count) => Promise.resolve(tokens.slice(first * seq, (first + count) * seq)),
  };
}

Deno.test("mlmLoss is the float64 reference's mean loss over the masked tokens of the same micro-batches", async () => {
  const params = initParams(tiny, { seed: 2 }).map((v) => v * 4);
  const data = memorySource(21);
  const options = { sequences: 20, microBatch: 4, seed: 9, maskRate: 0.3 };
  const got = await mlmLoss(k, tiny, params, data, options);
  // The reference over the micro-batches the same source hands out: the sum of the per-label losses.
  const source = new BatchSource(data, { ...options, vocabSize: tiny.vocabSize });
  let sum = 0;
  let labels = 0;
  for (let b = 0; b < 5; b++) {
    const batch = await source.next();
    const targets = new Int32Array(options.microBatch * seq).fill(-100);
    batch.labelPositions.forEach((t, i) => (targets[t] = batch.labelIds[i]));
    const result = referenceForwardBackward(tiny, params, batch.inputIds, targets, {
      batch: options.microBatch,
      seq,
    });
    sum += result.loss * batch.labelIds.length;
    labels += batch.labelIds.length;
  }
  assert.equal(got.sequences, 20);
  assert.equal(got.labels, labels);
  // f32 sums over ~100 labels of losses near 4.5: relative 1e-5.
  assert.ok(Math.abs(got.loss - sum / labels) < 1e-5 * (sum / labels), `${got.loss} vs ${sum / labels}`);
});

Deno.test("mlmLoss scores whole micro-batches, and refuses data that fills none", async () => {
  const params = initParams(tiny, { seed: 2 });
  const data = memorySource(10);
  const result = await mlmLoss(k, tiny, params, data, {
    sequences: 100,
    microBatch: 4,
    seed: 1,
    maskRate: 0.15,
  });
  assert.equal(result.sequences, 8);
  await assert.rejects(
    () => mlmLoss(k, tiny, params, data, { sequences: 3, microBatch: 4, seed: 1, maskRate: 0.15 }),
    /^RangeError: mlm loss: 3 sequences do not fill one micro-batch of 4$/,
  );
});
