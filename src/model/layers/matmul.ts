/**
 * General matrix products C[m,n] = op(A)[m,k] op(B)[k,n] on the GPU (kernels/matmul.wgsl), for the
 * model's three layouts: weights are stored PyTorch-style [out, in], so a projection is
 * y = x W^T (`transB`), its input gradient dx = dy W (plain) and its weight gradient dW = dy^T x
 * (`transA`, usually with `accumulate` over micro-batches).
 *
 * The wrapper picks the kernel: the fast tiled kernel whenever rows can be read as vec4 (ragged M, N, K
 * included), a plain guarded kernel otherwise. Matrices may be row ranges of wider ones (`lda`, `ldb`,
 * `ldc`), and one dispatch may run a batch of same-shaped products (`batch`: attention's per-head
 * products).
 *
 * @module
 */
import { checked, GpuError } from "../../gpu/device.ts";
import { elementBytes, storageBuffer, storageTypeOf } from "../../gpu/buffers.ts";
import {
  type Constants,
  type Dispatch,
  dispatch,
  type Kernels,
  type StorageTypes,
  storageTypes,
  uniformBuffer,
} from "../../gpu/kernels.ts";
import { uniformStruct } from "../../gpu/uniforms.ts";

/** Shape of the tiled kernel's work split (see kernels/matmul.wgsl). */
export interface MatmulTile {
  /** Rows of C per workgroup (BM = 8 x threads along m), at most 128. */
  rows: number;
  /** Columns of C per workgroup (BN = threadCols x threads along n), at most 128. */
  cols: number;
  /** K depth of one workgroup tile: 8 or 16. */
  depth: number;
  /** Columns of C per thread: 8 (an 8x8 thread tile) or 16 (8x16). */
  threadCols: number;
  /** k steps written out per pass of the loop over a K tile: 1, 2, 4 or 8 (at most `depth`; 8: no loop). */
  unroll: number;
}

/**
 * Options of {@linkcode matmul}. Sizes and offsets are in elements. A, B, C and `add` are each stored as
 * their buffer's storage type (f32 or f16, see buffers.ts); the products compute in f32 either way.
 */
export interface MatmulOptions {
  /** A, stored [m,k], or [k,m] when `transA`. */
  a: GPUBuffer;
  /** B, stored [k,n], or [n,k] when `transB`. */
  b: GPUBuffer;
  /** C [m,n], written (or added to, with `accumulate`). Must not be `a` or `b`. */
  c: GPUBuffer;
  m: number;
  k: number;
  n: number;
  transA?: boolean;
  transB?: boolean;
  /** C += op(A) op(B) (weight gradients summed over micro-batches). */
  accumulate?: boolean;
  /** C = add + op(A) op(B), `add` of C's shape (a residual connection). Not with `accumulate`. */
  add?: GPUBuffer;
  aOffset?: number;
  bOffset?: number;
  cOffset?: number;
  addOffset?: number;
  /** Elements between the rows of A as stored (default: its width, k or m with `transA`). */
  lda?: number;
  /** Elements between the rows of B as stored (default: its width, n or k with `transB`). */
  ldb?: number;
  /** Elements between the rows of C and ADD (default n). */
  ldc?: number;
  /** Independent products of this shape in one dispatch (not with `add`, never split K). */
  batch?: MatmulBatch;
  /**
   * Tiled-kernel work split, for tuning; default {@linkcode DEFAULT_MATMUL_TILE}, or smaller for small
   * products. Given, it also keeps a product off the subgroup-matrix kernel.
   */
  tile?: MatmulTile;
  /** Subgroup-matrix kernel work split, for tuning; default {@linkcode DEFAULT_MATRIX_TILE}. */
  matrixTile?: MatrixTile;
  /** Split-K ways of the tiled kernel, for tuning; by default chosen so that the GPU is filled. */
  splits?: number;
  /** Buffer for split-K partial sums, of at least {@linkcode matmulScratchBytes}; shareable. */
  scratch?: GPUBuffer;
}

/**
 * A batch of products indexed t = outer * inner + i (e.g. outer a sequence, i a head): product t's A, B
 * and C start `outer * strides[0] + i * strides[1]` elements after their offsets.
 */
export interface MatmulBatch {
  /** Products in all. */
  count: number;
  /** Products per outer index (default 1: one level, products `strides[0]` apart). */
  inner?: number;
  a: readonly [number, number];
  b: readonly [number, number];
  c: readonly [number, number];
}

