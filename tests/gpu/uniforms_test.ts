import assert from "node:assert/strict";
import { GpuError, requestGpu } from "../../src/gpu/device.ts";
import { Kernels, KERNELS_DIR, kernelSource, uniformBuffer, writeUniforms } from "../../src/gpu/kernels.ts";
import {
  packUniforms,
  uniformLayout,
  uniformStruct,
  wgslStructs,
  wgslUniformBindings,
} from "../../src/gpu/uniforms.ts";

// A family whose uniform struct has its fields out of alphabetical order, comments and a one-line sibling.
const SOURCE = `
struct Other { a: u32 }
struct Shape {
  // Rows of the input.
  rows: u32,
  /* A signed offset. */ shift: i32,
  eps: f32,
  cols4: u32,
  last: u32,
}
@group(0) @binding(0) var<uniform> shape: Shape;
@group(0) @binding(1) var<storage, read_write> other: Other;
`;
const SHAPE = { rows: "u32", shift: "i32", eps: "f32", cols4: "u32", last: "u32" } as const;

/** The one-line GpuError that checking `fields` against SOURCE's Shape raises. */
function mismatch(fields: Record<string, "u32" | "i32" | "f32">, source = SOURCE, struct = "Shape"): string {
  try {
    uniformLayout(uniformStruct("norm", struct, fields), source);
  } catch (e) {
    assert.ok(e instanceof GpuError);
    assert.ok(!e.message.includes("\n"));
    return e.message;
  }
  assert.fail("no error");
}

Deno.test("packUniforms writes each value by name at the WGSL struct's offset and type", () => {
  const layout = uniformLayout(uniformStruct("norm", "Shape", SHAPE), SOURCE);
  assert.deepEqual(layout.fields, [
    { name: "rows", type: "u32", offset: 0 },
    { name: "shift", type: "i32", offset: 4 },
    { name: "eps", type: "f32", offset: 8 },
    { name: "cols4", type: "u32", offset: 12 },
    { name: "last", type: "u32", offset: 16 },
  ]);
  // Given in another order than the struct's; 20 bytes padded to 32.
  const data = packUniforms(layout, { last: 9, eps: 0.5, cols4: 192, shift: -3, rows: 7 });
  assert.equal(data.byteLength, 32);
  const view = new DataView(data);
  assert.equal(view.getUint32(0, true), 7);
  assert.equal(view.getInt32(4, true), -3);
  assert.equal(view.getFloat32(8, true), 0.5);
  assert.equal(view.getUint32(12, true), 192);
  assert.equal(view.getUint32(16, true), 9);
  assert.equal(view.getUint32(20, true), 0);
  // A value that its field's type cannot hold, or missing, or for no field.
  const values = { rows: 7, shift: -3, eps: 0.5, cols4: 192, last: 9 };
  assert.throws(
    () => packUniforms(layout, { ...values, rows: 1.5 }),
    /^GpuError: norm\.wgsl struct Shape: field rows = 1\.5, expected a u32$/,
  );
  assert.throws(() => packUniforms(layout, { ...values, rows: -1 }), /field rows = -1, expected a u32/);
  assert.throws(
    () => packUniforms(layout, { ...values, shift: 2 ** 31 }),
    /field shift = 2147483648, expected an i32/,
  );
  const { eps: _, ...noEps } = values;
  assert.throws(
    () => packUniforms(layout, noEps),
    /^GpuError: norm\.wgsl struct Shape: no value for field eps$/,
  );
  assert.throws(
    () => packUniforms(layout, { ...values, depth: 1 }),
    /struct Shape has no field depth to take a value/,
  );
});

Deno.test("a struct of fewer than four fields still fills 16 bytes", () => {
  const layout = uniformLayout(
    uniformStruct("x", "Other", { a: "u32" }),
    "struct Other { a: u32 }\nvar<uniform> o: Other;",
  );
  assert.equal(layout.size, 16);
  assert.equal(new DataView(packUniforms(layout, { a: 5 })).getUint32(0, true), 5);
});

Deno.test("a field the wrapper does not declare is a GpuError naming the family, struct and field", () => {
  const { last: _, ...fields } = SHAPE;
  assert.equal(
    mismatch(fields),
    "norm.wgsl struct Shape: field last (u32) is missing from its wrapper's declaration",
  );
});

Deno.test("a declared field the struct lacks is a GpuError naming it", () => {
  assert.equal(
    mismatch({ ...SHAPE, depth: "u32" }),
    "norm.wgsl struct Shape has no field depth, which its wrapper declares",
  );
});

Deno.test("a misspelled field is a GpuError naming it and the field it may mean", () => {
  const { cols4: _, ...fields } = SHAPE;
  assert.equal(
    mismatch({ ...fields, col4: "u32" }),
    "norm.wgsl struct Shape has no field col4, which its wrapper declares (misspelled cols4?)",
  );
});

