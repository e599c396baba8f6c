import assert from "node:assert/strict";
import { GpuError, requestGpu } from "../../../src/gpu/device.ts";
import { readF32, readFloats, storageBuffer, uploadBuffer } from "../../../src/gpu/buffers.ts";
import { Kernels, submitDispatches } from "../../../src/gpu/kernels.ts";
import {
  DEFAULT_MATMUL_TILE,
  formatMatmulTile,
  formatMatrixTile,
  matmul,
  type MatmulBatch,
  matmulKernel,
  type MatmulOptions,
  matmulScratchBytes,
  type MatmulTile,
  type MatrixTile,
  parseMatmulTile,
  parseMatrixTile,
  useMatmulTile,
} from "../../../src/model/layers/matmul.ts";
import { matmul as referenceMatmul } from "../../../src/reference/matmul.ts";
import { assertClose, seededUniform } from "../../_helpers.ts";

const gpu = await requestGpu();
const kernels = new Kernels(gpu);
const dummy = storageBuffer(gpu, "dummy", 4);
/** The subgroup-matrix kernel's tests run only where the device has subgroup matrices (Dawn). */
const noMatrixUnits = gpu.subgroupMatrix === null;
if (noMatrixUnits) {
  console.log(
    `matmul_test: the subgroup-matrix (tensor-core) tests are ignored: ${gpu.name} (${gpu.backend}) has no ` +
      "subgroup matrices; they run with CRAM_GPU=dawn on a GPU (see the README's Testing section)",
  );
}

interface Case {
  m: number;
  k: number;
  n: number;
  transA?: boolean;
  transB?: boolean;
  accumulate?: boolean;
  add?: boolean;
  /** Element offsets of A, B, C and ADD inside their buffers (filled with other values around). */
  offsets?: [number, number, number, number];
  tile?: MatmulTile;
  matrixTile?: MatrixTile;
  splits?: number;
  scratch?: GPUBuffer;
  /** Operands stored as f16 (the rest f32). */
  f16?: readonly ("a" | "b" | "c" | "add")[];
  /** The kernel the wrapper must pick for this shape, and whether it must split K. */
  kernel: Kernel;
  splitK?: boolean;
}

type Kernel = "matmul_tiled" | "matmul_general" | "matmul_subgroup_matrix";

/** The pipeline label of `kernel`: its WGSL file and entry point. */
function label(kernel: Kernel): string {
  return kernel === "matmul_subgroup_matrix" ? `${kernel}.${kernel}` : `matmul.${kernel}`;
}

/**
 * Bound on |C - C64| / (k + 1) / sum |terms| (see `check`): u = 2^-24 for f32 arithmetic. The matrix units
 * are given 4u: tensor cores need not round their f32 accumulation to nearest.
 */
function unitError(kernel: Kernel): number {
  return kernel === "matmul_subgroup_matrix" ? 2 ** -22 : 2 ** -24;
}

