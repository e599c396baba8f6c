import assert from "node:assert/strict";
import { requestGpu } from "../../src/gpu/device.ts";
import {
  readBuffer,
  readBuffers,
  readF32,
  readU32,
  storageBuffer,
  uploadBuffer,
  writeBuffer,
} from "../../src/gpu/buffers.ts";

Deno.test("upload, partial write and readback round-trip exactly", async () => {
  const gpu = await requestGpu();
  const data = new Float32Array([1.5, -2, 3.25, 1e-30, 6e30]);
  const buffer = uploadBuffer(gpu, "round trip", data);
  assert.deepEqual(await readF32(gpu, buffer, 5), data);
  writeBuffer(gpu, buffer, new Float32Array([9]), 8);
  assert.deepEqual(Array.from(await readF32(gpu, buffer, 5)), [1.5, -2, 9, 1e-30, 6e30].map(Math.fround));
  // Odd byte counts are padded to a whole word.
  const bytes = uploadBuffer(gpu, "bytes", new Uint8Array([1, 2, 3]));
  assert.deepEqual(new Uint8Array(await readBuffer(gpu, bytes, 3)), new Uint8Array([1, 2, 3]));
});

Deno.test("storageBuffer starts zeroed and names itself in a size error", async () => {
  const gpu = await requestGpu();
  assert.deepEqual(Array.from(await readU32(gpu, storageBuffer(gpu, "zeros", 10))), [0, 0, 0]);
  assert.throws(
    () => storageBuffer(gpu, "huge activations", gpu.limits.maxStorageBufferBindingSize + 4),
    /buffer huge activations needs/,
  );
});

Deno.test("readBuffers reads the heads of several buffers in one round trip", async () => {
  const gpu = await requestGpu();
  const a = uploadBuffer(gpu, "a", new Float32Array([1, 2, 3, 4]));
  const b = uploadBuffer(gpu, "b", new Uint8Array([9, 8, 7, 6, 5]));
  const [first, second] = await readBuffers(gpu, [{ buffer: a, bytes: 8 }, { buffer: b, bytes: 3 }]);
  assert.deepEqual(Array.from(new Float32Array(first)), [1, 2]);
  assert.deepEqual(Array.from(new Uint8Array(second)), [9, 8, 7]);
});