/**
 * The default tile, the fastest of the sweep on the H200 (Deno 2.9.6, Vulkan; `deno task bench --tile`):
 * 128x128 with K depth 8, 8x8 per thread and the k loop written out 8 steps at a time reached 34-38
 * TFLOP/s at the model's encoder shapes in all three layouts (64x128x8/u8: 31-34; 128x64x8/u8 and
 * 128x128x8/t16/u8: 32-37; 64x128x16/u8: 27-34). With the loop over those 8 steps removed as well
 * (`multiply_tile` in kernels/matmul.wgsl) it reaches 39-44 on an H100 and stays the fastest in every
 * product (128x128x16/u8 34-43, 128x128x8/t16/u8 33-42, 64x128x8/u8 33-42, 128x64x8/u8 34-38); with f16
 * operands too (36-41, against 31-38 at K depth 16 and 29-37 with t16).
 */
export const DEFAULT_MATMUL_TILE: Readonly<MatmulTile> = {
  rows: 128,
  cols: 128,
  depth: 8,
  threadCols: 8,
  unroll: 8,
};

/** Tiles chosen for every product of a `Kernels` (see {@linkcode useMatmulTile}). */
const CHOSEN_TILES = new WeakMap<Kernels, Readonly<MatmulTile>>();

/**
 * Makes every product planned on `k` from now on that runs on the tiled kernel and names no tile of its
 * own use `tile` instead of the wrapper's choice: a tuning knob for whole steps (`deno task bench --step
 * --tile`). Products on the matrix units are not affected.
 */
export function useMatmulTile(k: Kernels, tile: MatmulTile): void {
  tileConstants(k, tile); // a tile this adapter cannot run fails here, not in the first product
  CHOSEN_TILES.set(k, { ...tile });
}

/**
 * Work split of the subgroup-matrix kernel (kernels/matmul_subgroup_matrix.wgsl), in units of the
 * device's matrix shape: a workgroup of `subgroups[0] x subgroups[1]` subgroups, each holding
 * `fragments[0] x fragments[1]` result fragments, over K tiles of `steps` matrix steps.
 */
export interface MatrixTile {
  subgroups: readonly [number, number];
  fragments: readonly [number, number];
  steps: number;
}

/**
 * The default subgroup-matrix split: 2 x 2 subgroups of 4 x 4 fragments, two matrix steps per K tile (a
 * 128 x 128 x 32 tile with the H200's 16 x 16 x 16 matrices).
 */
export const DEFAULT_MATRIX_TILE: Readonly<MatrixTile> = { subgroups: [2, 2], fragments: [4, 4], steps: 2 };

/** The default tile one matrix step deep, for adapters with less workgroup memory than it needs. */
const SHALLOW_MATRIX_TILE: Readonly<MatrixTile> = { ...DEFAULT_MATRIX_TILE, steps: 1 };

/** Parses `sgRxC/fRxC/kN` (subgroups, fragments per subgroup, matrix steps per K tile), e.g. `sg2x2/f4x4/k2`. */
export function parseMatrixTile(spec: string): MatrixTile {
  const match = /^sg(\d+)x(\d+)\/f(\d+)x(\d+)\/k(\d+)$/.exec(spec);
  if (!match) throw new GpuError(`matrix tile "${spec}": expected sgRxC/fRxC/kN, e.g. sg2x2/f4x4/k2`);
  const [sr, sc, fr, fc, steps] = match.slice(1).map(Number);
  return { subgroups: [sr, sc], fragments: [fr, fc], steps };
}

/** Formats a subgroup-matrix tile as {@linkcode parseMatrixTile} reads it. */
export function formatMatrixTile(tile: MatrixTile): string {
  return `sg${tile.subgroups.join("x")}/f${tile.fragments.join("x")}/k${tile.steps}`;
}

/** Parses `BMxBNxBK` with optional `/t16` (8x16 thread tile) and `/uN` (unroll), e.g. `128x128x8/t16/u4`. */
export function parseMatmulTile(spec: string): MatmulTile {
  const match = /^(\d+)x(\d+)x(\d+)((?:\/[tu]\d+)*)$/.exec(spec);
  if (!match) {
    throw new GpuError(`matmul tile "${spec}": expected BMxBNxBK[/tCOLS][/uUNROLL], e.g. 64x128x8/u2`);
  }
  const tile = { rows: +match[1], cols: +match[2], depth: +match[3], threadCols: 8, unroll: 1 };
  for (const part of match[4].split("/").slice(1)) {
    if (part[0] === "t") tile.threadCols = +part.slice(1);
    else tile.unroll = +part.slice(1);
  }
  return tile;
}

