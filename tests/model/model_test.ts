import assert from "node:assert/strict";
import { requestGpu } from "../../src/gpu/device.ts";
import { readF32, type StorageType, writeBuffer } from "../../src/gpu/buffers.ts";
import { Kernels, submitDispatches } from "../../src/gpu/kernels.ts";
import { type ModelConfig, tiny } from "../../src/model/config.ts";
import { initParams } from "../../src/model/init.ts";
import { type ModelBatch, planModel } from "../../src/model/model.ts";
import { INITIAL_LOSS_SCALE } from "../../src/model/loss_scale.ts";
import { readLossTotals } from "../../src/model/layers/cross_entropy.ts";
import { referenceForwardBackward } from "../../src/reference/model.ts";
import { dropoutSiteCount } from "../../src/model/dropout_sites.ts";
import { microBatchDropoutSeeds } from "../../src/train/step.ts";
import { seededUniform } from "../_helpers.ts";

/** A tiny model's weights, matrices scaled up from the 0.02 init so attention is far from uniform. */
function weights(config: ModelConfig, seed: number): Float32Array<ArrayBuffer> {
  const params = initParams(config, { seed });
  const noise = seededUniform(params.length, seed + 1, 0.5, 1.5);
  return params.map((
    v,
    i,
  ) => (Math.abs(v) === 1 || v === 0 ? v * noise[i] + (v === 0 ? noise[i] - 1 : 0) : v * 8));
}

/** A micro-batch with every fourth token (and a few more) labelled, some inputs replaced by [MASK]. */
function maskedBatch(config: ModelConfig, batch: number, seq: number, seed: number): ModelBatch {
  const draws = seededUniform(batch * seq * 2, seed, 0, 1);
  const original = Uint32Array.from(
    { length: batch * seq },
    (_, i) => 5 + Math.floor(draws[i] * (config.vocabSize - 5)),
  );
  const inputIds = original.slice();
  const positions: number[] = [];
  for (let t = 0; t < batch * seq; t++) {
    if (t % 4 === 1 || draws[batch * seq + t] < 0.1) {
      positions.push(t);
      if (t % 3 !== 0) inputIds[t] = 4; // [MASK]; the rest keep their token, as BERT's 10% do
    }
  }
  const labelPositions = Uint32Array.from(positions);
  return { inputIds, labelPositions, labelIds: labelPositions.map((t) => original[t]) };
}

// Tolerances: every GPU value is an f32 computation whose rounding error, relative to the tensor's scale,
// grows with the depth of the sums (at most ~100 terms here) and the model's depth: a few 1e-6. A
// gradient tensor is compared by the relative L2 error of the whole tensor (1e-4), which a wrong index, a
// missing term or a sign error exceeds by orders of magnitude. With f16 storage every stored activation
// and weight copy is rounded to 11 significant bits (2^-11 relative each, about 5e-4) and the errors of the
// layers compound: the CPU adapter measured a loss error of 7e-5 and gradient errors up to 1.5e-3, and the
// bounds are about 3x those.
const TOLERANCES = { f32: { loss: 1e-5, grads: 1e-4 }, f16: { loss: 3e-4, grads: 5e-3 } };