/** Runs one product on the GPU and compares it with the float64 reference; returns C's bits. */
async function check(c: Case, seed = 1): Promise<Float32Array> {
  const { m, k, n, transA = false, transB = false } = c;
  const [ao, bo, co, addo] = c.offsets ?? [0, 0, 0, 0];
  const f16 = (name: "a" | "b" | "c" | "add") => c.f16?.includes(name) ?? false;
  // An f16 operand's values are its f32 values rounded to f16: the reference sees what the GPU sees.
  const values = (name: "a" | "b" | "c" | "add", v: Float32Array<ArrayBuffer>) =>
    f16(name) ? Float32Array.from(Float16Array.from(v)) : v;
  const upload = (name: "a" | "b" | "c" | "add", v: Float32Array<ArrayBuffer>) =>
    uploadBuffer(gpu, name, f16(name) ? Float16Array.from(v) : v);
  const a = values("a", seededUniform(ao + m * k, seed));
  const b = values("b", seededUniform(bo + k * n, seed + 1));
  const c0 = values("c", seededUniform(co + m * n, seed + 2));
  const add = values("add", seededUniform(addo + m * n, seed + 3));
  const options: MatmulOptions = {
    a: upload("a", a),
    b: upload("b", b),
    c: upload("c", c0),
    m,
    k,
    n,
    transA,
    transB,
    accumulate: c.accumulate,
    add: c.add ? upload("add", add) : undefined,
    aOffset: ao,
    bOffset: bo,
    cOffset: co,
    addOffset: addo,
    // f16 A and B would go to the matrix units where the device has them: a tiled case names a tile.
    tile: c.tile ?? (c.kernel === "matmul_tiled" && f16("a") && f16("b") ? DEFAULT_MATMUL_TILE : undefined),
    matrixTile: c.matrixTile,
    splits: c.splits,
    scratch: c.scratch,
  };
  const dispatches = await matmul(kernels, options);
  assert.deepEqual(
    dispatches.map((d) => d.pipeline.label),
    [label(c.kernel), ...(c.splitK ? ["matmul.matmul_split_sum"] : [])],
  );
  submitDispatches(gpu, dispatches);
  const out = await readFloats(gpu, options.c, co + m * n);

  const shape = { m, k, n, transA, transB };
  const product = referenceMatmul(a.subarray(ao), b.subarray(bo), shape);
  const absProduct = referenceMatmul(a.subarray(ao).map(Math.abs), b.subarray(bo).map(Math.abs), shape);
  const base = c.accumulate ? c0.subarray(co) : c.add ? add.subarray(addo) : new Float32Array(m * n);
  const expected = product.map((v, i) => v + base[i]);
  // Any f32 summation order of k products (with or without FMA) plus one final addition errs by at most
  // (k + 1) u sum |terms|, u = 2^-24 (Higham, Accuracy and Stability, 3.1); the bound is taken at its
  // largest entry. It is far below the O(1) error of a wrong index, tile or offset. An f16 C adds its one
  // rounding on store, half an f16 ulp: 2^-11 relative.
  const scale = Math.max(...absProduct.map((v, i) => v + Math.abs(base[i])));
  assertClose(out.subarray(co), expected, {
    atol: (k + 1) * unitError(c.kernel) * scale,
    rtol: f16("c") ? 2 ** -11 : 0,
    what: JSON.stringify({ ...shape, f16: c.f16 }),
  });
  // Values around C are untouched.
  assert.deepEqual(out.subarray(0, co), c0.subarray(0, co));
  return out;
}

const layouts = [
  { name: "NN", transA: false, transB: false },
  { name: "NT", transA: false, transB: true },
  { name: "TN", transA: true, transB: false },
  { name: "TT", transA: true, transB: true },
];

for (const { name, transA, transB } of layouts) {
  Deno.test(`matmul ${name}: tile-multiple shape on the tiled kernel`, async () => {
    await check({ m: 128, k: 64, n: 256, transA, transB, kernel: "matmul_tiled" });
  });

  Deno.test(`matmul ${name}: ragged M, N and K on the tiled kernel`, async () => {
    await check({ m: 68, k: 36, n: 132, transA, transB, kernel: "matmul_tiled" });
  });

  Deno.test(`matmul ${name}: shapes that are not multiples of 4 on the general kernel`, async () => {
    await check({ m: 13, k: 21, n: 7, transA, transB, kernel: "matmul_general" });
  });
}

Deno.test("matmul accumulate and add, on both kernels", async () => {
  await check({ m: 64, k: 32, n: 128, transA: true, accumulate: true, kernel: "matmul_tiled" });
  await check({ m: 64, k: 32, n: 128, transB: true, add: true, kernel: "matmul_tiled" });
  await check({ m: 9, k: 6, n: 5, transA: true, accumulate: true, kernel: "matmul_general" });
  await check({ m: 9, k: 6, n: 5, transB: true, add: true, kernel: "matmul_general" });
});

Deno.test("matmul with f16 operands: each of A, B, C and ADD, on both kernels and with split K", async () => {
  for (const kernel of ["matmul_tiled", "matmul_general"] as const) {
    const [m, k, n] = kernel === "matmul_tiled" ? [68, 36, 132] : [13, 21, 7];
    await check({ m, k, n, transB: true, f16: ["a", "b", "c"], kernel });
    await check({ m, k, n, transA: true, accumulate: true, f16: ["a", "b"], kernel });
    await check({ m, k, n, transA: true, accumulate: true, f16: ["c"], kernel });
    await check({ m, k, n, add: true, f16: ["a", "add"], kernel });
    await check({ m, k, n, transB: true, add: true, f16: ["b", "c"], kernel });
  }
  // The partial products stay f32; the sum stores C as f16.
  const deep = { m: 64, k: 2048, n: 128, transA: true, kernel: "matmul_tiled", splitK: true } as const;
  await check({ ...deep, f16: ["a", "b", "c"] });
  await check({ ...deep, accumulate: true, f16: ["a", "c"] });
  await check({ ...deep, add: true, f16: ["b", "add"], splits: 2 });
});