/** Formats a tile as {@linkcode parseMatmulTile} reads it. */
export function formatMatmulTile(tile: MatmulTile): string {
  return `${tile.rows}x${tile.cols}x${tile.depth}` + (tile.threadCols === 8 ? "" : `/t${tile.threadCols}`) +
    (tile.unroll === 1 ? "" : `/u${tile.unroll}`);
}

/** Override constants of the tiled kernel for `tile`, or a GpuError saying which rule it breaks. */
function tileConstants(k: Kernels, tile: MatmulTile): Constants {
  const { rows, cols, depth, threadCols, unroll } = tile;
  const name = `matmul tile ${formatMatmulTile(tile)}`;
  if (depth !== 8 && depth !== 16) throw new GpuError(`${name}: K depth must be 8 or 16`);
  if (threadCols !== 8 && threadCols !== 16) throw new GpuError(`${name}: thread columns must be 8 or 16`);
  if (![1, 2, 4, 8].includes(unroll) || unroll > depth) {
    throw new GpuError(`${name}: unroll must be 1, 2, 4 or 8 and at most the K depth`);
  }
  if (rows % 8 !== 0 || rows > 128 || cols % threadCols !== 0 || cols > 128) {
    throw new GpuError(`${name}: rows must be a multiple of 8 and cols of ${threadCols}, both at most 128`);
  }
  const wgX = cols / threadCols;
  const wgY = rows / 8;
  // Each thread loads a whole number of vec4s of each tile: 1, 2 or 4 (see LOADS_A/LOADS_B in the kernel).
  const loadsA = (rows * depth) / 4 / (wgX * wgY);
  const loadsB = (cols * depth) / 4 / (wgX * wgY);
  if (![1, 2, 4].includes(loadsA) || ![1, 2, 4].includes(loadsB)) {
    throw new GpuError(`${name}: each thread must load 1, 2 or 4 vec4s of A and of B per K tile`);
  }
  const limits = k.gpu.limits;
  if (wgX * wgY > limits.maxComputeInvocationsPerWorkgroup) {
    throw new GpuError(`${name}: ${wgX * wgY} threads exceed this adapter's workgroup limit`);
  }
  const sharedBytes = 2 * 2 * depth * 32 * 16; // tile_a and tile_b: 2 buffers x depth rows x 32 vec4
  if (sharedBytes > limits.maxComputeWorkgroupStorageSize) {
    throw new GpuError(
      `${name}: needs ${sharedBytes} bytes of workgroup memory, this adapter has ` +
        `${limits.maxComputeWorkgroupStorageSize}`,
    );
  }
  return { WG_X: wgX, WG_Y: wgY, COL_GROUPS: threadCols / 4, BK: depth, K_UNROLL: unroll };
}

/** Row strides of A, B and C as stored, and the batch's shape (one product when none is given). */
interface Layout {
  lda: number;
  ldb: number;
  ldc: number;
  count: number;
  inner: number;
  strides: { a: readonly [number, number]; b: readonly [number, number]; c: readonly [number, number] };
}

function layout(options: MatmulOptions): Layout {
  const { m, k, n, transA = false, transB = false, batch } = options;
  const { lda = transA ? m : k, ldb = transB ? k : n, ldc = n } = options;
  const none = [0, 0] as const;
  return {
    lda,
    ldb,
    ldc,
    count: batch?.count ?? 1,
    inner: batch?.inner ?? 1,
    strides: batch ?? { a: none, b: none, c: none },
  };
}

/**
 * Checks that `what`'s rows x cols elements (rows `ld` apart, in every product of the batch) fit in
 * `buffer` from `offset`, and that its rows do not overlap.
 */
