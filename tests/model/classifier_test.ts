import assert from "node:assert/strict";
import { requestGpu } from "../../src/gpu/device.ts";
import { readF32, writeBuffer } from "../../src/gpu/buffers.ts";
import { Kernels, submitDispatches } from "../../src/gpu/kernels.ts";
import { type ModelConfig, tiny } from "../../src/model/config.ts";
import { dropoutSiteCount } from "../../src/model/dropout_sites.ts";
import { initParams } from "../../src/model/init.ts";
import {
  type ClassifierBatch,
  classifierLayout,
  joinClassifierParams,
  planClassifier,
  splitClassifierParams,
} from "../../src/model/classifier.ts";
import { readLossTotals } from "../../src/model/layers/cross_entropy.ts";
import { INITIAL_LOSS_SCALE, readLossScale, writeLossScale } from "../../src/model/loss_scale.ts";
import { paramLayout } from "../../src/model/params.ts";
import { headLayout } from "../../src/model/head_layout.ts";
import { referenceClassifierLoss, referenceClassify } from "../../src/reference/classifier.ts";
import { seededUniform } from "../_helpers.ts";

const k = new Kernels(await requestGpu());

/** Encoder weights with matrices scaled up from the 0.02 init (attention far from uniform), and a head. */
function weights(config: ModelConfig, labels: number, seed: number) {
  const params = initParams(config, { seed });
  const noise = seededUniform(params.length, seed + 1, 0.5, 1.5);
  const encoder = params.map((
    v,
    i,
  ) => (Math.abs(v) === 1 || v === 0 ? v * noise[i] + (v === 0 ? noise[i] - 1 : 0) : v * 8));
  const head = seededUniform(headLayout(config, labels).totalSize, seed + 2, -0.1, 0.1);
  return { encoder, head };
}

/**
 * [CLS] tokens [SEP] of each length (the tokens a function of the length alone), right-padded to `seq`, as
 * a batch of `rows` (the rest padding).
 */
function batchOf(lengths: number[], rows: number, seq: number, targets?: number[]): ClassifierBatch {
  const inputIds = new Uint32Array(rows * seq);
  const keyMask = new Uint32Array(rows * seq);
  lengths.forEach((length, r) => {
    for (let t = 0; t < length; t++) {
      inputIds[r * seq + t] = t === 0
        ? 2
        : t === length - 1
        ? 3
        : 5 + ((length * 31 + t * 17) % (tiny.vocabSize - 5));
      keyMask[r * seq + t] = 1;
    }
  });
  return { seq, inputIds, keyMask, count: lengths.length, targets: targets && Float32Array.from(targets) };
}

// Tolerances as in model_test.ts: f32 rounding relative to each tensor's scale stays at a few 1e-6 through
// sums of at most ~100 terms and two layers; a gradient tensor is compared by its relative L2 error
// (1e-4), which a wrong index, a missing term or a wrong mask exceeds by orders of magnitude. f16 storage
// rounds every stored activation to 11 significant bits; model_test.ts's bounds for it hold here too.
const TOLERANCES = { f32: { loss: 1e-5, grads: 1e-4 }, f16: { loss: 3e-4, grads: 5e-3 } };
const CASES = [
  [3, "f32", "cls"],
  [1, "f32", "cls"],
  [3, "f16", "cls"],
  [1, "f16", "cls"],
  [3, "f32", "mean"],
  [1, "f32", "mean"],
  [3, "f16", "mean"],
] as const;
for (const [labels, storage, pooling] of CASES) {
  Deno.test({
    name:
      `the GPU classifier's loss and every gradient match the float64 reference, dropout and padding on (${
        labels === 1 ? "regression" : "3 labels"
      }, ${storage} storage, ${pooling} pooling)`,
    ignore: storage === "f16" && !k.gpu.hasF16,
  }, async () => {
    const config: ModelConfig = labels === 1 ? { ...tiny, ffn: "gelu-glu", positions: "learned" } : tiny;
    const { encoder, head } = weights(config, labels, 3);
    const plan = await planClassifier(k, config, {
      batch: 3,
      seqs: [8, 16],
      labels,
      dropout: 0.2,
      storage,
      pooling,
    });
    assert.equal(plan.lossScale !== undefined, storage === "f16");
    // The plan starts at GradScaler's 2^16, which the optimizer lowers on overflow: the squared error's
    // gradients at these inflated weights overflow f16 there, so the comparison runs at 2^10.
    const scale = storage === "f16" ? 1024 : 1;
    if (plan.lossScale) {
      assert.equal((await readLossScale(k.gpu, plan.lossScale)).scale, INITIAL_LOSS_SCALE);
      writeLossScale(k.gpu, plan.lossScale, scale);
    }
    writeBuffer(k.gpu, plan.params, joinClassifierParams(config, labels, encoder, head));
    const seeds = Uint32Array.from(
      { length: dropoutSiteCount(config) },
      (_, i) => 0x9e3779b9 * (i + 1) >>> 0,
    );
    plan.writeSeeds(seeds);
    // Two real examples in a plan of three rows, padded to 16 tokens.
    const targets = labels === 1 ? [3.5, 0.75] : [2, 0];
    const b = batchOf([11, 6], 3, 16, targets);
    plan.writeBatch(b);
    submitDispatches(k.gpu, plan.train(16));

    const seq = 16;
    const rows = b.count;
    const expected = referenceClassifierLoss(
      config,
      encoder,
      head,
      labels,
      b.inputIds.subarray(0, rows * seq),
      targets,
      { batch: rows, seq, keyMask: b.keyMask.subarray(0, rows * seq), dropout: { p: 0.2, seeds }, pooling },
    );
    const totals = await readLossTotals(k.gpu, plan.lossTotals);
    assert.equal(totals.count, rows);
    const tolerance = TOLERANCES[storage];
    assert.ok(
      Math.abs(totals.sum / rows - expected.loss) < tolerance.loss * expected.loss,
      `loss ${totals.sum / rows} vs ${expected.loss}`,
    );
    // With f16 storage the gradients carry the loss scale, which the optimizer divides out.
    const grads = splitClassifierParams(
      config,
      labels,
      (await readF32(k.gpu, plan.grads)).map((g) => g / scale),
    );
    const compare = (name: string, got: Float32Array, want: Float64Array) => {
      let diff = 0;
      let norm = 0;
      for (let i = 0; i < want.length; i++) {
        diff += (got[i] - want[i]) ** 2;
        norm += want[i] ** 2;
      }
      assert.ok(norm > 0, `${name}: the reference gradient is zero, the test would prove nothing`);
      const error = Math.sqrt(diff / norm);
      assert.ok(error < tolerance.grads, `${name}: relative error ${error}`);
    };
    for (const t of paramLayout(config).tensors) {
      compare(
        t.name,
        grads.params.subarray(t.offset, t.offset + t.size),
        expected.grads.subarray(t.offset, t.offset + t.size),
      );
    }
    for (const t of headLayout(config, labels).tensors) {
      compare(
        t.name,
        grads.head.subarray(t.offset, t.offset + t.size),
        expected.headGrads.subarray(t.offset, t.offset + t.size),
      );
    }
  });
}

