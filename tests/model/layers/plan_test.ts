import assert from "node:assert/strict";
import { storageBuffer } from "../../../src/gpu/buffers.ts";
import { GpuError, requestGpu } from "../../../src/gpu/device.ts";
import { checkBuffer, checkFloats, checkMultiple, flatGrid } from "../../../src/model/layers/plan.ts";

const gpu = await requestGpu();

Deno.test("flatGrid covers the workgroups within the per-dimension limit", () => {
  const limit = gpu.limits.maxComputeWorkgroupsPerDimension;
  assert.deepEqual(flatGrid(gpu, 1), [1, 1]);
  assert.deepEqual(flatGrid(gpu, limit), [limit, 1]);
  for (const n of [limit + 1, 3 * limit - 7, 1_000_003]) {
    const [x, y] = flatGrid(gpu, n);
    assert.ok(x <= limit && y <= limit, `${n}: ${x} x ${y}`);
    assert.ok(x * y >= n && x * (y - 1) < n, `${n}: ${x} x ${y} covers it with no spare row`);
  }
  assert.throws(() => flatGrid(gpu, limit * limit + 1), GpuError);
});

Deno.test("checkBuffer names the argument and the buffer's size", () => {
  const buffer = storageBuffer(gpu, "weights", 64);
  checkBuffer("matmul A", buffer, 64);
  checkBuffer("matmul A", { buffer, offset: 0, size: 32 }, 32);
  assert.throws(
    () => checkBuffer("matmul A", buffer, 68),
    /^GpuError: matmul A: buffer weights has 64 bytes, needs 68$/,
  );
  assert.throws(
    () => checkBuffer("matmul A", { buffer, offset: 0, size: 32 }, 48),
    /matmul A: buffer weights has 32 bytes, needs 48/,
  );
});

Deno.test("checkBuffer refuses an f16 buffer; checkFloats counts each buffer's own element size", () => {
  const half = storageBuffer(gpu, "activations", 64, "f16");
  assert.throws(
    () => checkBuffer("layerNormForward x", half, 32),
    /^GpuError: layerNormForward x: buffer activations stores f16, expected f32$/,
  );
  checkFloats("attention probs", half, 32);
  assert.throws(() => checkFloats("attention probs", half, 33), /buffer activations has 64 bytes, needs 66/);
  checkFloats("attention probs", storageBuffer(gpu, "probs", 64), 16);
  assert.throws(() => checkFloats("attention probs", storageBuffer(gpu, "probs", 64), 17), /needs 68/);
});

Deno.test("checkMultiple accepts positive multiples only", () => {
  checkMultiple("hidden", 768, 4);
  checkMultiple("rows", 7, 1);
  for (const bad of [0, -4, 6, 4.5, NaN]) {
    assert.throws(() => checkMultiple("hidden", bad, 4), /hidden = .*, expected a positive multiple of 4/);
  }
});