function checkExtent(
  what: string,
  buffer: GPUBuffer,
  offset: number,
  [rows, cols, ld]: [number, number, number],
  batch: Layout,
  strides: readonly [number, number],
): void {
  const names = ["offset", "row stride", "batch stride", "inner batch stride"];
  [offset, ld, ...strides].forEach((v, i) => {
    if (!Number.isInteger(v) || v < 0) throw new GpuError(`matmul: ${what} ${names[i]} ${v} is not >= 0`);
  });
  if (ld < cols) throw new GpuError(`matmul: ${what} rows are ${ld} apart, less than their ${cols} elements`);
  const outer = batch.count / batch.inner - 1;
  const last = offset + outer * strides[0] + (batch.inner - 1) * strides[1] + (rows - 1) * ld + cols;
  const type = storageTypeOf(buffer);
  if (last * elementBytes(type) > buffer.size) {
    throw new GpuError(
      `matmul: ${what} needs ${last} ${type} values from its buffer ${buffer.label || ""} of ` +
        `${buffer.size / elementBytes(type)}`,
    );
  }
}

/**
 * Workgroups a product should launch to keep the GPU busy (about four waves): products with fewer tiles of
 * C split K (see kernels/matmul.wgsl).
 */
const FILL_WORKGROUPS = 512;
/** Shallowest K slice of a split: below it the partial sums cost more than the extra parallelism saves. */
const MIN_SPLIT_DEPTH = 512;
const MAX_SPLITS = 16;
/**
 * Tiles for the default choice, largest first, each with the H200's time for one workgroup's pass over a
 * unit of K relative to {@linkcode DEFAULT_MATMUL_TILE}'s, fitted to the TFLOP/s of the three tiles that
 * `deno task bench --shape MxNxK --tile T` measured on an H200 at finetuning's product shapes (listed in
 * tests/model/layers/matmul_test.ts): 64-row tiles do half the work at 0.9x the efficiency, 64x64 a
 * quarter at 0.625x. 64-column tiles, timed on an H100 at the encoder's shapes (35.7 TFLOP/s against
 * 128x128's 41.6, `bench.ts --tile 128x64x8/u8`), do half the work at 0.86x; they serve attention's
 * products with 64 columns (P·V, dQ, dK, dV: one tile a head and sequence where 64x64 takes two; in
 * finetuning too, at 96 and 128 tokens, untimed there). Where N is a multiple of 128 they make at least as
 * many tiles as 64-row tiles at a higher cost, so no other product's tile changes.
 */
const FILL_TILES: readonly { tile: Readonly<MatmulTile>; cost: number }[] = [
  { tile: DEFAULT_MATMUL_TILE, cost: 1 },
  { tile: { ...DEFAULT_MATMUL_TILE, rows: 64 }, cost: 0.55 },
  { tile: { ...DEFAULT_MATMUL_TILE, cols: 64 }, cost: 0.58 },
  { tile: { ...DEFAULT_MATMUL_TILE, rows: 64, cols: 64 }, cost: 0.4 },
];
/**
 * Workgroups of the tiled kernel that run at once: one per SM of a 132-SM H200. Launches run in waves of
 * this many, and a partial last wave costs a whole one, which is what makes a small product pick a smaller
 * tile: 1024 x 768 x 768 makes 48 workgroups of 128x128 (13 TFLOP/s) or 96 of 64x128 (21 TFLOP/s).
 */
const WORKGROUP_SLOTS = 132;

/**
 * The uniform both matmul families take (`MatmulParams`, declared once in kernels/prelude.wgsl): sizes,
 * element offsets, split-K slicing, row strides and batch strides, all u32.
 */
const MATMUL_FIELDS = {
  m: "u32",
  n: "u32",
  k: "u32",
  a_offset: "u32",
  b_offset: "u32",
  c_offset: "u32",
  add_offset: "u32",
  k_chunk: "u32",
  split_stride: "u32",
  splits: "u32",
  lda: "u32",
  ldb: "u32",
  ldc: "u32",
  batch_inner: "u32",
  a_outer: "u32",
  a_inner: "u32",
  b_outer: "u32",
  b_inner: "u32",
  c_outer: "u32",
  c_inner: "u32",
} as const;
const MATMUL_UNIFORMS = {
  matmul: uniformStruct("matmul", "MatmulParams", MATMUL_FIELDS),
  matmul_subgroup_matrix: uniformStruct("matmul_subgroup_matrix", "MatmulParams", MATMUL_FIELDS),
};

