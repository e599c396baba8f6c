import assert from "node:assert/strict";
import { checked, GpuError, parseGpuBackend, requestGpu } from "../../src/gpu/device.ts";
import { dawnRequested, loadDawn } from "../../src/gpu/dawn.ts";

Deno.test("requestGpu grants the adapter's buffer limits and reports its features", async () => {
  const gpu = await requestGpu();
  const adapter = await (gpu.backend === "dawn" ? await loadDawn() : navigator.gpu).requestAdapter();
  assert.ok(adapter);
  assert.deepEqual(gpu.limits.maxStorageBufferBindingSize, adapter.limits.maxStorageBufferBindingSize);
  assert.deepEqual(gpu.limits.maxBufferSize, adapter.limits.maxBufferSize);
  assert.deepEqual(gpu.hasTimestamps, adapter.features.has("timestamp-query"));
  assert.ok(gpu.name.length > 0);
  // Only Dawn has subgroup matrices; where it does, they are f16 products the kernels can tile.
  if (gpu.backend === "builtin") assert.equal(gpu.subgroupMatrix, null);
  if (gpu.subgroupMatrix) {
    assert.ok(gpu.hasF16);
    assert.ok(gpu.subgroupSize >= 4);
    for (const side of Object.values(gpu.subgroupMatrix)) assert.ok(side % 8 === 0);
  }
});

Deno.test("requestGpu leaves out optional features when asked to", async () => {
  const gpu = await requestGpu({ timestamps: false });
  assert.deepEqual(gpu.hasTimestamps, false);
});

Deno.test("auto keeps the built-in backend on a CPU adapter without loading Dawn", async () => {
  const builtin = await requestGpu({ backend: "builtin" });
  assert.equal(builtin.backend, "builtin");
  if (!builtin.isCpu || dawnRequested()) return; // on a GPU, or Dawn already loaded by this process
  const gpu = await requestGpu({ backend: "auto" });
  assert.equal(gpu.backend, "builtin");
  assert.equal(dawnRequested(), false);
});

Deno.test("parseGpuBackend takes builtin, dawn and auto, and names the option otherwise", () => {
  for (const b of ["builtin", "dawn", "auto"]) assert.equal(parseGpuBackend(b), b);
  assert.throws(
    () => parseGpuBackend("cuda", "--gpu"),
    (e: Error) => e instanceof GpuError && e.message === "--gpu cuda: expected one of builtin, dawn, auto",
  );
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
