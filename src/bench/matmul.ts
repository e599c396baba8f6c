/**
 * Matmul benchmark: TFLOP/s of back-to-back products in one submit, and the error of sampled entries
 * against float64, as in /work/shared/notes/wgsl-matmul-h200.md.
 *
 * @module
 */
import { readF32, storageBuffer, type StorageType, uploadBuffer } from "../gpu/buffers.ts";
import { type Kernels, submitDispatches } from "../gpu/kernels.ts";
import {
  matmul,
  matmulKernel,
  matmulScratchBytes,
  type MatmulTile,
  type MatrixTile,
} from "../model/layers/matmul.ts";
import { timeDispatches, type TimingOptions } from "./timing.ts";
import { BERT_MASK_RATE, maxLabels } from "../train/masking.ts";

/** NN: C = A B; NT: C = A B^T (forward projections); TN: C = A^T B (weight gradients). */
export type MatmulLayout = "NN" | "NT" | "TN";

export interface MatmulShape {
  /** What the product is in the model, e.g. "qkv". */
  name: string;
  layout: MatmulLayout;
  m: number;
  n: number;
  k: number;
}

export interface MatmulBenchOptions extends TimingOptions {
  /** Tiled-kernel split to use instead of the wrapper's default (also keeps f16 operands off the matrix units). */
  tile?: MatmulTile;
  /** Subgroup-matrix kernel split to use instead of the wrapper's default. */
  matrixTile?: MatrixTile;
  /** Split-K ways instead of the wrapper's choice. */
  splits?: number;
  /**
   * How A and B are stored (default f32; C stays f32): f16 measures what `--precision f16` costs the
   * products, its operands' loads widened to f32 in the kernel.
   */
  operands?: StorageType;
}

/** One JSON line of `deno task bench`. */
export interface MatmulResult {
  kernel: string;
  layout: MatmulLayout;
  name: string;
  m: number;
  n: number;
  k: number;
  tile: string | null;
  /** Split-K ways (1: not split). */
  splits: number;
  operands: StorageType;
  tflops: number;
  /** Largest absolute error over 64 sampled entries of C divided by their RMS, against float64. */
  rel_err: number;
}

/** Dimensions of the crammed model whose products {@linkcode modelShapes} lists. */
export interface ModelDims {
  tokens: number;
  hidden: number;
  ffn: number;
  vocab: number;
  /** Rows of the sparse MLM head per micro-batch: the most masked tokens it can have. */
  masked: number;
  /** Side of the square reference product. */
  cube: number;
}

/** Crammed BERT at micro-batch 128 x seq 128. */
export const CRAMMED_DIMS: ModelDims = {
  tokens: 16384,
  hidden: 768,
  ffn: 3072,
  vocab: 32768,
  masked: maxLabels(128, 128, BERT_MASK_RATE),
  cube: 4096,
};

/** The same products scaled down for the CPU adapter (tokens / 64, features / 8). */
export const SMALL_DIMS: ModelDims = {
  tokens: 256,
  hidden: 96,
  ffn: 384,
  vocab: 4096,
  masked: maxLabels(2, 128, BERT_MASK_RATE),
  cube: 512,
};

/**
 * Every product of a training step: per projection [in -> out], the forward y = x W^T (NT),
 * the input gradient dx = dy W (NN) and the weight gradient dW = dy^T x (TN); then the same for the
 * tied MLM decoder on the masked rows, and a square product in each layout.
 */
export function modelShapes(d: ModelDims): MatmulShape[] {
  // [name, rows, in, out] of each y[rows, out] = x[rows, in] W[out, in]^T.
  const products: [string, number, number, number][] = [
    ["qkv", d.tokens, d.hidden, 3 * d.hidden],
    ["attn_out", d.tokens, d.hidden, d.hidden],
    ["ffn_up", d.tokens, d.hidden, d.ffn],
    ["ffn_down", d.tokens, d.ffn, d.hidden],
    ["mlm_decoder", d.masked, d.hidden, d.vocab],
  ];
  const shapes: MatmulShape[] = [];
  for (const [name, rows, inF, outF] of products) {
    shapes.push({ name, layout: "NT", m: rows, n: outF, k: inF });
    shapes.push({ name, layout: "NN", m: rows, n: inF, k: outF });
    shapes.push({ name, layout: "TN", m: outF, n: inF, k: rows });
  }
  for (const layout of ["NN", "NT", "TN"] as const) {
    shapes.push({ name: "cube", layout, m: d.cube, n: d.cube, k: d.cube });
  }
  return shapes;
}