Deno.test("matmul offsets: multiples of 4 stay on the tiled kernel, others go to the general one", async () => {
  await check({ m: 64, k: 16, n: 128, add: true, offsets: [4, 8, 12, 16], kernel: "matmul_tiled" });
  await check({
    m: 64,
    k: 16,
    n: 128,
    transB: true,
    add: true,
    offsets: [1, 2, 3, 5],
    kernel: "matmul_general",
  });
});

// Every tile the H200 tuning may pick (see tasks/bench.ts --tile), on a shape with a full tile and a
// ragged edge, so that each load and store slot is exercised.
for (
  const spec of [
    "64x128x8",
    "128x128x16",
    "128x128x8/u8",
    "128x128x16/u8",
    "128x64x16/u4",
    "128x128x8/t16",
    "64x128x8/t16",
    "128x128x16/t16/u2",
    "128x128x8/t16/u8",
    "128x64x8/u8",
    "64x128x8/u8",
    "64x64x8/u8",
  ]
) {
  Deno.test(`matmul tile ${spec}`, async () => {
    const tile = parseMatmulTile(spec);
    assert.equal(formatMatmulTile(tile), spec);
    await check({ m: 136, k: 48, n: 132, transB: true, tile, kernel: "matmul_tiled" });
    await check({ m: 128, k: 32, n: 128, transA: true, tile, kernel: "matmul_tiled" });
  });
}

Deno.test("matmul splits a deep K over few tiles of C, and sums the slices in any mode", async () => {
  // One 64x128 tile with K = 2048: the wrapper splits K four ways (slices of 512).
  const deep = { m: 64, k: 2048, n: 128, transA: true, kernel: "matmul_tiled", splitK: true } as const;
  assert.equal(matmulScratchBytes(kernels, { ...deep, a: dummy, b: dummy, c: dummy }), 4 * 64 * 128 * 4);
  await check(deep);
  // Forced three-way splits of a ragged K (two whole slices and a shorter one), with accumulate and add,
  // sharing one scratch buffer.
  const scratch = storageBuffer(gpu, "scratch", 3 * 68 * 132 * 4);
  const ragged = { m: 68, k: 200, n: 132, splits: 3, scratch, kernel: "matmul_tiled", splitK: true } as const;
  await check({ ...ragged, transA: true, accumulate: true });
  await check({ ...ragged, transB: true, add: true });
  await check({ ...ragged, splits: 1, splitK: false });
});

interface BatchedCase {
  m: number;
  k: number;
  n: number;
  transA?: boolean;
  transB?: boolean;
  accumulate?: boolean;
  /** Row strides and [outer, inner] batch strides of A, B and C, and where each starts. */
  ld: [number, number, number];
  batch: MatmulBatch;
  offsets: [number, number, number];
  kernel: Kernel;
  /** A and B stored as f16 (C stays f32). */
  f16?: boolean;
}

/** Element (r, c) of a matrix stored with rows `ld` apart from `start`, as a dense [rows, cols] copy. */
function dense(data: Float32Array, start: number, rows: number, cols: number, ld: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * cols + c] = data[start + r * ld + c];
  return out;
}

