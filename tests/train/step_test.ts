import assert from "node:assert/strict";
import { requestGpu } from "../../src/gpu/device.ts";
import { readF32, writeBuffer } from "../../src/gpu/buffers.ts";
import { Kernels } from "../../src/gpu/kernels.ts";
import { tiny } from "../../src/model/config.ts";
import { initParams } from "../../src/model/init.ts";
import { zipfBatch } from "../../src/bench/batches.ts";
import { maxLabels } from "../../src/train/masking.ts";
import { MAX_GRAD_NORM, microBatchDropoutSeeds, planTrainer } from "../../src/train/step.ts";
import { dropoutSiteCount } from "../../src/model/dropout_sites.ts";
import type { ModelBatch } from "../../src/model/model.ts";
import { paramLayout } from "../../src/model/params.ts";
import { referenceForwardBackward } from "../../src/reference/model.ts";
import { adamwStep, clipFactor, globalNorm } from "../../src/reference/optimizer.ts";

const microBatch = 2;
const seq = tiny.maxSeqLen;

/** The parameters and stats after `steps` steps of two micro-batches each, paced or not, with dropout or not. */
async function train(paced: boolean, steps: number, dropout = { p: 0, seed: 0 }) {
  const k = new Kernels(await requestGpu());
  const trainer = await planTrainer(
    k,
    tiny,
    { batch: microBatch, seq, maxLabels: maxLabels(microBatch, seq, 0.15), dropout: dropout.p },
    { paced, seed: dropout.seed },
  );
  writeBuffer(k.gpu, trainer.model.params, initParams(tiny, { seed: 4 }));
  const batches = [0, 1, 2, 3].map((i) => zipfBatch(tiny, microBatch, 20 + i));
  for (let i = 0; i < steps; i++) await trainer.step(batches.slice((i % 2) * 2, (i % 2) * 2 + 2), 1e-3);
  const stats = await trainer.readStats();
  const params = await readF32(k.gpu, trainer.model.params);
  trainer.model.destroy();
  return { stats, params };
}

Deno.test("a paced trainer (sleep, then a marker map: Dawn's way) computes what the unpaced one does", async () => {
  const steps = 6; // more than the two in flight, so the paced waits run and time themselves
  const unpaced = await train(false, steps);
  const paced = await train(true, steps);
  assert.ok(Number.isFinite(unpaced.stats.loss) && unpaced.stats.labels > 0);
  assert.deepEqual(paced.stats, unpaced.stats);
  assert.deepEqual(paced.params, unpaced.params);
});

Deno.test("pretraining dropout: the same seed draws the same masks, another seed others", async () => {
  const once = await train(false, 3, { p: 0.1, seed: 7 });
  const again = await train(false, 3, { p: 0.1, seed: 7 });
  const other = await train(false, 3, { p: 0.1, seed: 8 });
  const none = await train(false, 3);
  assert.deepEqual(again.params, once.params);
  assert.notDeepEqual(other.params, once.params);
  assert.notDeepEqual(none.params, once.params);
  // Each micro-batch of each step has its own masks: every coordinate changes the seeds.
  const sites = dropoutSiteCount(tiny);
  const seeds = [[7, 1, 0], [7, 1, 1], [7, 2, 0], [8, 1, 0]].map(([seed, step, micro]) =>
    Array.from(microBatchDropoutSeeds(seed, step, micro, sites)).join()
  );
  assert.equal(new Set(seeds).size, seeds.length);
  assert.deepEqual(microBatchDropoutSeeds(7, 1, 0, sites), microBatchDropoutSeeds(7, 1, 0, sites));
});

/** The float64 reference of `steps` optimizer steps: averaged micro-batch gradients, clipping, AdamW. */
function referenceSteps(params0: Float32Array, stepBatches: ModelBatch[][], lr: number) {
  const layout = paramLayout(tiny);
  const params = Float64Array.from(params0);
  const m = new Float64Array(params.length);
  const v = new Float64Array(params.length);
  let norm = 0;
  stepBatches.forEach((micro, s) => {
    const grads = new Float64Array(params.length);
    for (const b of micro) {
      const labels = new Int32Array(microBatch * seq).fill(-100);
      b.labelPositions.forEach((t, i) => (labels[t] = b.labelIds[i]));
      const result = referenceForwardBackward(tiny, params, b.inputIds, labels, { batch: microBatch, seq });
      // The step averages its micro-batches (each already a mean over its labels).
      result.grads.forEach((g, i) => (grads[i] += g / micro.length));
    }
    norm = globalNorm([grads]);
    const clip = clipFactor(norm, MAX_GRAD_NORM);
    for (const t of layout.tensors) {
      const range = (a: Float64Array) => a.subarray(t.offset, t.offset + t.size);
      adamwStep(range(params), range(grads).map((g) => g * clip), range(m), range(v), {
        lr,
        beta1: 0.9,
        beta2: 0.98,
        eps: 1e-12,
        weightDecay: t.decay ? 0.01 : 0,
        step: s + 1,
      });
    }
  });
  return { params, m, v, norm };
}

/** The relative L2 distance between two vectors. */
function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let diff = 0;
  let size = 0;
  for (let i = 0; i < expected.length; i++) {
    diff += (actual[i] - expected[i]) ** 2;
    size += expected[i] ** 2;
  }
  return Math.sqrt(diff / size);
}

Deno.test("two steps of two micro-batches each match the float64 reference: averaging, clipping, AdamW", async () => {
  const k = new Kernels(await requestGpu());
  const trainer = await planTrainer(k, tiny, {
    batch: microBatch,
    seq,
    maxLabels: maxLabels(microBatch, seq, 0.15),
  });
  const params0 = initParams(tiny, { seed: 6 });
  writeBuffer(k.gpu, trainer.model.params, params0 as Float32Array<ArrayBuffer>);
  const stepBatches = [[40, 41], [42, 43]].map((seeds) => seeds.map((s) => zipfBatch(tiny, microBatch, s)));
  const lr = 1e-3;
  for (const micro of stepBatches) await trainer.step(micro, lr);
  const stats = await trainer.readStats();
  const expected = referenceSteps(params0, stepBatches, lr);
  // Clipping is active here (norm about 2 > 0.5), and AdamW's update is blind to the gradients' scale, so
  // the norm the step reports is what tells averaged micro-batches from summed ones (twice the norm).
  assert.ok(expected.norm > MAX_GRAD_NORM, `norm ${expected.norm}: the data should make clipping act`);
  assert.ok(Math.abs(stats.gradNorm - expected.norm) / expected.norm < 1e-4, `norm ${stats.gradNorm}`);
  const [params, m, v] = await Promise.all(
    [trainer.model.params, trainer.m, trainer.v].map((b) => readF32(k.gpu, b)),
  );
  assert.ok(relativeError(m, expected.m) < 1e-4, `m: ${relativeError(m, expected.m)}`);
  assert.ok(relativeError(v, expected.v) < 1e-4, `v: ${relativeError(v, expected.v)}`);
  const moved = Float64Array.from(params, (p, i) => p - params0[i]);
  const expectedMoved = expected.params.map((p, i) => p - params0[i]);
  assert.ok(relativeError(moved, expectedMoved) < 1e-3, `update: ${relativeError(moved, expectedMoved)}`);
  trainer.model.destroy();
});