/** Uniform values in [-1, 1) from a seeded xorshift generator (fast enough for 50M values). */
function uniform(length: number, seed: number): Float32Array<ArrayBuffer> {
  const out = new Float32Array(length);
  let s = seed | 1;
  for (let i = 0; i < length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = (s >>> 0) / 2147483648 - 1;
  }
  return out;
}

/** Times one shape; see {@linkcode benchMatmul}. */
async function benchMatmulShape(
  k: Kernels,
  shape: MatmulShape,
  options: MatmulBenchOptions = {},
): Promise<MatmulResult> {
  const { layout, m, n, k: depth } = shape;
  const transA = layout === "TN";
  const transB = layout === "NT";
  const gpu = k.gpu;
  const operands = options.operands ?? "f32";
  // f16 operands: the float64 check multiplies the rounded values the kernel reads.
  const stored = (v: Float32Array<ArrayBuffer>) => operands === "f16" ? Float16Array.from(v) : v;
  const a = Float32Array.from(stored(uniform(m * depth, 1)));
  const b = Float32Array.from(stored(uniform(depth * n, 2)));
  const bufA = uploadBuffer(gpu, "bench a", stored(a));
  const bufB = uploadBuffer(gpu, "bench b", stored(b));
  const bufC = storageBuffer(gpu, "bench c", m * n * 4);
  const product = {
    ...{ a: bufA, b: bufB, c: bufC, m, k: depth, n, transA, transB },
    ...{ tile: options.tile, matrixTile: options.matrixTile, splits: options.splits },
  };
  const { tile } = matmulKernel(k, product);
  const scratch = storageBuffer(gpu, "bench scratch", matmulScratchBytes(k, product));
  try {
    const dispatches = await matmul(k, { ...product, scratch });
    const { seconds } = await timeDispatches(gpu, dispatches, options);
    const tflops = (2 * m * n * depth) / seconds / 1e12;

    submitDispatches(gpu, dispatches);
    const c = await readF32(gpu, bufC, m * n);
    const kernel = dispatches[0].pipeline.label.replace(/^[a-z_]+\./, "");
    return {
      kernel,
      layout,
      name: shape.name,
      m,
      n,
      k: depth,
      tile,
      splits: dispatches[0].workgroups[2] ?? 1,
      operands,
      tflops: +tflops.toPrecision(4),
      rel_err: +sampledError(a, b, c, shape).toPrecision(3),
    };
  } finally {
    bufA.destroy();
    bufB.destroy();
    bufC.destroy();
    scratch.destroy();
  }
}

/** Max |C - C64| over 64 sampled entries divided by the RMS of those C64 entries. */
function sampledError(a: Float32Array, b: Float32Array, c: Float32Array, shape: MatmulShape): number {
  const { layout, m, n, k } = shape;
  const pick = uniform(128, 3);
  let maxErr = 0;
  let sumSq = 0;
  for (let s = 0; s < 64; s++) {
    const i = Math.floor(((pick[2 * s] + 1) / 2) * m);
    const j = Math.floor(((pick[2 * s + 1] + 1) / 2) * n);
    let exact = 0;
    for (let p = 0; p < k; p++) {
      const av = layout === "TN" ? a[p * m + i] : a[i * k + p];
      const bv = layout === "NT" ? b[j * k + p] : b[p * n + j];
      exact += av * bv;
    }
    maxErr = Math.max(maxErr, Math.abs(c[i * n + j] - exact));
    sumSq += exact * exact;
  }
  return maxErr / Math.sqrt(sumSq / 64);
}

/** Benchmarks each shape in turn, yielding its result as soon as it is measured. */
export async function* benchMatmul(
  k: Kernels,
  shapes: readonly MatmulShape[],
  options: MatmulBenchOptions = {},
): AsyncGenerator<MatmulResult> {
  for (const shape of shapes) yield await benchMatmulShape(k, shape, options);
}