/** Runs a batched, strided product and checks every product against the reference, and C's other values. */
async function checkBatched(c: BatchedCase): Promise<void> {
  const { m, k, n, transA = false, transB = false, ld, batch, offsets } = c;
  const inner = batch.inner ?? 1;
  const start = (t: number, which: "a" | "b" | "c", offset: number) =>
    offset + Math.floor(t / inner) * batch[which][0] + (t % inner) * batch[which][1];
  const stored = { a: transA ? [k, m] : [m, k], b: transB ? [n, k] : [k, n], c: [m, n] };
  const size = (which: "a" | "b" | "c", i: number) =>
    start(batch.count - 1, which, offsets[i]) + (stored[which][0] - 1) * ld[i] + stored[which][1] + 8;
  // f16 operands: the reference multiplies the rounded values the GPU reads.
  const operand = (v: Float32Array<ArrayBuffer>) => c.f16 ? Float32Array.from(Float16Array.from(v)) : v;
  const upload = (name: string, v: Float32Array<ArrayBuffer>) =>
    uploadBuffer(gpu, name, c.f16 ? Float16Array.from(v) : v);
  const a = operand(seededUniform(size("a", 0), 5));
  const b = operand(seededUniform(size("b", 1), 6));
  const c0 = seededUniform(size("c", 2), 7);
  const cBuffer = uploadBuffer(gpu, "c", c0);
  const dispatches = await matmul(kernels, {
    a: upload("a", a),
    b: upload("b", b),
    c: cBuffer,
    m,
    k,
    n,
    transA,
    transB,
    accumulate: c.accumulate,
    lda: ld[0],
    ldb: ld[1],
    ldc: ld[2],
    batch,
    aOffset: offsets[0],
    bOffset: offsets[1],
    cOffset: offsets[2],
  });
  assert.deepEqual(dispatches.map((d) => d.pipeline.label), [label(c.kernel)]);
  submitDispatches(gpu, dispatches);
  const out = await readF32(gpu, cBuffer);
  const expected = Float64Array.from(c0);
  const written = new Set<number>();
  for (let t = 0; t < batch.count; t++) {
    const at = start(t, "a", offsets[0]);
    const bt = start(t, "b", offsets[1]);
    const ct = start(t, "c", offsets[2]);
    const product = referenceMatmul(
      dense(a, at, stored.a[0], stored.a[1], ld[0]),
      dense(b, bt, stored.b[0], stored.b[1], ld[1]),
      { m, k, n, transA, transB },
    );
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        const index = ct + i * ld[2] + j;
        assert.ok(!written.has(index), "the case's products overlap in C");
        written.add(index);
        expected[index] = (c.accumulate ? c0[index] : 0) + product[i * n + j];
      }
    }
  }
  // Inputs are in [-1, 1): each entry errs by at most (k + 1) u k (see check above).
  assertClose(out, expected, { atol: (k + 2) * k * unitError(c.kernel), rtol: 0, what: JSON.stringify(c) });
}

/**
 * Attention's per-head products on qkv [batch * seq, 3 * hidden] (q, k and v sections of `hidden` columns,
 * each head `headDim` of them) and probabilities [batch, heads, seq, seq], on `kernel`: C's offsets are
 * `scores` elements into the scores, and `shift` into the outputs.
 */
async function checkAttentionProducts(
  [batchSize, seq, heads, headDim]: [number, number, number, number],
  kernel: Kernel,
  { scores, shift, f16 = false }: { scores: number; shift: number; f16?: boolean },
): Promise<void> {
  const hidden = heads * headDim;
  const rows = [seq * 3 * hidden, headDim] as const;
  const probs = [heads * seq * seq, seq * seq] as const;
  const out = [seq * hidden, headDim] as const;
  const count = batchSize * heads;
  // scores = q k^T
  await checkBatched({
    ...{ m: seq, k: headDim, n: seq, transB: true, ld: [3 * hidden, 3 * hidden, seq], kernel, f16 },
    batch: { count, inner: heads, a: rows, b: rows, c: probs },
    offsets: [0, hidden, scores],
  });
  // out = probs v, into head-major columns of [batch * seq, hidden]
  await checkBatched({
    ...{ m: seq, k: seq, n: headDim, ld: [seq, 3 * hidden, hidden], kernel, f16 },
    batch: { count, inner: heads, a: probs, b: rows, c: out },
    offsets: [0, 2 * hidden, shift],
  });
  // dk = dscores^T q, accumulated into the k section of dqkv
  await checkBatched({
    ...{ m: seq, k: seq, n: headDim, transA: true, accumulate: true, ld: [seq, 3 * hidden, 3 * hidden] },
    ...{ kernel, f16 },
    batch: { count, inner: heads, a: probs, b: rows, c: rows },
    offsets: [0, 0, hidden + shift],
  });
}

for (const kernel of ["matmul_tiled", "matmul_general"] as const) {
  Deno.test(`matmul batched and strided products: attention's per-head products (${kernel})`, async () => {
    // The general kernel takes what is not a multiple of 4: here an odd offset of C.
    const shift = kernel === "matmul_general" ? 1 : 0;
    await checkAttentionProducts([3, 20, 2, 8], kernel, { scores: 4 + shift, shift });
  });
}