/** How a product runs: which kernel, with what constants and grid, split K how many ways. */
interface Plan {
  /** The WGSL file and its entry point. */
  family: "matmul" | "matmul_subgroup_matrix";
  entry: MatmulEntry;
  /** The tiled kernel's tile, or the subgroup-matrix kernel's; null for the general kernel. */
  tile: Readonly<MatmulTile> | Readonly<MatrixTile> | null;
  constants: Constants;
  workgroups: [number, number, number];
  splits: number;
  kChunk: number;
}

function plan(k: Kernels, options: MatmulOptions): Plan {
  const { m, k: depth, n, transA = false, transB = false, accumulate = false, add } = options;
  const { aOffset = 0, bOffset = 0, cOffset = 0, addOffset = 0 } = options;
  const mode = accumulate ? 1 : add ? 2 : 0;
  const { lda, ldb, ldc, count, strides } = layout(options);
  if (usesMatrixUnits(k, options, [m, depth, n, lda, ldb, ldc, ...strides.a, ...strides.b, ...strides.c])) {
    return matrixPlan(k, options, mode, count, splittable(options));
  }
  // The tiled kernel reads A's, B's and C's rows as vec4.
  const aligned = [
    aOffset,
    bOffset,
    cOffset,
    addOffset,
    n,
    transA ? m : depth,
    transB ? depth : n,
    lda,
    ldb,
    ldc,
    ...strides.a,
    ...strides.b,
    ...strides.c,
  ].every((v) => v % 4 === 0);
  if (!aligned) {
    return {
      family: "matmul",
      entry: "matmul_general",
      tile: null,
      constants: { TRANS_A: +transA, TRANS_B: +transB, MODE: mode },
      workgroups: [Math.ceil(n / 16), Math.ceil(m / 16), count],
      splits: 1,
      kChunk: depth,
    };
  }
  const canSplit = splittable(options);
  const tilesOf = (tile: MatmulTile) => Math.ceil(n / tile.cols) * Math.ceil(m / tile.rows) * count;
  const splitsFor = (tiles: number) => splitsToFill(options, tiles, canSplit);
  // The tile with the least modeled time: waves of workgroups times each one's cost over its K slice. All
  // of the crammed model's pretraining products keep the default tile; finetuning's few tokens do not.
  const modeledTime = ({ tile, cost }: (typeof FILL_TILES)[number]) => {
    const splits = splitsFor(tilesOf(tile));
    return Math.ceil(tilesOf(tile) * splits / WORKGROUP_SLOTS) * cost * Math.ceil(depth / splits);
  };
  const tile = options.tile ?? CHOSEN_TILES.get(k) ??
    FILL_TILES.reduce((best, t) => modeledTime(t) < modeledTime(best) ? t : best).tile;
  // Each slice is a whole number of tile pairs.
  const { splits, kChunk } = kSlices(options, splitsFor(tilesOf(tile)), canSplit, 2 * tile.depth);
  const edge = m % tile.rows !== 0 || n % tile.cols !== 0 || depth % kChunk % (2 * tile.depth) !== 0;
  return {
    family: "matmul",
    entry: "matmul_tiled",
    tile,
    constants: {
      TRANS_A: +transA,
      TRANS_B: +transB,
      // A split writes plain partial products; matmul_split_sum applies the mode.
      MODE: splits > 1 ? 0 : mode,
      ...tileConstants(k, tile),
      EDGE: +edge,
    },
    workgroups: [Math.ceil(n / tile.cols), Math.ceil(m / tile.rows), splits * count],
    splits,
    kChunk,
  };
}

/** Split partial products are summed as contiguous [m, n] slices: one product, C's rows unstrided. */
function splittable(options: MatmulOptions): boolean {
  return (options.batch?.count ?? 1) === 1 && (options.ldc ?? options.n) === options.n;
}

/** Split-K ways that bring `tiles` workgroups to about FILL_WORKGROUPS, or `options.splits` when given. */
function splitsToFill(options: MatmulOptions, tiles: number, canSplit: boolean): number {
  let splits = options.splits ?? 1;
  if (options.splits === undefined && canSplit) {
    while (
      tiles * splits < FILL_WORKGROUPS && options.k / (2 * splits) >= MIN_SPLIT_DEPTH && splits < MAX_SPLITS
    ) {
      splits *= 2;
    }
  }
  return splits;
}

