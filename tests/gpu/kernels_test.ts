import assert from "node:assert/strict";
import { type Gpu, GpuError, requestGpu } from "../../src/gpu/device.ts";
import { readF32, readU32, storageBuffer, uploadBuffer } from "../../src/gpu/buffers.ts";
import {
  dispatch,
  Kernels,
  KERNELS_DIR,
  kernelSource,
  moduleSource,
  rowLanes,
  shaderNeeds,
  submitDispatches,
  uniformBuffer,
  writeUniforms,
} from "../../src/gpu/kernels.ts";
import { uniformStruct } from "../../src/gpu/uniforms.ts";
import { pcg } from "../../src/model/hash.ts";

const FIXTURES = new URL("../../fixtures/kernels/", import.meta.url);
const SCALE = uniformStruct("scale", "Params", { n: "u32", scale: "f32" });

Deno.test("a kernel compiles once per constants, binds in order and runs", async () => {
  const gpu = await requestGpu();
  const kernels = new Kernels(gpu, FIXTURES);
  const pipeline = await kernels.pipeline("scale", "scale", { WG: 32 });
  assert.deepEqual(await kernels.pipeline("scale", "scale", { WG: 32 }), pipeline);
  assert.ok((await kernels.pipeline("scale", "scale", { WG: 64 })) !== pipeline);
  const n = 70; // more than two workgroups of 32, not a multiple of either
  const x = uploadBuffer(gpu, "x", Float32Array.from({ length: n }, (_, i) => i - 35));
  const y = storageBuffer(gpu, "y", n * 4);
  const uniforms = uniformBuffer(kernels, SCALE, "scale uniforms", { n, scale: -0.5 });
  const step = dispatch(gpu, pipeline, [uniforms, x, y], [Math.ceil(n / 32)]);
  submitDispatches(gpu, [step, step]); // recorded twice: dispatches are reusable
  assert.deepEqual(Array.from(await readF32(gpu, y)), Array.from({ length: n }, (_, i) => (i - 35) * -0.5));
  // A per-step scalar changes by rewriting the uniform, not by re-planning the dispatch.
  writeUniforms(gpu, uniforms, { n, scale: 2 });
  submitDispatches(gpu, [step]);
  assert.deepEqual(Array.from(await readF32(gpu, y)), Array.from({ length: n }, (_, i) => (i - 35) * 2));
});

Deno.test("a dispatch refuses a uniform buffer at a binding that is no var<uniform> of its struct", async () => {
  const gpu = await requestGpu();
  const kernels = new Kernels(gpu, FIXTURES);
  const pipeline = await kernels.pipeline("scale", "scale");
  const x = storageBuffer(gpu, "x", 4);
  const uniforms = uniformBuffer(kernels, SCALE, "scale uniforms", { n: 1, scale: 1 });
  // Another family's struct: convert.wgsl's Shape, made by a loader of the shipped kernels.
  const convertShape = uniformStruct("convert", "Shape", { length4: "u32" });
  const other = uniformBuffer(new Kernels(gpu), convertShape, "convert shape", { length4: 1 });
  assert.throws(
    () => dispatch(gpu, pipeline, [other, x, x], [1]),
    (e: Error) =>
      e instanceof GpuError &&
      e.message === "kernel scale.scale: buffer convert shape holds convert.wgsl's " +
          "Shape, but @binding(0) is a var<uniform> of scale.wgsl's Params",
  );
  assert.throws(
    () => dispatch(gpu, pipeline, [uniforms, uniforms, x], [1]),
    /^GpuError: kernel scale\.scale: buffer scale uniforms holds scale\.wgsl's Params, but @binding\(1\) is no var<uniform>$/,
  );
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
  const kernels = new Kernels(gpu, FIXTURES);
  const pipeline = await kernels.pipeline("scale", "scale");
  const x = storageBuffer(gpu, "x", 4);
  const uniforms = uniformBuffer(kernels, SCALE, "u", { n: 1, scale: 1 });
  assert.throws(() => dispatch(gpu, pipeline, [uniforms, x, x], [0]), /workgroup count/);
});

