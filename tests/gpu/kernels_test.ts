import assert from "node:assert/strict";
import { GpuError, requestGpu } from "../../src/gpu/device.ts";
import { paramBuffer, readF32, storageBuffer, uploadBuffer, writeParams } from "../../src/gpu/buffers.ts";
import { dispatch, Kernels, KERNELS_DIR, kernelSource, submitDispatches } from "../../src/gpu/kernels.ts";

const FIXTURES = new URL("../../fixtures/kernels/", import.meta.url);

Deno.test("a kernel compiles once per constants, binds in order and runs", async () => {
  const gpu = await requestGpu();
  const kernels = new Kernels(gpu, FIXTURES);
  const pipeline = await kernels.pipeline("scale", "scale", { WG: 32 });
  assert.deepEqual(await kernels.pipeline("scale", "scale", { WG: 32 }), pipeline);
  assert.ok((await kernels.pipeline("scale", "scale", { WG: 64 })) !== pipeline);
  const n = 70; // more than two workgroups of 32, not a multiple of either
  const x = uploadBuffer(gpu, "x", Float32Array.from({ length: n }, (_, i) => i - 35));
  const y = storageBuffer(gpu, "y", n * 4);
  const params = paramBuffer(gpu, "scale params", [n, { f32: -0.5 }]);
  const step = dispatch(gpu, pipeline, [params, x, y], [Math.ceil(n / 32)]);
  submitDispatches(gpu, [step, step]); // recorded twice: dispatches are reusable
  assert.deepEqual(Array.from(await readF32(gpu, y)), Array.from({ length: n }, (_, i) => (i - 35) * -0.5));
  // A per-step scalar changes by rewriting the uniform, not by re-planning the dispatch.
  writeParams(gpu, params, [n, { f32: 2 }]);
  submitDispatches(gpu, [step]);
  assert.deepEqual(Array.from(await readF32(gpu, y)), Array.from({ length: n }, (_, i) => (i - 35) * 2));
});

Deno.test("a WGSL error names the file, line and column", async () => {
  const kernels = new Kernels(await requestGpu(), FIXTURES);
  await assert.rejects(
    () => kernels.pipeline("broken", "main"),
    (e: Error) => e instanceof GpuError && /^broken\.wgsl:4:\d+: /.test(e.message),
  );
});

Deno.test("a missing kernel source is a GpuError naming the file", async () => {
  const kernels = new Kernels(await requestGpu(), FIXTURES);
  await assert.rejects(() => kernels.pipeline("absent", "main"), /cannot read kernel source .*absent\.wgsl/);
});

Deno.test("an impossible workgroup count is rejected before the GPU sees it", async () => {
  const gpu = await requestGpu();
  const pipeline = await new Kernels(gpu, FIXTURES).pipeline("scale", "scale");
  const x = storageBuffer(gpu, "x", 4);
  const params = paramBuffer(gpu, "p", [1, { f32: 1 }]);
  assert.throws(() => dispatch(gpu, pipeline, [params, x, x], [0]), /workgroup count/);
});

Deno.test("the shipped kernels directory holds every family as WGSL", () => {
  const families = [...Deno.readDirSync(KERNELS_DIR)].filter((e) => e.name.endsWith(".wgsl"));
  assert.ok(families.length > 0);
  for (const f of families) assert.ok(kernelSource(f.name.replace(/\.wgsl$/, "")).length > 0);
});