/** K slices of whole multiples of `unit`; recounting drops slices that would be empty. */
function kSlices(
  options: MatmulOptions,
  wanted: number,
  canSplit: boolean,
  unit: number,
): { splits: number; kChunk: number } {
  if (!Number.isInteger(wanted) || wanted < 1) {
    throw new GpuError(`matmul: splits = ${wanted}, expected >= 1`);
  }
  if (wanted > 1 && !canSplit) throw new GpuError("matmul: a batched or strided C cannot split K");
  const kChunk = Math.ceil(options.k / wanted / unit) * unit;
  return { splits: Math.ceil(options.k / kChunk), kChunk };
}

/**
 * Whether a product runs on the matrix units: the device has f16 subgroup matrices, A and B are stored
 * f16, no f32 tile was asked for, and every size, offset and stride is a multiple of 8 elements (the
 * kernel loads 16 bytes at a time).
 */
function usesMatrixUnits(k: Kernels, options: MatmulOptions, sizes: readonly number[]): boolean {
  const { a, b, aOffset = 0, bOffset = 0, cOffset = 0, addOffset = 0 } = options;
  return k.gpu.subgroupMatrix !== null && options.tile === undefined &&
    storageTypeOf(a) === "f16" && storageTypeOf(b) === "f16" &&
    [aOffset, bOffset, cOffset, addOffset, ...sizes].every((v) => v % 8 === 0);
}

/** The subgroup-matrix kernel's plan (see {@linkcode usesMatrixUnits}). */
function matrixPlan(
  k: Kernels,
  options: MatmulOptions,
  mode: number,
  count: number,
  canSplit: boolean,
): Plan {
  const { m, k: depth, n, transA = false, transB = false } = options;
  const tile = options.matrixTile ??
    (matrixTileBytes(k, DEFAULT_MATRIX_TILE) <= k.gpu.limits.maxComputeWorkgroupStorageSize
      ? DEFAULT_MATRIX_TILE
      : SHALLOW_MATRIX_TILE);
  const constants = matrixTileConstants(k, tile);
  const { rows, cols, depth: kTile } = matrixTileSize(k, tile);
  const tiles = Math.ceil(m / rows) * Math.ceil(n / cols) * count;
  const { splits, kChunk } = kSlices(options, splitsToFill(options, tiles, canSplit), canSplit, kTile);
  const edge = m % rows !== 0 || n % cols !== 0 || depth % kChunk % kTile !== 0;
  return {
    family: "matmul_subgroup_matrix",
    entry: "matmul_subgroup_matrix",
    tile,
    constants: {
      TRANS_A: +transA,
      TRANS_B: +transB,
      MODE: splits > 1 ? 0 : mode,
      EDGE: +edge,
      ...constants,
    },
    workgroups: [Math.ceil(n / cols), Math.ceil(m / rows), splits * count],
    splits,
    kChunk,
  };
}

/** Override constants of the subgroup-matrix kernel for `tile`, or a GpuError saying which rule it breaks. */
function matrixTileConstants(k: Kernels, tile: MatrixTile): Constants {
  const name = `matrix tile ${formatMatrixTile(tile)}`;
  const [sgRows, sgCols] = tile.subgroups;
  const [fragM, fragN] = tile.fragments;
  const { steps } = tile;
  if (![sgRows, sgCols, steps].every((v) => Number.isInteger(v) && v >= 1)) {
    throw new GpuError(`${name}: subgroups and steps must be positive integers`);
  }
  if (![fragM, fragN].every((f) => [1, 2, 4].includes(f))) {
    throw new GpuError(`${name}: fragments per subgroup must be 1, 2 or 4 each way`);
  }
  const threads = sgRows * sgCols * k.gpu.subgroupSize;
  const { rows: bm, cols: bn, depth: bk } = matrixTileSize(k, tile);
  // Each thread makes 1, 2, 4 or 8 loads of 16 bytes of A and of B per K tile (the kernel's LOADS_A/B).
  const loads = [bm * bk / 8 / threads, bn * bk / 8 / threads];
  if (!loads.every((l) => [1, 2, 4, 8].includes(l))) {
    throw new GpuError(`${name}: each thread must load 1, 2, 4 or 8 times 8 halves of A and of B per K tile`);
  }
  const limits = k.gpu.limits;
  if (threads > limits.maxComputeInvocationsPerWorkgroup) {
    throw new GpuError(`${name}: ${threads} threads exceed this adapter's workgroup limit`);
  }
  const shared = matrixTileBytes(k, tile);
  if (shared > limits.maxComputeWorkgroupStorageSize) {
    throw new GpuError(
      `${name}: needs up to ${shared} bytes of workgroup memory, this adapter has ` +
        `${limits.maxComputeWorkgroupStorageSize}`,
    );
  }
  return { SG_ROWS: sgRows, SG_COLS: sgCols, FRAG_M: fragM, FRAG_N: fragN, K_STEPS: steps, PAD: MATRIX_PAD };
}