Deno.test("the shipped kernels directory holds every family as WGSL", () => {
  const families = [...Deno.readDirSync(KERNELS_DIR)].filter((e) => e.name.endsWith(".wgsl"));
  assert.ok(families.length > 0);
  for (const f of families) assert.ok(kernelSource(f.name.replace(/\.wgsl$/, "")).length > 0);
});

Deno.test("shaderNeeds finds f16, subgroup builtins and subgroup matrices, and ignores comments", () => {
  assert.deepEqual(shaderNeeds("// f16 storage, subgroupAdd(x)\nvar<private> x: f32;"), {
    f16: false,
    subgroups: false,
    subgroupMatrix: false,
  });
  assert.deepEqual(shaderNeeds("alias Y_T = f16;"), { f16: true, subgroups: false, subgroupMatrix: false });
  assert.deepEqual(shaderNeeds("let h = 1.5h;"), { f16: true, subgroups: false, subgroupMatrix: false });
  assert.deepEqual(shaderNeeds("let s = subgroupAdd(v);"), {
    f16: false,
    subgroups: true,
    subgroupMatrix: false,
  });
  assert.deepEqual(shaderNeeds("fn f(@builtin(subgroup_id) sg: u32) {}"), {
    f16: false,
    subgroups: true,
    subgroupMatrix: false,
  });
  assert.deepEqual(shaderNeeds("var c = subgroup_matrix_result<f32, 8, 8>();"), {
    f16: true,
    subgroups: true,
    subgroupMatrix: true,
  });
});

Deno.test("moduleSource puts each backend's enable lines and the shared files before the source", () => {
  const base = { name: "test adapter", hasF16: true, subgroupSize: 32 } as const;
  const builtin = { ...base, backend: "builtin", subgroupMatrix: null } as unknown as Gpu;
  const dawn = { ...base, backend: "dawn", subgroupMatrix: { m: 16, n: 16, k: 16 } } as unknown as Gpu;
  const prelude = { name: "prelude", text: "fn shared() {}\n" };
  const source = "alias T = f16;\nfn main() { let s = subgroupAdd(1u); }\n";
  // naga: f16 declared, subgroups not (it refuses `enable subgroups;`).
  const naga = moduleSource(builtin, "k", source, [prelude]);
  assert.equal(naga.code, `enable f16;\n${prelude.text}${source}`);
  assert.deepEqual(naga.parts, [
    { file: "k.wgsl (the loader's enable lines)", first: 1, count: 1 },
    { file: "prelude.wgsl", first: 2, count: 1 },
    { file: "k.wgsl", first: 3, count: Infinity },
  ]);
  // Tint: both declared, and a device with subgroup matrices gets their shape as constants.
  const tint = moduleSource(dawn, "k", source, [prelude]);
  assert.ok(tint.code.startsWith("enable f16;\nenable subgroups;\nconst SUBGROUP_MATRIX_M: u32 = 16u;\n"));
  assert.ok(tint.code.endsWith(`${prelude.text}${source}`));
  assert.equal(tint.code.split("\n").length - source.split("\n").length + 1, tint.parts.at(-1)!.first);
  const matrix = moduleSource(dawn, "k", "var c = subgroup_matrix_result<f32, 16, 16>();", [prelude]);
  assert.match(
    matrix.code,
    /^enable f16;\nenable subgroups;\nenable chromium_experimental_subgroup_matrix;\n/,
  );
  // A shared file's needs count too: Tint needs `enable subgroups;` for the subgroup reductions.
  const reduce = { name: "reduce_subgroups", text: "fn r() { _ = subgroupAdd(1u); }" };
  assert.match(moduleSource(dawn, "k", "fn main() {}", [prelude, reduce]).code, /^enable subgroups;\n/m);
  // What the device lacks is a one-line error naming the file.
  assert.throws(
    () => moduleSource(builtin, "k", "var c = subgroup_matrix_result<f32, 16, 16>();", [prelude]),
    (e: Error) => e instanceof GpuError && /^k\.wgsl: subgroup matrices need Dawn/.test(e.message),
  );
  assert.throws(
    () => moduleSource({ ...builtin, hasF16: false }, "k", source, [prelude]),
    (e: Error) => e instanceof GpuError && /^k\.wgsl: f16 needs shader-f16/.test(e.message),
  );
});