Deno.test("matmul batch of one level (one product per outer index)", async () => {
  await checkBatched({
    m: 12,
    k: 16,
    n: 8,
    ld: [16, 8, 8],
    batch: { count: 5, a: [12 * 16, 0], b: [0, 0], c: [12 * 8, 0] },
    offsets: [0, 0, 0],
    kernel: "matmul_tiled",
  });
});

Deno.test("useMatmulTile makes every later tiled product of its Kernels use the tile, and checks it first", () => {
  const own = new Kernels(gpu);
  const product = { m: 16384, k: 768, n: 3072, a: dummy, b: dummy, c: dummy };
  assert.equal(matmulKernel(own, product).tile, "128x128x8/u8");
  useMatmulTile(own, parseMatmulTile("128x128x16/u8"));
  assert.equal(matmulKernel(own, product).tile, "128x128x16/u8");
  // A product's own tile still wins; other Kernels keep the wrapper's choice.
  assert.equal(matmulKernel(own, { ...product, tile: parseMatmulTile("64x64x8") }).tile, "64x64x8");
  assert.equal(matmulKernel(kernels, product).tile, "128x128x8/u8");
  assert.throws(() => useMatmulTile(own, parseMatmulTile("128x128x12")), /K depth must be 8 or 16/);
});

Deno.test("matmul keeps the default tile for pretraining and picks the fastest tile measured for finetuning's products", () => {
  const tileOf = (options: Omit<MatmulOptions, "a" | "b" | "c">) =>
    matmulKernel(kernels, { ...options, a: dummy, b: dummy, c: dummy }).tile;
  // The crammed model's pretraining products at micro-batch 128 (16384 tokens, 2432 label rows).
  assert.equal(tileOf({ m: 16384, k: 768, n: 2304, transB: true }), "128x128x8/u8");
  assert.equal(tileOf({ m: 16384, k: 768, n: 3072 }), "128x128x8/u8");
  assert.equal(tileOf({ m: 16384, k: 3072, n: 768 }), "128x128x8/u8");
  assert.equal(tileOf({ m: 768, k: 16384, n: 768, transA: true }), "128x128x8/u8");
  assert.equal(tileOf({ m: 3072, k: 16384, n: 768, transA: true }), "128x128x8/u8");
  assert.equal(tileOf({ m: 2432, k: 768, n: 32768, transB: true }), "128x128x8/u8");
  assert.equal(tileOf({ m: 2432, k: 32768, n: 768 }), "128x128x8/u8");
  assert.equal(tileOf({ m: 32768, k: 2432, n: 768, transA: true }), "128x128x8/u8");
  const scores = {
    count: 128 * 12,
    inner: 12,
    a: [128 * 2304, 64],
    b: [128 * 2304, 64],
    c: [12 * 128 * 128, 128 * 128],
  } as const;
  assert.equal(
    tileOf({ m: 128, k: 64, n: 128, transB: true, lda: 2304, ldb: 2304, batch: scores }),
    "128x128x8/u8",
  );
  // Attention's products with 64 columns (P·V here; dQ, dK and dV alike): one 128x64 tile a head, where
  // 64x64 takes two (on an H100 with every per-head product on one tile, `bench.ts --kernels --tile T`:
  // forward 320.2 µs and backward 595.4 with 128x64, 436.5 and 845.7 with 64x64). P·V: the probabilities
  // [128, 128] a head, V's columns of the fused QKV rows, the context's columns of the hidden rows.
  const context = { ...scores, a: scores.c, b: [128 * 2304, 64], c: [128 * 768, 64] } as const;
  assert.equal(tileOf({ m: 128, k: 128, n: 64, ldb: 2304, ldc: 768, batch: context }), "128x64x8/u8");
  // Finetuning (16 sequences of 32 to 128 tokens): the fastest of 128x128, 64x128 and 64x64 measured on an
  // H200 by `deno task bench --shape MxNxK --tile T` (NN, NT and TN alike), in TFLOP/s (NN).
  const measured: [m: number, n: number, k: number, fastest: string][] = [
    [2048, 768, 768, "128x128x8/u8"], // 26.0, 64x128 25.5, 64x64 21.4
    [1536, 768, 768, "128x128x8/u8"], // 19.5, 19.2, 16.0
    [2048, 3072, 768, "128x128x8/u8"], // 35.3, 34.9
    [2048, 768, 3072, "128x128x8/u8"], // 34.5, 33.7, 25.5
    [2048, 2304, 768, "64x128x8/u8"], // 26.4, 31.0, 26.2
    [1024, 3072, 768, "64x128x8/u8"], // 26.3, 33.2, 28.6
    [1024, 2304, 768, "64x128x8/u8"], // 19.7, 24.9, 21.6
    [1024, 768, 3072, "64x128x8/u8"], // 26.0, 31.1, 25.4
    [1024, 768, 768, "64x128x8/u8"], // 13.0, 21.1, 21.2 (a tie)
    [512, 768, 768, "64x64x8/u8"], // 6.5, 10.6, 11.5
  ];
  for (const [m, n, k, fastest] of measured) assert.equal(tileOf({ m, n, k }), fastest, `${m}x${n}x${k}`);
  assert.equal(tileOf({ m: 13, k: 21, n: 7 }), null);
});