/** The elements of C (rows x cols) a workgroup computes with `tile`, over K tiles of `depth`. */
function matrixTileSize(k: Kernels, tile: MatrixTile): { rows: number; cols: number; depth: number } {
  const shape = k.gpu.subgroupMatrix!;
  return {
    rows: tile.subgroups[0] * tile.fragments[0] * shape.m,
    cols: tile.subgroups[1] * tile.fragments[1] * shape.n,
    depth: tile.steps * shape.k,
  };
}

/** Halves of padding per row of a staged tile: 16 bytes, against bank conflicts of the fragment loads. */
const MATRIX_PAD = 8;

/**
 * Workgroup memory of the subgroup-matrix kernel with `tile`, at most (either layout): double-buffered f16
 * tiles of A and B with padded rows, and one f32 fragment per subgroup.
 */
function matrixTileBytes(k: Kernels, tile: MatrixTile): number {
  const shape = k.gpu.subgroupMatrix!;
  const { rows: bm, cols: bn, depth: bk } = matrixTileSize(k, tile);
  const aHalves = Math.max(bm * (bk + MATRIX_PAD), bk * (bm + MATRIX_PAD));
  const bHalves = Math.max(bn * (bk + MATRIX_PAD), bk * (bn + MATRIX_PAD));
  return 2 * 2 * (aHalves + bHalves) + 4 * tile.subgroups[0] * tile.subgroups[1] * shape.m * shape.n;
}

/** The entry points that run a product: matmul_tiled and matmul_general in matmul.wgsl, and the tensor-core one. */
export type MatmulEntry = "matmul_tiled" | "matmul_general" | "matmul_subgroup_matrix";

/** What runs a product: the kernel's entry point, its tile (null for the general kernel) and split-K ways. */
export interface MatmulKernel {
  kernel: MatmulEntry;
  /** {@linkcode formatMatmulTile} or {@linkcode formatMatrixTile} of the tile; null for the general kernel. */
  tile: string | null;
  splits: number;
}

/** How the wrapper runs `options`: which kernel, with what tile, split K how many ways. */
export function matmulKernel(k: Kernels, options: MatmulOptions): MatmulKernel {
  const { entry, tile, splits } = plan(k, options);
  return {
    kernel: entry,
    tile: tile === null ? null : "subgroups" in tile ? formatMatrixTile(tile) : formatMatmulTile(tile),
    splits,
  };
}

/**
 * Bytes of scratch a product needs for its split-K partial sums (0 when it does not split K). Products
 * recorded in sequence may share one scratch buffer of the largest size.
 */
export function matmulScratchBytes(k: Kernels, options: MatmulOptions): number {
  const { splits } = plan(k, options);
  return splits > 1 ? splits * options.m * options.n * 4 : 0;
}

/**
 * Plans C = op(A) op(B) (or C += ..., or C = ADD + ...). Compiles the pipelines and makes the uniform
 * and bind groups now; the returned dispatches are recorded into every step unchanged. A product that
 * splits K (see {@linkcode matmulScratchBytes}) writes its partial sums to `options.scratch`, or to a
 * scratch buffer of its own when none is given.
 */
