import assert from "node:assert/strict";
import { checked, GpuError, requestGpu } from "../../src/gpu/device.ts";

Deno.test("requestGpu grants the adapter's buffer limits and reports its features", async () => {
  const gpu = await requestGpu();
  const adapter = await navigator.gpu.requestAdapter();
  assert.ok(adapter);
  assert.deepEqual(gpu.limits.maxStorageBufferBindingSize, adapter.limits.maxStorageBufferBindingSize);
  assert.deepEqual(gpu.limits.maxBufferSize, adapter.limits.maxBufferSize);
  assert.deepEqual(gpu.hasTimestamps, adapter.features.has("timestamp-query"));
  assert.ok(gpu.name.length > 0);
});

Deno.test("requestGpu leaves out optional features when asked to", async () => {
  const gpu = await requestGpu({ timestamps: false });
  assert.deepEqual(gpu.hasTimestamps, false);
});

Deno.test("checked turns a validation error into a GpuError naming the object", async () => {
  const gpu = await requestGpu();
  await assert.rejects(
    () =>
      checked(
        gpu,
        "buffer oversized",
        () => gpu.device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE }),
      ),
    (e: Error) => e instanceof GpuError && e.message.startsWith("invalid buffer oversized"),
  );
  const ok = await checked(
    gpu,
    "buffer small",
    () => gpu.device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE }),
  );
  assert.deepEqual(ok.size, 16);
});