// The subgroup-matrix (tensor-core) kernel: f16 A and B with every size, offset and stride a multiple of 8.
// Its default tile is 2 x 2 subgroups of 4 x 4 fragments, two matrix steps deep: 128 x 128 x 32 with the
// H200's 16 x 16 x 16 matrices, 64 x 64 x 16 with lavapipe's 8 x 8 x 8; the shapes below have whole and
// ragged tiles with either.
const matrix = (test: Omit<Case, "kernel" | "f16"> & { f16?: Case["f16"] }): Case => ({
  kernel: "matmul_subgroup_matrix",
  ...test,
  f16: ["a", "b", ...(test.f16 ?? [])],
});

for (const { name, transA, transB } of layouts) {
  Deno.test({
    name: `matmul ${name} on the matrix units: whole and ragged tiles`,
    ignore: noMatrixUnits,
    fn: async () => {
      await check(matrix({ m: 128, k: 64, n: 128, transA, transB }));
      await check(matrix({ m: 136, k: 40, n: 72, transA, transB }));
    },
  });
}

Deno.test({
  name: "matmul on the matrix units: accumulate, add, f16 C and ADD, offsets",
  ignore: noMatrixUnits,
  fn: async () => {
    const [m, k, n] = [72, 48, 136];
    await check(matrix({ m, k, n, transA: true, accumulate: true }));
    await check(matrix({ m, k, n, transB: true, add: true }));
    await check(matrix({ m, k, n, transB: true, f16: ["c"] }));
    await check(matrix({ m, k, n, add: true, f16: ["c", "add"] }));
    await check(matrix({ m, k, n, transA: true, accumulate: true, f16: ["c"] }));
    await check(matrix({ m, k, n, add: true, offsets: [8, 16, 24, 32] }));
    // An offset that is a multiple of 4 but not of 8 leaves the matrix units for the tiled kernel.
    await check({ m, k, n, add: true, offsets: [4, 16, 24, 32], f16: ["a", "b"], kernel: "matmul_tiled" });
  },
});

Deno.test({
  name: "matmul on the matrix units: split K, in every mode",
  ignore: noMatrixUnits,
  fn: async () => {
    const deep = { m: 64, k: 2048, n: 128, transA: true, splitK: true };
    await check(matrix(deep));
    await check(matrix({ ...deep, accumulate: true, f16: ["c"] }));
    const scratch = storageBuffer(gpu, "scratch", 3 * 72 * 136 * 4);
    const ragged = { m: 72, k: 200, n: 136, splits: 3, scratch, splitK: true };
    await check(matrix({ ...ragged, transA: true, accumulate: true }));
    await check(matrix({ ...ragged, transB: true, add: true, f16: ["add"] }));
  },
});

for (const spec of ["sg1x1/f1x1/k1", "sg2x2/f4x4/k2", "sg1x2/f2x4/k2", "sg2x1/f4x2/k1", "sg2x4/f4x2/k2"]) {
  Deno.test({
    name: `matmul matrix tile ${spec}`,
    ignore: noMatrixUnits,
    fn: async () => {
      const matrixTile = parseMatrixTile(spec);
      assert.equal(formatMatrixTile(matrixTile), spec);
      await check(matrix({ m: 136, k: 48, n: 264, transB: true, matrixTile }));
      await check(matrix({ m: 128, k: 32, n: 128, transA: true, matrixTile, accumulate: true }));
    },
  });
}