export async function matmul(k: Kernels, options: MatmulOptions): Promise<Dispatch[]> {
  const { a, b, c, m, k: depth, n, transA = false, transB = false, accumulate = false, add } = options;
  const { aOffset = 0, bOffset = 0, cOffset = 0, addOffset = 0 } = options;
  for (const [name, v] of [["m", m], ["k", depth], ["n", n]] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new GpuError(`matmul: ${name} = ${v}, expected a positive integer`);
    }
  }
  if (accumulate && add) throw new GpuError("matmul: accumulate and add exclude each other");
  if (c === a || c === b || c === add) {
    throw new GpuError("matmul: c must be a buffer other than a, b and add");
  }
  const shape = layout(options);
  const { lda, ldb, ldc, count, inner, strides } = shape;
  if (options.batch) {
    if (!Number.isInteger(count) || count < 1 || !Number.isInteger(inner) || inner < 1 || count % inner) {
      throw new GpuError(
        `matmul: batch of ${count} products, ${inner} per outer index: expected a whole number`,
      );
    }
    if (add) throw new GpuError("matmul: a batch cannot add a matrix");
    const limit = k.gpu.limits.maxComputeWorkgroupsPerDimension;
    if (count > limit) throw new GpuError(`matmul: batch of ${count} products, at most ${limit}`);
  }
  checkExtent("a", a, aOffset, transA ? [depth, m, lda] : [m, depth, lda], shape, strides.a);
  checkExtent("b", b, bOffset, transB ? [n, depth, ldb] : [depth, n, ldb], shape, strides.b);
  checkExtent("c", c, cOffset, [m, n, ldc], shape, strides.c);
  if (add) checkExtent("add", add, addOffset, [m, n, ldc], shape, strides.c);

  const { family, entry, constants, workgroups, splits, kChunk } = plan(k, options);
  const types = storageTypes(add ? { A_T: a, B_T: b, C_T: c, ADD_T: add } : { A_T: a, B_T: b, C_T: c });
  // The subgroup-matrix kernel reads A and B as f16 always: they have no alias there.
  const operandTypes = (t: StorageTypes): StorageTypes => {
    if (family === "matmul") return t;
    const { A_T: _a, B_T: _b, ...rest } = t;
    return rest;
  };
  const gpu = k.gpu;
  const what = `matmul ${m}x${n}x${depth}${transA ? " transA" : ""}${transB ? " transB" : ""}` +
    (count > 1 ? ` x${count}` : "");
  const values = {
    m,
    n,
    k: depth,
    a_offset: aOffset,
    b_offset: bOffset,
    c_offset: cOffset,
    add_offset: addOffset,
    k_chunk: kChunk,
    split_stride: m * n,
    splits,
    lda,
    ldb,
    ldc,
    batch_inner: inner,
    a_outer: strides.a[0],
    a_inner: strides.a[1],
    b_outer: strides.b[0],
    b_inner: strides.b[1],
    c_outer: strides.c[0],
    c_inner: strides.c[1],
  };
  // A split writes its partial products to the f32 scratch; the sum stores them as C's type.
  const pipeline = await k.pipeline(
    family,
    entry,
    constants,
    operandTypes(splits > 1 ? { A_T: types.A_T, B_T: types.B_T } : types),
  );
  if (splits === 1) {
    return await checked(gpu, what, () => {
      const uniforms = uniformBuffer(k, MATMUL_UNIFORMS[family], `${what} uniforms`, values);
      // Binding 4 is read only when adding; otherwise B stands in (read-only, so no usage conflict).
      return [dispatch(gpu, pipeline, [uniforms, a, b, c, add ?? b], workgroups)];
    });
  }
  const scratchBytes = splits * m * n * 4;
  if (options.scratch && options.scratch.size < scratchBytes) {
    throw new GpuError(`matmul: scratch holds ${options.scratch.size} bytes, ${what} needs ${scratchBytes}`);
  }
  if (options.scratch && [a, b, c, add].includes(options.scratch)) {
    throw new GpuError("matmul: scratch must be a buffer of its own");
  }
  const sumTypes: StorageTypes = { C_T: types.C_T };
  if (add) sumTypes.ADD_T = types.ADD_T;
  const sum = await k.pipeline(
    "matmul",
    "matmul_split_sum",
    { MODE: accumulate ? 1 : add ? 2 : 0 },
    sumTypes,
  );
  return await checked(gpu, what, () => {
    const scratch = options.scratch ?? storageBuffer(gpu, `${what} split-K partials`, scratchBytes);
    // The partial products start at the scratch buffer's beginning.
    const partialUniforms = uniformBuffer(k, MATMUL_UNIFORMS[family], `${what} partial uniforms`, {
      ...values,
      c_offset: 0,
    });
    const sumUniforms = uniformBuffer(k, MATMUL_UNIFORMS.matmul, `${what} sum uniforms`, values);
    return [
      dispatch(gpu, pipeline, [partialUniforms, a, b, scratch, b], workgroups),
      dispatch(gpu, sum, [sumUniforms, scratch, c, add ?? scratch], [Math.ceil((m * n) / 4 / 256)]),
    ];
  });
}
