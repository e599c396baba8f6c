import assert from "node:assert/strict";
import { type ModelConfig, tiny } from "../../src/model/config.ts";
import { initParams } from "../../src/model/init.ts";
import { paramLayout } from "../../src/model/params.ts";
import { referenceEncode, referenceForwardBackward } from "../../src/reference/model.ts";
import { layerNormForward } from "../../src/reference/layernorm.ts";
import { maxGradError, randomArray } from "./gradcheck.ts";

const batch = 2, seq = 6;

/**
 * Initialized parameters with matrices 10x larger (std 0.2, so attention is far from uniform and every path
 * carries gradient) and LayerNorm weights, biases and the position scale moved off 1, 0 and 1/sqrt(H).
 */
function testParams(config: ModelConfig): Float64Array {
  const params = Float64Array.from(initParams(config, { seed: 1 }));
  for (const t of paramLayout(config).tensors) {
    const view = params.subarray(t.offset, t.offset + t.size);
    if (t.kind === "matrix" || t.kind === "position-table") {
      view.forEach((v, i) => view[i] = 10 * v);
    } else {
      randomArray(t.size, t.offset + 17, 0.3).forEach((n, i) => view[i] += n);
    }
  }
  return params;
}

const ids = Array.from(randomArray(batch * seq, 2), (u) => Math.floor((u + 1) / 2 * tiny.vocabSize));
const labels = ids.map((id, t) => t % 3 === 1 ? (id * 7 + 3) % tiny.vocabSize : -100);

for (
  const [ffn, positions, keyMask] of [
    ["gelu", "scaled-sinusoidal", undefined],
    ["gelu-glu", "learned", undefined],
    ["gelu", "learned", [1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1]],
    ["gelu-glu", "scaled-sinusoidal", [1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0]],
  ] as const
) {
  Deno.test(`referenceForwardBackward matches finite differences on every tensor (${ffn}, ${positions}${keyMask ? ", key mask" : ""})`, () => {
    const config: ModelConfig = { ...tiny, ffn, positions };
    const params = testParams(config);
    const options = { batch, seq, keyMask };
    const { loss, predicted, grads } = referenceForwardBackward(config, params, ids, labels, options);
    assert.equal(predicted, labels.filter((l) => l >= 0).length);
    assert.ok(Number.isFinite(loss) && loss > 0);
    const lossOf = () => referenceForwardBackward(config, params, ids, labels, options).loss;
    for (const t of paramLayout(config).tensors) {
      // Four elements spread over the tensor; for the learned table, rows past seq must get zero.
      const indices = [0, 1, 2, 3].map((k) => Math.floor((t.size - 1) * k / 3 + k * 7) % t.size);
      const error = maxGradError(lossOf, params, grads, {
        indices: [...new Set(indices.map((i) => t.offset + i))],
      });
      assert.ok(error < 1e-6, `${t.name}: relative error ${error}`);
    }
    if (positions === "learned") {
      const table = paramLayout(config).tensors.find((t) => t.name === "embeddings.position.weight")!;
      const unused = grads.subarray(table.offset + seq * config.hidden, table.offset + table.size);
      assert.ok(unused.every((g) => g === 0));
    }
  });
}

Deno.test("referenceForwardBackward ignores positions labelled -100 and rejects a batch with none", () => {
  const params = testParams(tiny);
  const options = { batch, seq };
  const base = referenceForwardBackward(tiny, params, ids, labels, options).loss;
  // Changing what an unlabelled position would predict changes nothing.
  const relabelled = labels.map((l, t) => t === 0 ? -100 : l);
  assert.equal(referenceForwardBackward(tiny, params, ids, relabelled, options).loss, base);
  assert.throws(
    () => referenceForwardBackward(tiny, params, ids, labels.map(() => -100), options),
    /no token has a label/,
  );
});

Deno.test("referenceEncode returns LayerNorm-ed final states; float32 and float64 params agree", () => {
  const params = testParams(tiny);
  const z = referenceEncode(tiny, params, ids, { batch, seq });
  assert.equal(z.length, batch * seq * tiny.hidden);
  const z32 = referenceEncode(tiny, Float32Array.from(params), ids, { batch, seq });
  for (let i = 0; i < z.length; i++) assert.ok(Math.abs(z[i] - z32[i]) < 1e-5);
  // Each row is the final norm's output: un-normalizing by its weight and bias gives mean 0, variance ~1.
  const layout = paramLayout(tiny);
  const w = layout.tensors.find((t) => t.name === "final_norm.weight")!;
  const b = layout.tensors.find((t) => t.name === "final_norm.bias")!;
  const xhat = z.map((v, i) => {
    const c = i % tiny.hidden;
    return (v - params[b.offset + c]) / params[w.offset + c];
  });
  const { mean } = layerNormForward(
    xhat,
    new Float64Array(tiny.hidden).fill(1),
    new Float64Array(tiny.hidden),
    {
      rows: batch * seq,
      cols: tiny.hidden,
      eps: 0,
    },
  );
  assert.ok(mean.every((m) => Math.abs(m) < 1e-12));
});

Deno.test("referenceEncode: with a key mask, padding tokens do not change the real tokens' states", () => {
  const params = testParams(tiny);
  const keyMask = [1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1];
  const z = referenceEncode(tiny, params, ids, { batch, seq, keyMask });
  const changed = ids.map((id, t) => keyMask[t] ? id : (id + 5) % tiny.vocabSize);
  const z2 = referenceEncode(tiny, params, changed, { batch, seq, keyMask });
  for (let t = 0; t < batch * seq; t++) {
    if (!keyMask[t]) continue;
    for (let c = 0; c < tiny.hidden; c++) {
      assert.ok(Math.abs(z[t * tiny.hidden + c] - z2[t * tiny.hidden + c]) < 1e-12);
    }
  }
});
