import assert from "node:assert/strict";
import { readF32, storageBuffer, uploadBuffer } from "../../../src/gpu/buffers.ts";
import { requestGpu } from "../../../src/gpu/device.ts";
import { Kernels, submitDispatches } from "../../../src/gpu/kernels.ts";
import { readLossTotals } from "../../../src/model/layers/cross_entropy.ts";
import { lossScaleBuffer } from "../../../src/model/loss_scale.ts";
import { biasAdd, biasGradient, biasTanh, headLoss, tanhBackward } from "../../../src/model/layers/head.ts";
import { columnSums, referenceHeadLoss } from "../../../src/reference/classifier.ts";
import { assertClose, seededUniform } from "../../_helpers.ts";

const gpu = await requestGpu();
const kernels = new Kernels(gpu);

// Not multiples of the workgroup (64) in either dimension.
const rows = 5, cols = 77;

Deno.test("biasAdd, biasTanh and tanhBackward match their float64 definitions", async () => {
  const x = seededUniform(rows * cols, 1, -12, 12); // wide, so tanh saturates at both ends
  const bias = seededUniform(cols, 2);
  const dy = seededUniform(rows * cols, 3);
  const sum = uploadBuffer(gpu, "sum", x);
  const activated = uploadBuffer(gpu, "activated", x);
  const gradient = uploadBuffer(gpu, "gradient", dy);
  const b = uploadBuffer(gpu, "bias", bias);
  submitDispatches(gpu, [
    ...await biasAdd(kernels, { values: sum, bias: b, rows, cols }),
    ...await biasTanh(kernels, { values: activated, bias: b, rows, cols }),
    ...await tanhBackward(kernels, { gradient, activated, rows, cols }),
  ]);
  const biased = Array.from(x, (v, i) => v + bias[i % cols]);
  const tanh = biased.map(Math.tanh);
  // One rounding of the add (half an ulp of |x| < 13: 5e-7); tanh adds a few ulps of a value <= 1.
  assertClose(await readF32(gpu, sum), biased, { rtol: 1.2e-7, atol: 0, what: "x + bias" });
  const gotTanh = await readF32(gpu, activated);
  assertClose(gotTanh, tanh, { rtol: 0, atol: 1e-6, what: "tanh(x + bias)" });
  // The backward is computed from the GPU's own tanh output, as the model runs it. a * a rounds by up to
  // 6e-8 (a value below 1) and the product with dy (|dy| < 1) once more: the error is absolute, as
  // 1 - a^2 cancels near saturation.
  assertClose(await readF32(gpu, gradient), Array.from(dy, (d, i) => d * (1 - gotTanh[i] ** 2)), {
    rtol: 1.2e-7,
    atol: 1.2e-7,
    what: "tanh backward",
  });
});

Deno.test("biasGradient adds the column sums to a sub-range of a gradient buffer", async () => {
  const gradient = seededUniform(rows * cols, 4);
  const before = seededUniform(cols, 5);
  const grads = storageBuffer(gpu, "grads", (256 + cols) * 4);
  gpu.device.queue.writeBuffer(grads, 256 * 4, before);
  submitDispatches(
    gpu,
    await biasGradient(kernels, {
      gradient: uploadBuffer(gpu, "gradient", gradient),
      dbias: { buffer: grads, offset: 1024, size: cols * 4 },
      rows,
      cols,
    }),
  );
  const got = await readF32(gpu, grads);
  assert.ok(got.subarray(0, 256).every((v) => v === 0), "wrote outside its range");
  const expected = columnSums(gradient, rows, cols).map((s, c) => s + before[c]);
  // Six f32 adds of values below 1 in magnitude: a few ulps of 6.
  assertClose(got.subarray(256), expected, { rtol: 0, atol: 2e-6, what: "dbias" });
});

// The default device (subgroups) and the same adapter without subgroups (the loader's tree variant).
const devices = { subgroups: gpu, tree: await requestGpu({ subgroups: false }) };

// A loss scale of 1024 (f16 storage) multiplies the gradient and leaves the loss alone.
for (
  const [labels, subgroups, scale] of [[3, true, 1], [1, true, 1], [3, false, 1], [3, true, 1024], [
    1,
    true,
    1024,
  ]] as const
) {
  Deno.test(`headLoss gives the mean ${labels === 1 ? "squared error" : "cross-entropy"} of the real rows and its gradient (${subgroups ? "subgroups" : "workgroup tree"}${scale === 1 ? "" : `, loss scale ${scale}`})`, async () => {
    const gpu = subgroups ? devices.subgroups : devices.tree;
    const kernels = new Kernels(gpu);
    assert.equal(gpu.hasSubgroups, subgroups);
    const capacity = 70; // more rows than the workgroup's threads
    const real = 67;
    const logits = seededUniform(capacity * labels, 6, -4, 4);
    const targets = Float32Array.from(
      { length: capacity },
      (_, r) => (labels === 1 ? (r * 0.37) % 5 : r % labels),
    );
    const dlogits = storageBuffer(gpu, "dlogits", capacity * labels * 4);
    const totals = storageBuffer(gpu, "totals", 8);
    const steps = await headLoss(kernels, {
      rows: capacity,
      labels,
      logits: uploadBuffer(gpu, "logits", logits),
      targets: uploadBuffer(gpu, "targets", targets),
      count: uploadBuffer(gpu, "count", Uint32Array.of(real)),
      dlogits,
      totals,
      ...(scale !== 1 && { lossScale: lossScaleBuffer(gpu, scale) }),
    });
    submitDispatches(gpu, steps);
    submitDispatches(gpu, steps);
    const expected = referenceHeadLoss(logits.subarray(0, real * labels), targets.subarray(0, real), {
      rows: real,
      labels,
    });
    const gotTotals = await readLossTotals(gpu, totals);
    assert.equal(gotTotals.count, 2 * real);
    // A sum of 67 f32 losses below ~81: relative 1e-6 covers its rounding.
    assert.ok(
      Math.abs(gotTotals.sum / gotTotals.count - expected.loss) < 1e-6 * expected.loss,
      `loss ${gotTotals.sum / gotTotals.count} vs ${expected.loss}`,
    );
    const got = await readF32(gpu, dlogits);
    // Softmax and exp in f32: a few ulps of the largest gradient (2 * 9 / 67 or 1 / 67).
    assertClose(got.subarray(0, real * labels), expected.dlogits.map((g) => g * scale), {
      rtol: 1e-5,
      atol: 1e-7 * scale,
      what: "dlogits",
    });
    assert.ok(got.subarray(real * labels).every((v) => v === 0), "rows past count must have zero gradient");
  });
}

Deno.test("the head ops name a buffer that is too small", async () => {
  const small = storageBuffer(gpu, "small", 16);
  await assert.rejects(
    () => biasTanh(kernels, { values: small, bias: small, rows: 2, cols: 4 }),
    /bias_tanh values: buffer small has 16 bytes, needs 32/,
  );
  await assert.rejects(
    () =>
      headLoss(kernels, {
        rows: 8,
        labels: 2,
        logits: small,
        targets: small,
        count: small,
        dlogits: small,
        totals: small,
      }),
    /headLoss logits: buffer small has 16 bytes, needs 64/,
  );
});