for (const pooling of ["cls", "mean"] as const) {
  Deno.test(`padding does not change the GPU classifier's logits (dropout off, ${pooling} pooling)`, async () => {
    const labels = 2;
    const { encoder, head } = weights(tiny, labels, 5);
    const plan = await planClassifier(k, tiny, { batch: 3, seqs: [8, 16], labels, dropout: 0.1, pooling });
    writeBuffer(k.gpu, plan.params, joinClassifierParams(tiny, labels, encoder, head));
    const lengths = [8, 5, 3];
    const logitsAt = async (seq: number) => {
      plan.writeBatch(batchOf(lengths, 3, seq));
      submitDispatches(k.gpu, plan.infer(seq));
      return await readF32(k.gpu, plan.logits);
    };
    assert.equal(plan.seqFor(8), 8);
    assert.equal(plan.seqFor(9), 16);
    const short = await logitsAt(8);
    const long = await logitsAt(16);
    // Padded keys get probability exactly 0, so only the summation order differs between the two lengths.
    let worst = 0;
    for (let i = 0; i < short.length; i++) worst = Math.max(worst, Math.abs(short[i] - long[i]));
    assert.ok(worst < 1e-5, `seq 8 vs seq 16 logits differ by ${worst}`);
    assert.ok(Math.max(...long.map(Math.abs)) > 0.05, "logits too small to be a meaningful check");
    // Each row equals its example alone and unpadded in the float64 reference.
    for (const [r, length] of lengths.entries()) {
      const ids = batchOf([length], 1, length).inputIds;
      const alone = referenceClassify(tiny, encoder, head, labels, ids, { batch: 1, seq: length, pooling });
      for (let c = 0; c < labels; c++) {
        assert.ok(
          Math.abs(long[r * labels + c] - alone[c]) < 1e-5,
          `row ${r}: ${long[r * labels + c]} vs ${alone[c]}`,
        );
      }
    }
  });
}

Deno.test("classifier layout: the encoder's tensors at their own offsets, then the head; join and split invert", () => {
  const layout = classifierLayout(tiny, 3);
  const encoder = paramLayout(tiny);
  assert.deepEqual(layout.tensors.slice(0, encoder.tensors.length), encoder.tensors);
  const headTensors = layout.tensors.slice(encoder.tensors.length);
  assert.deepEqual(headTensors.map((t) => [t.name, t.decay]), [
    ["head.dense.weight", true],
    ["head.dense.bias", false],
    ["head.out.weight", true],
    ["head.out.bias", false],
  ]);
  assert.ok(headTensors.every((t) => t.offset % 64 === 0 && t.offset >= encoder.totalSize));
  const { encoder: params, head } = weights(tiny, 3, 9);
  const split = splitClassifierParams(tiny, 3, joinClassifierParams(tiny, 3, params, head));
  assert.deepEqual(split.params, params);
  assert.deepEqual(split.head, head);
});

Deno.test("the classifier refuses a length it did not plan, a bad count and the wrong number of seeds", async () => {
  const plan = await planClassifier(k, tiny, { batch: 2, seqs: [16], labels: 2, dropout: 0.1 });
  assert.throws(() => plan.train(8), /no plan for seq 8, planned \[16\]/);
  assert.throws(() => plan.seqFor(17), /17 tokens exceed the longest plan, 16/);
  assert.throws(
    () => plan.writeBatch({ ...batchOf([4], 2, 16), count: 3 }),
    /3 examples, the plan holds 1..2/,
  );
  assert.throws(() => plan.writeSeeds(new Uint32Array(2)), /2 dropout seeds, the model has 8 sites/);
  assert.throws(
    () => plan.writeBatch({ ...batchOf([4], 2, 16), keyMask: new Uint32Array(3) }),
    /a key mask of 32 values is needed, got 3/,
  );
  assert.throws(
    () => plan.writeBatch(batchOf([4, 5], 2, 16, [1, 2])),
    /targets\[1\] = 2, expected a label 0..1/,
  );
  assert.throws(() => plan.writeBatch(batchOf([4], 2, 16, [0.5])), /targets\[0\] = 0.5, expected a label/);
});