/** Checks one micro-batch's loss and gradients against the reference; `dropout` > 0 drops with fixed seeds. */
async function checkAgainstReference(config: ModelConfig, storage: StorageType, dropout = 0): Promise<void> {
  const k = new Kernels(await requestGpu());
  const [batch, seq] = [3, config.maxSeqLen];
  const b = maskedBatch(config, batch, seq, 7);
  const params = weights(config, 3);
  const model = await planModel(k, config, {
    batch,
    seq,
    maxLabels: b.labelIds.length + 5,
    storage,
    dropout,
  });
  assert.equal(model.lossScale !== undefined, storage === "f16");
  writeBuffer(k.gpu, model.params, params);
  model.writeBatch(b, 1 / b.labelIds.length);
  const seeds = microBatchDropoutSeeds(5, 1, 0, dropoutSiteCount(config));
  if (dropout > 0) model.writeSeeds(seeds);
  submitDispatches(k.gpu, model.microBatch);

  const labels = new Int32Array(batch * seq).fill(-100);
  b.labelPositions.forEach((t, i) => (labels[t] = b.labelIds[i]));
  const expected = referenceForwardBackward(config, params, b.inputIds, labels, {
    batch,
    seq,
    ...(dropout > 0 && { dropout: { p: dropout, seeds: Array.from(seeds) } }),
  });
  const totals = await readLossTotals(k.gpu, model.lossTotals);
  assert.equal(totals.count, b.labelIds.length);
  const tolerance = TOLERANCES[storage];
  const lossError = Math.abs(totals.sum / totals.count - expected.loss) / expected.loss;
  assert.ok(lossError < tolerance.loss, `loss ${totals.sum / totals.count} vs ${expected.loss}`);

  // With f16 storage the gradients carry the loss scale, which the optimizer divides out.
  const scale = model.lossScale ? (await readF32(k.gpu, model.lossScale, 1))[0] : 1;
  assert.equal(scale, storage === "f16" ? INITIAL_LOSS_SCALE : 1);
  const grads = await readF32(k.gpu, model.grads);
  for (const t of model.layout.tensors) {
    let diff = 0;
    let norm = 0;
    for (let i = t.offset; i < t.offset + t.size; i++) {
      diff += (grads[i] / scale - expected.grads[i]) ** 2;
      norm += expected.grads[i] ** 2;
    }
    assert.ok(norm > 0, `${t.name}: the reference gradient is zero, the test would prove nothing`);
    const error = Math.sqrt(diff / norm);
    assert.ok(error < tolerance.grads, `${t.name}: relative error ${error}`);
  }
}

for (
  const config of [
    tiny,
    { ...tiny, ffn: "gelu-glu", positions: "learned" },
    // Two heads of 16.
    { ...tiny, heads: 2 },
  ] as ModelConfig[]
) {
  Deno.test(`the GPU model's loss and every gradient match the float64 reference (${config.ffn}, ${config.positions}, heads ${config.heads})`, async () => {
    await checkAgainstReference(config, "f32");
  });
}

const testGpu = await requestGpu();
if (!testGpu.subgroupMatrix) {
  console.log(
    `model_test: the tensor-core step test is ignored: ${testGpu.name} (${testGpu.backend}) has no subgroup ` +
      "matrices; it runs with CRAM_GPU=dawn on a GPU (see the README's Testing section)",
  );
}

Deno.test({
  name: "with f16 storage on a device with subgroup matrices, every product of the step runs on them",
  ignore: !testGpu.subgroupMatrix,
  fn: async () => {
    const k = new Kernels(await requestGpu());
    // Sizes that are multiples of 8 (the kernel's 16-byte loads): tiny's, and 16 label rows.
    const model = await planModel(k, tiny, { batch: 3, maxLabels: 16, storage: "f16" });
    const products = model.microBatch.map((d) => d.pipeline.label).filter((l) => /^matmul/.test(l));
    const matrix = "matmul_subgroup_matrix.matmul_subgroup_matrix";
    // Per layer 6 products forward (qkv, scores, probs x v, out, up, down) and 12 backward; 3 in the MLM head.
    assert.equal(products.filter((l) => l === matrix).length, 18 * tiny.layers + 3);
    assert.deepEqual(products.filter((l) => l !== matrix && l !== "matmul.matmul_split_sum"), []);
    model.destroy();
  },
});

Deno.test("with f16 storage the loss and every gradient (times the loss scale) match the float64 reference", async () => {
  await checkAgainstReference(tiny, "f16");
  await checkAgainstReference({ ...tiny, ffn: "gelu-glu", positions: "learned" }, "f16");
});

