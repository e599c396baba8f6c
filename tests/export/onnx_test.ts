/**
 * The exported ONNX models, run by onnxruntime-web, against the float64 reference: every logit within
 * 1e-4, with padding in the batch, and padding must not change the logits of the real tokens.
 */
import assert from "node:assert/strict";
import { type ModelConfig, tiny } from "../../src/model/config.ts";
import { initParams } from "../../src/model/init.ts";
import { paramLayout, paramView } from "../../src/model/params.ts";
import { exportClassifierOnnx, exportMaskedLmOnnx } from "../../src/export/onnx.ts";
import { padBatch, type TokenBatch } from "../../src/eval/features.ts";
import { loadOnnx } from "../../src/eval/onnx_runtime.ts";
import { CLS_ID, SEP_ID } from "../../src/data/tokenizer.ts";
import { headLayout, type Pooling } from "../../src/model/head_layout.ts";
import { referenceClassify } from "../../src/reference/classifier.ts";
import { referenceEncode } from "../../src/reference/model.ts";
import { matmul } from "../../src/reference/matmul.ts";
import { randomArray } from "../reference/gradcheck.ts";

const TOLERANCE = 1e-4;
const LENGTHS = [10, 6, 3];
const SEQ = 10;

/** Seeded params with every tensor perturbed, so LayerNorm weights and biases are not just 1 and 0. */
function testParams(config: ModelConfig, seed: number): Float32Array {
  const params = initParams(config, { seed });
  const noise = randomArray(params.length, seed + 1, 0.1);
  return params.map((v, i) => v + noise[i]);
}

/** [CLS] random tokens [SEP] of each length, alone and right-padded to SEQ with [PAD]. */
function paddedBatch(vocab: number): { padded: TokenBatch; rows: number[][] } {
  const rows = LENGTHS.map((length, r) => {
    const body = Array.from(
      randomArray(length - 2, 100 + r),
      (u) => 5 + Math.floor((u + 1) / 2 * (vocab - 5)),
    );
    return [CLS_ID, ...body, SEP_ID];
  });
  return { padded: padBatch(rows, SEQ), rows };
}

function maxDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

async function checkClassifier(
  config: ModelConfig,
  labels: number,
  seed: number,
  pooling: Pooling = "cls",
): Promise<void> {
  const params = testParams(config, seed);
  const head = Float32Array.from(randomArray(headLayout(config, labels).totalSize, seed + 2, 0.5));
  const model = await loadOnnx(exportClassifierOnnx(config, params, head, labels, { pooling }), {
    name: "classifier",
  });
  try {
    const { padded, rows } = paddedBatch(config.vocabSize);
    const { logits, dims } = await model.run(padded);
    assert.deepEqual(dims, [rows.length, labels]);
    const reference = referenceClassify(config, params, head, labels, padded.inputIds, {
      batch: padded.batch,
      seq: SEQ,
      keyMask: padded.attentionMask,
      pooling,
    });
    const difference = maxDifference(logits, reference);
    assert.ok(difference < TOLERANCE, `ONNX vs reference: ${difference}`);
    assert.ok(Math.max(...reference.map(Math.abs)) > 0.1, "logits too small to be a meaningful check");
    for (const [r, ids] of rows.entries()) {
      // Alone and unpadded, in both engines: the same logits as its padded row.
      const alone = referenceClassify(config, params, head, labels, ids, {
        batch: 1,
        seq: ids.length,
        pooling,
      });
      const row = logits.subarray(r * labels, (r + 1) * labels);
      assert.ok(maxDifference(row, alone) < TOLERANCE, `row ${r}: padding changed the logits`);
      assert.ok(
        maxDifference((await model.run(padBatch([ids]))).logits, alone) < TOLERANCE,
        `row ${r} unpadded`,
      );
    }
  } finally {
    await model.release();
  }
}

Deno.test("classifier ONNX matches the float64 reference, with and without padding", async () => {
  await checkClassifier(tiny, 3, 11);
});

Deno.test("classifier ONNX with learned positions, GELU-GLU and one regression output", async () => {
  await checkClassifier({ ...tiny, positions: "learned", ffn: "gelu-glu" }, 1, 21);
});

Deno.test("classifier ONNX with mean pooling over the real tokens, with and without padding", async () => {
  await checkClassifier(tiny, 3, 31, "mean");
  await checkClassifier({ ...tiny, positions: "learned", ffn: "gelu-glu" }, 1, 51, "mean");
});

Deno.test("classifier ONNX carries the config's LayerNorm epsilon (0.1 here, where it changes every logit)", async () => {
  await checkClassifier({ ...tiny, normEps: 0.1 }, 2, 41);
});

// The crammed model's epsilon (1e-12) and a large one that a wrong constant in the export could not match.
for (const normEps of [tiny.normEps, 0.1]) {
  Deno.test(`MLM ONNX gives the reference's vocabulary logits at every position (LayerNorm epsilon ${normEps})`, async () => {
    await checkMaskedLm({ ...tiny, normEps });
  });
}

async function checkMaskedLm(config: ModelConfig): Promise<void> {
  const params = testParams(config, 31);
  const model = await loadOnnx(exportMaskedLmOnnx(config, params), { name: "mlm" });
  try {
    const { padded, rows } = paddedBatch(config.vocabSize);
    const { logits, dims } = await model.run(padded);
    assert.deepEqual(dims, [rows.length, SEQ, config.vocabSize]);
    const word = paramView(paramLayout(config), params, "embeddings.word.weight");
    const decode = (ids: ArrayLike<number>, batch: number, seq: number, keyMask?: ArrayLike<number>) =>
      matmul(referenceEncode(config, params, ids, { batch, seq, keyMask }), word, {
        m: batch * seq,
        k: config.hidden,
        n: config.vocabSize,
        transB: true,
      });
    const reference = decode(padded.inputIds, padded.batch, SEQ, padded.attentionMask);
    const difference = maxDifference(logits, reference);
    assert.ok(difference < TOLERANCE, `ONNX vs reference: ${difference}`);
    for (const [r, ids] of rows.entries()) {
      const V = config.vocabSize;
      const real = logits.subarray(r * SEQ * V, (r * SEQ + ids.length) * V);
      assert.ok(
        maxDifference(real, decode(ids, 1, ids.length)) < TOLERANCE,
        `row ${r}: padding changed logits`,
      );
    }
  } finally {
    await model.release();
  }
}