Deno.test({
  name: "matmul batched and strided products on the matrix units: attention's per-head products",
  ignore: noMatrixUnits,
  fn: () =>
    checkAttentionProducts([3, 24, 2, 16], "matmul_subgroup_matrix", { scores: 8, shift: 0, f16: true }),
});

Deno.test({
  name: "matmul on the matrix units is deterministic and refuses tiles it cannot run",
  ignore: noMatrixUnits,
  fn: async () => {
    const shape = matrix({ m: 64, k: 96, n: 128, transA: true });
    assert.deepEqual(await check(shape), await check(shape));
    const f16 = uploadBuffer(gpu, "f16", new Float16Array(64 * 64));
    const base = { a: f16, b: f16, c: storageBuffer(gpu, "c", 64 * 64 * 4), m: 64, k: 64, n: 64 };
    const cases: [string, RegExp][] = [
      ["sg1x1/f3x1/k1", /fragments per subgroup must be 1, 2 or 4/],
      ["sg4x1/f1x1/k1", /load 1, 2, 4 or 8 times/],
      ["sg0x1/f1x1/k1", /positive integers/],
    ];
    for (const [spec, message] of cases) {
      await assert.rejects(
        matmul(kernels, { ...base, matrixTile: parseMatrixTile(spec) }),
        (e) => e instanceof GpuError && message.test(e.message),
      );
    }
    assert.throws(() => parseMatrixTile("2x2/4x4"), /expected sgRxC\/fRxC\/kN/);
  },
});

Deno.test("matmul is deterministic: the same inputs give the same bits", async () => {
  const shape: Case = { m: 64, k: 96, n: 128, transA: true, kernel: "matmul_tiled" };
  assert.deepEqual(await check(shape), await check(shape));
});

Deno.test("matmul rejects bad options with a one-line GpuError", async () => {
  const small = storageBuffer(gpu, "small", 16 * 4);
  const other = storageBuffer(gpu, "other", 16 * 4);
  const deep = storageBuffer(gpu, "deep", 256 * 4);
  const base = { a: small, b: other, c: storageBuffer(gpu, "c", 16 * 4), m: 4, k: 4, n: 4 };
  const cases: [Partial<MatmulOptions>, RegExp][] = [
    [{ n: 5 }, /b needs 20 f32 values/],
    [{ m: 0 }, /m = 0, expected a positive integer/],
    [{ accumulate: true, add: other }, /accumulate and add exclude each other/],
    [{ c: small }, /c must be a buffer other than a, b and add/],
    [{ aOffset: -4 }, /a offset -4/],
    [{ tile: parseMatmulTile("64x128x12") }, /K depth must be 8 or 16/],
    [{ tile: parseMatmulTile("256x128x8") }, /at most 128/],
    [{ tile: parseMatmulTile("8x128x8") }, /1, 2 or 4 vec4s/],
    [{ k: 64, a: deep, b: deep, splits: 2, scratch: small }, /scratch holds 64 bytes, .* needs 128/],
    [{ k: 64, a: deep, b: deep, splits: 2, scratch: deep }, /scratch must be a buffer of its own/],
    [{ lda: 3 }, /a rows are 3 apart, less than their 4 elements/],
    [{ ldc: 8 }, /c needs 28 f32 values/],
    [{ batch: { count: 3, inner: 2, a: [0, 0], b: [0, 0], c: [0, 0] } }, /expected a whole number/],
    [{ batch: { count: 2, a: [4, 0], b: [0, 0], c: [0, 0] }, add: other }, /a batch cannot add/],
    [{ k: 64, a: deep, b: deep, ldc: 8, c: storageBuffer(gpu, "wide", 64 * 4), splits: 2 }, /cannot split K/],
  ];
  for (const [change, message] of cases) {
    await assert.rejects(
      matmul(kernels, { ...base, ...change }),
      (e) => e instanceof GpuError && message.test(e.message),
    );
  }
  assert.throws(() => parseMatmulTile("64x128"), /expected BMxBNxBK/);
});