Deno.test("with pretraining dropout the loss and every gradient match the float64 reference (f32 and f16 storage)", async () => {
  await checkAgainstReference(tiny, "f32", 0.2);
  await checkAgainstReference({ ...tiny, ffn: "gelu-glu", positions: "learned" }, "f32", 0.2);
  await checkAgainstReference(tiny, "f16", 0.2);
});

Deno.test("a model planned with dropout wants its seeds; one without refuses them", async () => {
  const k = new Kernels(await requestGpu());
  const sites = dropoutSiteCount(tiny);
  const dropped = await planModel(k, tiny, { batch: 1, maxLabels: 4, dropout: 0.1 });
  assert.throws(
    () => dropped.writeSeeds(new Uint32Array(sites - 1)),
    new RegExp(`^GpuError: model: ${sites - 1} dropout seeds, the model has ${sites} sites$`),
  );
  dropped.destroy();
  const plain = await planModel(k, tiny, { batch: 1, maxLabels: 4 });
  assert.throws(() => plain.writeSeeds(new Uint32Array(sites)), /planned without dropout, it takes no seeds/);
  plain.destroy();
  await assert.rejects(
    () => planModel(k, tiny, { batch: 1, maxLabels: 4, dropout: 1 }),
    /dropout 1: expected \[0, 1\)/,
  );
});

Deno.test("f16 storage on an adapter without shader-f16 is a one-line error", async () => {
  const gpu = await requestGpu();
  const k = new Kernels({ ...gpu, name: "an old adapter", hasF16: false });
  await assert.rejects(
    () => planModel(k, tiny, { batch: 1, maxLabels: 4, storage: "f16" }),
    /^GpuError: model: f16 storage needs the adapter's shader-f16 feature, which an old adapter lacks$/,
  );
});

Deno.test("a second micro-batch adds its gradients, and a wrong batch is refused", async () => {
  const k = new Kernels(await requestGpu());
  const [batch, seq] = [2, tiny.maxSeqLen];
  const b = maskedBatch(tiny, batch, seq, 11);
  const model = await planModel(k, tiny, { batch, seq, maxLabels: b.labelIds.length });
  writeBuffer(k.gpu, model.params, weights(tiny, 5));
  model.writeBatch(b, 1 / b.labelIds.length);
  submitDispatches(k.gpu, model.microBatch);
  const once = await readF32(k.gpu, model.grads);
  submitDispatches(k.gpu, model.microBatch);
  const twice = await readF32(k.gpu, model.grads);
  let worst = 0;
  for (let i = 0; i < once.length; i++) {
    worst = Math.max(worst, Math.abs(twice[i] - 2 * once[i]) / (1e-6 + Math.abs(once[i])));
  }
  assert.ok(worst < 1e-5, `accumulated gradients differ from twice one micro-batch by ${worst}`);
  assert.throws(
    () => model.writeBatch({ ...b, inputIds: b.inputIds.subarray(1) }, 1),
    /token ids, the plan takes 2 x 16/,
  );
  const tooMany = Uint32Array.from({ length: b.labelIds.length + 1 }, (_, i) => i);
  assert.throws(() => model.writeBatch({ ...b, labelPositions: tooMany, labelIds: tooMany }, 1), /labels/);
  // The loss needs distinct positions inside the batch and ids inside the vocabulary.
  const twiceFirst = b.labelPositions.slice();
  twiceFirst[1] = twiceFirst[0];
  assert.throws(
    () => model.writeBatch({ ...b, labelPositions: twiceFirst }, 1),
    /label 1 at position \d+ with id \d+, expected distinct positions below 32 and ids below 96/,
  );
  const outside = b.labelIds.slice();
  outside[0] = tiny.vocabSize;
  assert.throws(() => model.writeBatch({ ...b, labelIds: outside }, 1), /label 0 at position \d+ with id 96/);
});
