import assert from "node:assert/strict";
import { type ModelConfig, tiny } from "../../src/model/config.ts";
import { dropoutSiteCount } from "../../src/model/dropout_sites.ts";
import { initParams } from "../../src/model/init.ts";
import { paramLayout } from "../../src/model/params.ts";
import { headLayout } from "../../src/model/head_layout.ts";
import { referenceClassifierLoss, referenceClassify } from "../../src/reference/classifier.ts";
import { maxGradError, randomArray } from "./gradcheck.ts";

const batch = 3, seq = 5;
const ids = [2, 9, 17, 40, 3, 2, 33, 3, 0, 0, 2, 50, 61, 70, 3];
const keyMask = ids.map((id) => (id === 0 ? 0 : 1));

/** Matrices 10x the init (attention far from uniform), the other tensors moved off their init. */
function testParams(config: ModelConfig): Float64Array {
  const params = Float64Array.from(initParams(config, { seed: 4 }));
  for (const t of paramLayout(config).tensors) {
    const view = params.subarray(t.offset, t.offset + t.size);
    if (t.kind === "matrix" || t.kind === "position-table") view.forEach((v, i) => view[i] = 10 * v);
    else randomArray(t.size, t.offset + 5, 0.3).forEach((n, i) => view[i] += n);
  }
  return params;
}

for (const [labels, targets] of [[3, [2, 0, 1]], [1, [4.5, 0.25, 3]]] as const) {
  Deno.test(`referenceClassifierLoss matches finite differences with dropout on (${labels} output${labels > 1 ? "s" : ""})`, () => {
    const config: ModelConfig = { ...tiny, ffn: labels === 1 ? "gelu-glu" : "gelu" };
    const params = testParams(config);
    const head = randomArray(headLayout(config, labels).totalSize, 8, 0.2);
    const seeds = Array.from({ length: dropoutSiteCount(config) }, (_, i) => 1000 + i);
    const options = { batch, seq, keyMask, dropout: { p: 0.3, seeds } };
    const result = referenceClassifierLoss(config, params, head, labels, ids, targets, options);
    assert.ok(Number.isFinite(result.loss) && result.loss > 0);
    const lossOf = () => referenceClassifierLoss(config, params, head, labels, ids, targets, options).loss;
    const spread = (
      offset: number,
      size: number,
    ) => [...new Set([0, 1, 2, 3].map((k) => offset + Math.floor((size - 1) * k / 3 + k * 7) % size))];
    for (const t of paramLayout(config).tensors) {
      const error = maxGradError(lossOf, params, result.grads, { indices: spread(t.offset, t.size) });
      assert.ok(error < 1e-6, `${t.name}: relative error ${error}`);
    }
    for (const t of headLayout(config, labels).tensors) {
      const error = maxGradError(lossOf, head, result.headGrads, { indices: spread(t.offset, t.size) });
      assert.ok(error < 1e-6, `${t.name}: relative error ${error}`);
    }
    // The masks matter: without dropout the logits are referenceClassify's, and differ.
    const plain = referenceClassify(config, params, head, labels, ids, { batch, seq, keyMask });
    const undropped = referenceClassifierLoss(config, params, head, labels, ids, targets, {
      batch,
      seq,
      keyMask,
    });
    assert.deepEqual(undropped.logits, plain);
    assert.ok(
      plain.some((v, i) => Math.abs(v - result.logits[i]) > 1e-3),
      "dropout left the logits unchanged",
    );
  });
}

Deno.test("referenceClassifierLoss: cross-entropy and squared error are means over the batch", () => {
  const params = testParams(tiny);
  const head = randomArray(headLayout(tiny, 2).totalSize, 9, 0.2);
  const options = { batch, seq, keyMask };
  const { loss, logits } = referenceClassifierLoss(tiny, params, head, 2, ids, [1, 0, 1], options);
  let expected = 0;
  for (const [b, label] of [1, 0, 1].entries()) {
    const [a, c] = [logits[2 * b], logits[2 * b + 1]];
    expected += (Math.log(Math.exp(a) + Math.exp(c)) - (label === 0 ? a : c)) / batch;
  }
  assert.ok(Math.abs(loss - expected) < 1e-12, `${loss} vs ${expected}`);
  const scoreHead = randomArray(headLayout(tiny, 1).totalSize, 10, 0.2);
  const mse = referenceClassifierLoss(tiny, params, scoreHead, 1, ids, [1, 2, 3], options);
  const squares = [1, 2, 3].reduce((s, score, b) => s + (mse.logits[b] - score) ** 2, 0);
  assert.ok(Math.abs(mse.loss - squares / batch) < 1e-12);
  assert.throws(() => referenceClassifierLoss(tiny, params, head, 2, ids, [1, 0], options), /targets/);
});