Deno.test("a field of another type is a GpuError naming both types", () => {
  assert.equal(
    mismatch({ ...SHAPE, eps: "u32" }),
    "norm.wgsl struct Shape: field eps is f32 in the WGSL, declared u32",
  );
});

Deno.test("a struct that is absent or no var<uniform>'s type is a GpuError naming it", () => {
  assert.equal(
    mismatch(SHAPE, SOURCE, "Shapes"),
    "norm.wgsl declares no struct Shapes (uniform structs: Shape)",
  );
  assert.equal(
    mismatch({ a: "u32" }, SOURCE, "Other"),
    "norm.wgsl struct Other is the type of no var<uniform> (uniform structs: Shape)",
  );
});

Deno.test("a struct with a vector, array or attribute is rejected by name, not packed wrong", () => {
  const vec = "struct V { n: u32, origin: vec3<f32> }\nvar<uniform> v: V;";
  assert.equal(
    mismatch({ n: "u32" }, vec, "V"),
    "norm.wgsl struct V: field origin is vec3<f32>; the uniform packer takes u32, i32 and f32 fields without attributes",
  );
  const array = "struct A { weights: array<vec4<f32>, 2>, n: u32 }\nvar<uniform> a: A;";
  assert.deepEqual(wgslStructs(array).get("A")?.map((f) => f.type), ["array<vec4<f32>,2>", "u32"]);
  assert.match(mismatch({ n: "u32" }, array, "A"), /field weights is array<vec4<f32>,2>; the uniform packer/);
  assert.throws(
    () => wgslStructs("struct S { n u32 }", "x.wgsl"),
    /^GpuError: x\.wgsl struct S: cannot read the field `n u32`$/,
  );
  const aligned = "struct B { @align(16) n: u32 }\nvar<uniform> b: B;";
  assert.match(mismatch({ n: "u32" }, aligned, "B"), /field n is @align\(16\) u32; the uniform packer/);
});

Deno.test("the prelude's MatmulParams checks against a family that binds it", () => {
  const prelude = "struct MatmulParams { m: u32, n: u32 }";
  const layout = uniformLayout(
    uniformStruct("matmul", "MatmulParams", { n: "u32", m: "u32" }),
    "@group(0) @binding(0) var<uniform> p: MatmulParams;",
    prelude,
  );
  assert.deepEqual(layout.fields.map((f) => f.name), ["m", "n"]);
});

Deno.test("uniformBuffer checks its declaration against the loader's WGSL at first use", async () => {
  const gpu = await requestGpu();
  const k = new Kernels(gpu, new URL("../../fixtures/kernels/", import.meta.url));
  assert.throws(
    () =>
      uniformBuffer(k, uniformStruct("scale", "Params", { n: "u32", scale: "u32" }), "bad", {
        n: 1,
        scale: 2,
      }),
    (e: Error) =>
      e instanceof GpuError &&
      e.message === "scale.wgsl struct Params: field scale is f32 in the WGSL, declared u32",
  );
  const buffer = uniformBuffer(k, uniformStruct("scale", "Params", { n: "u32", scale: "f32" }), "good", {
    n: 1,
    scale: 2,
  });
  assert.equal(buffer.size, 16);
  assert.throws(
    () => writeUniforms(gpu, buffer, { n: 1 }),
    /scale\.wgsl struct Params: no value for field scale/,
  );
  const plain = gpu.device.createBuffer({ label: "plain", size: 16, usage: GPUBufferUsage.UNIFORM });
  assert.throws(() => writeUniforms(gpu, plain, { n: 1 }), /buffer plain was not made by uniformBuffer/);
});

Deno.test("wgslUniformBindings finds group 0's var<uniform> structs by binding, in any attribute order", () => {
  const source = `
    @group(0) @binding(0) var<uniform> a: A;
    @binding(0) @group(0) var<uniform> b: B;
    @group(1) @binding(2) var<uniform> c: C;
    // @group(0) @binding(3) var<uniform> d: D;
    @group(0)
    @binding(4) var<uniform> e: E;
    @group(0) @binding(5) var<storage, read> f: array<f32>;
  `;
  assert.deepEqual([...wgslUniformBindings(source)], [[0, ["A", "B"]], [4, ["E"]]]);
});

Deno.test("every shipped family's uniform structs are ones the packer lays out", () => {
  const prelude = kernelSource("prelude");
  for (const entry of Deno.readDirSync(KERNELS_DIR)) {
    const family = entry.name.replace(/\.wgsl$/, "");
    if (family === "prelude") continue;
    const source = kernelSource(family);
    const structs = new Map([...wgslStructs(prelude), ...wgslStructs(source)]);
    for (const struct of new Set([...wgslUniformBindings(source).values()].flat())) {
      const fields = Object.fromEntries(structs.get(struct)!.map((f) => [f.name, f.type as "u32"]));
      const layout = uniformLayout(uniformStruct(family, struct, fields), source, prelude);
      assert.ok(layout.fields.length > 0, `${family} ${struct}`);
    }
  }
});
