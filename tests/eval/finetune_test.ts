import assert from "node:assert/strict";
import { requestGpu } from "../../src/gpu/device.ts";
import { Kernels } from "../../src/gpu/kernels.ts";
import { type ModelConfig, tiny } from "../../src/model/config.ts";
import { initHead, initParams } from "../../src/model/init.ts";
import { joinClassifierParams, splitClassifierParams } from "../../src/model/classifier.ts";
import { referenceClassify } from "../../src/reference/classifier.ts";
import { planFinetuner } from "../../src/train/finetuner.ts";
import {
  type EncodedExample,
  finetune,
  FINETUNE_DEFAULTS,
  finetuneLearningRate,
  type FinetuneProgress,
  paddedBatch,
  predict,
  sequenceBuckets,
} from "../../src/eval/finetune.ts";

Deno.test("the defaults are the recipe's", () => {
  assert.deepEqual(
    { ...FINETUNE_DEFAULTS },
    {
      epochs: 5,
      batch: 16,
      lr: 4e-5,
      warmup: 0.1,
      beta1: 0.9,
      beta2: 0.98,
      eps: 1e-6,
      weightDecay: 0,
      dropout: 0.1,
      pooling: "cls",
      seed: 0,
      logEvery: 100,
    },
  );
});

Deno.test("the learning rate warms up linearly over 10% of the steps, then follows a cosine to zero", () => {
  const options = { lr: 2, warmup: 0.1 };
  const lr = (step: number) => finetuneLearningRate(step, 100, options);
  assert.equal(lr(0), 0);
  assert.equal(lr(5), 1);
  assert.equal(lr(10), 2);
  assert.ok(Math.abs(lr(55) - 1) < 1e-12, "half way through the decay: half the peak");
  assert.ok(lr(99) > 0 && lr(99) < 0.002);
  assert.ok(Math.abs(lr(100)) < 1e-12);
  for (let s = 10; s < 100; s++) assert.ok(lr(s + 1) <= lr(s), `not decreasing at ${s}`);
  // No warmup: the first step has the peak.
  assert.equal(finetuneLearningRate(0, 10, { lr: 3, warmup: 0 }), 3);
});

Deno.test("sequence buckets double from 16 and end at the longest length", () => {
  assert.deepEqual(sequenceBuckets(128), [16, 32, 64, 128]);
  assert.deepEqual(sequenceBuckets(100), [16, 32, 64, 100]);
  assert.deepEqual(sequenceBuckets(16), [16]);
  assert.deepEqual(sequenceBuckets(8), [8]);
});

Deno.test("paddedBatch right-pads with [PAD], masks the padding and keeps the targets in row order", () => {
  const examples = [{ ids: [2, 7, 3], target: 1 }, { ids: [2, 8, 9, 3], target: 0 }, {
    ids: [2, 3],
    target: 1,
  }];
  const b = paddedBatch(examples, [1, 2], 3, 5, true);
  assert.deepEqual([...b.inputIds], [2, 8, 9, 3, 0, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...b.keyMask], [1, 1, 1, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...b.targets!], [0, 1]);
  assert.equal(b.count, 2);
  assert.equal(paddedBatch(examples, [0], 1, 3, false).targets, undefined);
  assert.throws(() => paddedBatch(examples, [1], 1, 3, true), /4 tokens does not fit seq 3/);
  assert.throws(() => paddedBatch(examples, [0, 1], 1, 4, true), /2 examples do not fit 1 rows/);
});

/** Sequences whose label is their first token after [CLS], 10 or 11: learnable by a tiny model in a few epochs. */
function synthetic(count: number, seed: number): EncodedExample[] {
  return Array.from({ length: count }, (_, i) => {
    const length = 3 + ((i * 7 + seed) % 22); // 3..24 tokens: both planned lengths (16, 32)
    const body = Array.from({ length: length - 2 }, (_, t) => 11 + ((i * 31 + t * 17 + seed) % 80));
    const target = i % 2;
    body[0] = 10 + target;
    return { ids: [2, ...body, 3], target };
  });
}

Deno.test("finetune lowers the training loss, reports each epoch, and predict returns logits in example order", async () => {
  const config: ModelConfig = { ...tiny, maxSeqLen: 32 };
  const k = new Kernels(await requestGpu());
  // From random weights a tiny model needs a few epochs before attention carries the label to [CLS].
  const options = { ...FINETUNE_DEFAULTS, epochs: 12, batch: 8, lr: 3e-3, logEvery: 3, seed: 7 };
  const finetuner = await planFinetuner(
    k,
    config,
    { batch: options.batch, seqs: sequenceBuckets(config.maxSeqLen), labels: 2, dropout: options.dropout },
    options,
  );
  const start = joinClassifierParams(
    config,
    2,
    initParams(config, { seed: 1 }),
    initHead(config, 2, { seed: 2 }),
  );
  const train = synthetic(36, 0); // 5 steps per epoch, the last of 4 examples
  const reports: FinetuneProgress[] = [];
  await finetune(finetuner, start, train, options, { progress: (p) => reports.push(p) });
  const epochs = reports.filter((r) => r.endOfEpoch);
  const expectedEpochs = Array.from({ length: 12 }, (_, e) => [e + 1, 5 * (e + 1)]);
  assert.deepEqual(epochs.map((r) => [r.epoch, r.step]), expectedEpochs);
  assert.ok(reports.some((r) => !r.endOfEpoch), "no report within an epoch");
  assert.ok(reports.every((r) => r.steps === 60 && r.skipped === 0));
  const first = epochs[0].epochLoss;
  const last = epochs[epochs.length - 1].epochLoss;
  assert.ok(last < 0.7 * first, `training loss went from ${first} to ${last}`);

  const dev = synthetic(19, 3);
  const logits = await predict(finetuner, dev);
  const { params, head } = splitClassifierParams(config, 2, await finetuner.readParams());
  for (const [i, example] of dev.entries()) {
    const expected = referenceClassify(config, params, head, 2, example.ids, {
      batch: 1,
      seq: example.ids.length,
    });
    for (let c = 0; c < 2; c++) {
      // f32 against float64 through two layers: a few 1e-6 (see classifier_test.ts).
      assert.ok(
        Math.abs(logits[2 * i + c] - expected[c]) < 2e-5,
        `example ${i}: ${logits[2 * i + c]} vs ${expected[c]}`,
      );
    }
  }
});
