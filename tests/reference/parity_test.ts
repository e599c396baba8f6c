import assert from "node:assert/strict";
import { tiny } from "../../src/model/config.ts";
import { initParams } from "../../src/model/init.ts";
import { paramLayout } from "../../src/model/params.ts";
import { referenceForwardBackward } from "../../src/reference/model.ts";
import { compareParity, randomParityBatch, referenceParityReport } from "../../src/reference/parity.ts";

const params = initParams(tiny, { seed: 2 });
const batch = randomParityBatch(tiny, { batch: 2, seq: 8, seed: 4 });

Deno.test("randomParityBatch is reproducible, in range, and labels positions with their own id", () => {
  assert.deepEqual(randomParityBatch(tiny, { batch: 2, seq: 8, seed: 4 }), batch);
  assert.ok(batch.ids.every((id) => id >= 0 && id < tiny.vocabSize));
  batch.labels.forEach((l, t) => assert.ok(l === -100 || l === batch.ids[t]));
  const many = randomParityBatch(tiny, { batch: 8, seq: 16, seed: 1, maskRate: 0.5 });
  const rate = many.labels.filter((l) => l >= 0).length / many.labels.length;
  assert.ok(Math.abs(rate - 0.5) < 0.1, `label rate ${rate}`);
  const one = randomParityBatch(tiny, { batch: 1, seq: 2, seed: 1, maskRate: 0 });
  assert.equal(one.labels.filter((l) => l >= 0).length, 1);
});

Deno.test("referenceParityReport has the peer's keys: loss, predicted tokens, per-tensor norm and head", () => {
  const report = referenceParityReport(tiny, params, batch);
  const { loss, predicted, grads } = referenceForwardBackward(tiny, params, batch.ids, batch.labels, batch);
  assert.equal(report.loss, loss);
  assert.equal(report.predicted_tokens, predicted);
  const layout = paramLayout(tiny);
  assert.deepEqual(Object.keys(report.grads), layout.tensors.map((t) => t.name));
  for (const t of layout.tensors) {
    const g = grads.subarray(t.offset, t.offset + t.size);
    assert.equal(report.grads[t.name].norm, Math.sqrt(g.reduce((a, v) => a + v * v, 0)));
    assert.deepEqual(report.grads[t.name].head, Array.from(g.subarray(0, Math.min(4, t.size))));
  }
});

Deno.test("compareParity measures relative differences and flags missing tensors", () => {
  const report = referenceParityReport(tiny, params, batch);
  assert.equal(compareParity(report, report).worst, 0);
  const shifted = structuredClone(report);
  shifted.loss *= 1 + 1e-3;
  shifted.grads["final_norm.bias"].norm *= 1 + 1e-2;
  const result = compareParity(shifted, report);
  assert.ok(Math.abs(result.loss - 1e-3) < 1e-12);
  assert.ok(Math.abs(result.worst - 1e-2) < 1e-12);
  const { ["final_norm.bias"]: _, ...rest } = report.grads;
  const missing = compareParity({ ...report, grads: rest }, report);
  assert.deepEqual(missing.missing, ["final_norm.bias"]);
  assert.equal(missing.worst, Infinity);
  assert.equal(compareParity({ ...report, predicted_tokens: 0 }, report).worst, Infinity);
});