// The adapter with subgroups (Deno's grants them when asked) and the same adapter without.
const withSubgroups = await requestGpu();
const withoutSubgroups = await requestGpu({ subgroups: false });

Deno.test("workgroup_sum and workgroup_max give every invocation its workgroup's total and max, with subgroups and without", async () => {
  assert.ok(
    withSubgroups.hasSubgroups,
    `${withSubgroups.name} grants no subgroups: the test would prove nothing`,
  );
  assert.equal(withoutSubgroups.hasSubgroups, false);
  for (const gpu of [withSubgroups, withoutSubgroups]) {
    for (const wg of [64, 256]) {
      const pipeline = await new Kernels(gpu, FIXTURES).pipeline("sum", "sum", { WG: wg });
      const groups = 3;
      const x = Float32Array.from({ length: wg * groups }, (_, i) => ((i * 7919) % 1000) / 250 - 2);
      const y = storageBuffer(gpu, "y", x.byteLength);
      const largest = storageBuffer(gpu, "largest", x.byteLength);
      submitDispatches(gpu, [dispatch(gpu, pipeline, [uploadBuffer(gpu, "x", x), y, largest], [groups])]);
      const got = await readF32(gpu, y);
      const gotMax = await readF32(gpu, largest);
      for (let g = 0; g < groups; g++) {
        const group = x.subarray(g * wg, (g + 1) * wg);
        const sum = group.reduce((s, v) => s + v, 0);
        const max = Math.max(...group);
        for (let i = g * wg; i < (g + 1) * wg; i++) {
          assert.equal(gotMax[i], max, `max of workgroup ${g} at invocation ${i}`);
          assert.ok(
            Math.abs(got[i] - sum) <= 1e-5 * (1 + Math.abs(sum)),
            `${gpu.hasSubgroups ? "subgroups" : "workgroup"} WG ${wg}: invocation ${i}, ${got[i]} vs ${sum}`,
          );
        }
      }
    }
  }
});

Deno.test("rowLanes keeps a row's lanes within the smallest subgroup, and refuses an unknown one", () => {
  assert.equal(rowLanes(withoutSubgroups, 64, "op"), 64);
  assert.equal(rowLanes({ ...withSubgroups, subgroupMinSize: 8 }, 64, "op"), 8);
  assert.equal(rowLanes({ ...withSubgroups, subgroupMinSize: 32 }, 16, "op"), 16);
  assert.throws(
    () => rowLanes({ ...withSubgroups, subgroupMinSize: 0 }, 64, "layerNormBackward"),
    /^GpuError: layerNormBackward: .* has subgroups of an unknown smallest size$/,
  );
});

Deno.test("a WGSL error in a reduction file names that file", async () => {
  for (const gpu of [withSubgroups, withoutSubgroups]) {
    const file = gpu.hasSubgroups ? "reduce_subgroups" : "reduce_workgroup";
    await assert.rejects(
      () => new Kernels(gpu, FIXTURES).pipeline("broken_sum", "main"),
      (e: Error) => e instanceof GpuError && new RegExp(`^${file}\\.wgsl:\\d+:\\d+: `).test(e.message),
    );
  }
});

Deno.test("a kernel calls the shared prelude", async () => {
  const gpu = await requestGpu();
  const kernels = new Kernels(gpu, FIXTURES);
  const pipeline = await kernels.pipeline("hash", "hash");
  const y = storageBuffer(gpu, "y", 4 * 4);
  submitDispatches(gpu, [dispatch(gpu, pipeline, [y], [1])]);
  assert.deepEqual(Array.from(await readU32(gpu, y)), [0, 1, 2, 3].map(pcg));
});
