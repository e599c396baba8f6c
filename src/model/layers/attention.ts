/**
 * Multi-head self-attention: forward from the fused QKV projection, backward to its gradient. Its
 * products (two forward, four backward) run as batched matmuls (one product per (sequence, head), through the
 * tiled matmul kernel), with the softmax and its backward in kernels/attention.wgsl between them.
 *
 * The forward saves the full probabilities [batch, heads, seq, seq] rather than only the softmax row
 * statistics: at the crammed shape that is 100 MB per layer in f32 (1.6 GB for 16 layers, well inside an
 * H200; half that in f16), and it spares the backward the recomputation of QK^T. The backward also needs
 * a `scratch` of the same size for the probabilities' gradient, which all layers can share.
 *
 * Finetuning drops attention probabilities (`dropout`): the forward saves the probabilities before
 * dropout and multiplies the dropped ones (in `scratch`) by V; the backward rebuilds them from the same
 * seed, so nothing more is stored per layer.
 *
 * Every float buffer may be stored as f32 or f16, each as it was created (see `storageBuffer`): the
 * kernels compute in f32 and round to f16 when they store.
 */
import { storageBuffer } from "../../gpu/buffers.ts";
import { GpuError } from "../../gpu/device.ts";
import { dispatch, rowLanes, storageTypes, uniformBuffer } from "../../gpu/kernels.ts";
import type { Dispatch, Kernels } from "../../gpu/kernels.ts";
import { uniformStruct } from "../../gpu/uniforms.ts";
import { checkDropoutSite, dropoutThreshold } from "./dropout.ts";
import { matmul, type MatmulOptions } from "./matmul.ts";
import { checkBuffer, checkFloats, checkMultiple, flatGrid } from "./plan.ts";
import {
  type BenchShape,
  benchTokens,
  type CaseBuffers,
  f32Bytes as f32,
  type KernelCase,
} from "../../bench/case.ts";
import { headDim as headDimOf } from "../config.ts";

/** Shapes of one attention layer. */
export interface AttentionShape {
  batch: number;
  /** Tokens per sequence. */
  seq: number;
  heads: number;
  headDim: number;
  /** Probability dropout (finetuning); give the forward and the backward the same. Absent: none. */
  dropout?: ProbsDropout;
  /**
   * Invocations that share a row of scores in the softmax passes, for tuning: a power of two up to 256
   * (default {@linkcode SOFTMAX_LANES}). Fewer lanes mean fewer reduction steps. On a device with
   * subgroups a row's lanes reduce by shuffles within one subgroup, so more lanes than the smallest
   * subgroup are cut to that size.
   */
  lanes?: number;
}

/** Dropout of the attention probabilities, with the mask of the reference's `dropoutKeep`. */
export interface ProbsDropout {
  /** Drop probability, in [0, 1). */
  p: number;
  /** u32 seeds of the step's dropout sites, rewritten by the host every step. */
  seeds: GPUBuffer;
  /** This site's index in `seeds`. */
  seedIndex: number;
}

export interface AttentionForwardOptions extends AttentionShape {
  /** [N, 3H]: all q heads, then all k heads, then all v heads. */
  qkv: GPUBuffer;
  /** [N, H], written. */
  out: GPUBuffer;
  /** [batch, heads, seq, seq], written: kept for the backward, which consumes it. */
  probs: GPUBuffer;
  /** [N] u32, 1 for a key to attend and 0 for padding (finetuning); absent: every key is attended. */
  keyMask?: GPUBuffer;
  /** [batch, heads, seq, seq] for the dropped probabilities: needed with `dropout`, shareable. */
  scratch?: GPUBuffer;
}

export interface AttentionBackwardOptions extends AttentionShape {
  /** [N, H]: gradient of the forward's `out`. */
  dout: GPUBuffer;
  /** [N, 3H]: the forward's input. */
  qkv: GPUBuffer;
  /**
   * [batch, heads, seq, seq]: the forward's probabilities (masked keys have probability 0, so the
   * backward needs no mask). Overwritten with the score gradients: the forward must run again before
   * another backward.
   */
  probs: GPUBuffer;
  /** [batch, heads, seq, seq] of scratch, shareable (its contents are not kept). */
  scratch: GPUBuffer;
  /** [N, 3H], written (not accumulated). */
  dqkv: GPUBuffer;
}

const FAMILY = "attention";
/** Invocations per workgroup (see kernels/attention.wgsl). */
const WG = 256;
/**
 * Invocations per row of scores by default, by how a row's lanes reduce; the fastest at the crammed
 * shape (`bench.ts --kernels --gpu builtin --softmax-lanes N`). With subgroups, on an H100: the forward
 * 77.0 µs at 8 lanes, 71.5 at 16, 69.9 at 32 (softmax_forward_resident; at 4 the two-pass kernel, 169.3),
 * the backward 184.9 µs at 8, 128.9 at 16, 120.6 at 32. With the workgroup-memory tree, on the H200: the
 * forward 97.6 µs at 8 lanes (16: 108.9, 32: 133.5; the two-pass kernel), the backward 114.3 µs at 32
 * (16: 117.8, 8: 149.0).
 */
const SOFTMAX_LANES = {
  subgroups: { forward: 32, backward: 32 },
  workgroup: { forward: 8, backward: 32 },
};
/**
 * vec4s of a row of scores each lane holds in softmax_forward_resident (RESIDENT_VEC4 in
 * kernels/attention.wgsl), which reads the row once: rows of a multiple of 4 keys up to 16 per lane take it
 * (128 at 8 lanes, 512 at 32), longer or ragged ones softmax_forward, which reads the row twice.
 */
const RESIDENT_VEC4 = 4;
/** The softmax kernels' uniform (see kernels/attention.wgsl); the drop fields are 0 without dropout. */
const UNIFORMS = uniformStruct(FAMILY, "Uniforms", {
  rows: "u32",
  heads: "u32",
  hasMask: "u32",
  scale: "f32",
  dropThreshold: "u32",
  dropScale: "f32",
  seedIndex: "u32",
});

/** Records the attention forward: probs and out from qkv. */
export async function attentionForward(k: Kernels, args: AttentionForwardOptions): Promise<Dispatch[]> {
  const gpu = k.gpu;
  const plan = planAttention(k, args, "forward");
  checkFloats("attention qkv", args.qkv, plan.tokens * 3 * plan.hidden);
  checkFloats("attention out", args.out, plan.tokens * plan.hidden);
  checkFloats("attention probs", args.probs, plan.probsCount);
  if (args.keyMask) checkBuffer("attention keyMask", args.keyMask, plan.tokens * 4);
  if (args.dropout && !args.scratch) throw new GpuError("attention dropout needs a scratch buffer");
  if (args.scratch) checkFloats("attention scratch", args.scratch, plan.probsCount);
  // WebGPU binds every declared binding: without a mask or dropout the kernel gets a vec4 it never reads.
  const keyMask = args.keyMask ?? storageBuffer(gpu, "attention.noKeyMask", 16);
  const dropped = args.dropout ? args.scratch! : storageBuffer(gpu, "attention.noDropped", 16);
  const softmax = await k.pipeline(
    FAMILY,
    plan.resident ? "softmax_forward_resident" : "softmax_forward",
    plan.constants,
    storageTypes({ P_T: args.probs, D_T: dropped }),
  );
  const products = plan.products;
  return [
    // scores = q k^T
    ...await matmul(k, {
      ...products.rowsByRows,
      a: args.qkv,
      b: args.qkv,
      c: args.probs,
      bOffset: plan.hidden,
    }),
    dispatch(gpu, softmax, [
      plan.uniforms(args.keyMask ? 1 : 0),
      args.probs,
      plan.seeds,
      keyMask,
      dropped,
    ], plan.grid),
    // out = probs v
    ...await matmul(k, {
      ...products.probsTimesRows,
      // out = dropped v with dropout.
      a: args.dropout ? dropped : args.probs,
      b: args.qkv,
      bOffset: 2 * plan.hidden,
      ldb: 3 * plan.hidden,
      c: args.out,
      ldc: plan.hidden,
      batch: { ...products.batch, b: products.qkvStrides, c: products.hiddenStrides },
    }),
  ];
}

/** Records the attention backward: dqkv from dout, overwriting probs (see {@linkcode AttentionBackwardOptions}). */
export async function attentionBackward(k: Kernels, args: AttentionBackwardOptions): Promise<Dispatch[]> {
  const gpu = k.gpu;
  const plan = planAttention(k, args, "backward");
  const { hidden, products } = plan;
  checkFloats("attention backward dout", args.dout, plan.tokens * hidden);
  checkFloats("attention backward qkv", args.qkv, plan.tokens * 3 * hidden);
  checkFloats("attention backward probs", args.probs, plan.probsCount);
  checkFloats("attention backward scratch", args.scratch, plan.probsCount);
  checkFloats("attention backward dqkv", args.dqkv, plan.tokens * 3 * hidden);
  const [softmax, rebuild] = await Promise.all([
    k.pipeline(
      FAMILY,
      "softmax_backward",
      plan.constants,
      storageTypes({ P_T: args.probs, G_T: args.scratch }),
    ),
    k.pipeline(FAMILY, "dropped_probs", plan.constants, storageTypes({ P_T: args.probs, R_T: args.scratch })),
  ]);
  const intoDqkv = (section: number) => ({
    c: args.dqkv,
    cOffset: section * hidden,
    ldc: 3 * hidden,
  });
  const rowsFromQkv = (section: number) => ({
    b: args.qkv,
    bOffset: section * hidden,
    ldb: 3 * hidden,
  });
  const withRows = (b: readonly [number, number], c: readonly [number, number]) => ({
    batch: { ...products.batch, b, c },
  });
  const { qkvStrides, hiddenStrides } = products;
  return [
    // The dropped probabilities again, for dV.
    ...(args.dropout
      ? [dispatch(gpu, rebuild, [plan.uniforms(0), args.probs, plan.seeds, args.scratch], plan.elementGrid)]
      : []),
    // dV = dropped^T dO
    ...await matmul(k, {
      ...products.probsTimesRows,
      transA: true,
      a: args.dropout ? args.scratch : args.probs,
      b: args.dout,
      ldb: hidden,
      ...intoDqkv(2),
      ...withRows(hiddenStrides, qkvStrides),
    }),
    // grads = dO v^T
    ...await matmul(k, {
      ...products.rowsByRows,
      a: args.dout,
      lda: hidden,
      ...rowsFromQkv(2),
      c: args.scratch,
      batch: { ...products.rowsByRows.batch!, a: hiddenStrides },
    }),
    dispatch(gpu, softmax, [plan.uniforms(0), args.probs, plan.seeds, args.scratch], plan.grid),
    // dQ = dS k
    ...await matmul(k, {
      ...products.probsTimesRows,
      a: args.probs,
      ...rowsFromQkv(1),
      ...intoDqkv(0),
      ...withRows(qkvStrides, qkvStrides),
    }),
    // dK = dS^T q
    ...await matmul(k, {
      ...products.probsTimesRows,
      transA: true,
      a: args.probs,
      ...rowsFromQkv(0),
      ...intoDqkv(1),
      ...withRows(qkvStrides, qkvStrides),
    }),
  ];
}

/** The two product shapes of attention, as batched matmul options without their buffers. */
interface AttentionProducts {
  /** [seq, headDim] rows times [seq, headDim] rows transposed, into [seq, seq] scores. */
  rowsByRows: Omit<MatmulOptions, "a" | "b" | "c">;
  /** [seq, seq] scores (or their transpose) times [seq, headDim] rows. */
  probsTimesRows: Omit<MatmulOptions, "a" | "b" | "c">;
  /** The batch over (sequence, head) with the scores' strides as A. */
  batch: { count: number; inner: number; a: readonly [number, number] };
  /** Strides of one head's rows in [N, 3H] and in [N, H]. */
  qkvStrides: readonly [number, number];
  hiddenStrides: readonly [number, number];
}

interface AttentionPlan {
  tokens: number;
  hidden: number;
  /** Elements of probs and scratch. */
  probsCount: number;
  products: AttentionProducts;
  constants: Record<string, number>;
  /** Whether the forward's rows fit softmax_forward_resident (see RESIDENT_VEC4). */
  resident: boolean;
  /** Row kernels' grid, and the element-wise kernel's. */
  grid: [number, number];
  elementGrid: [number, number];
  /** The kernels' uniform, with the key mask flag. */
  uniforms: (hasMask: number) => GPUBuffer;
  /** The seeds binding, or a placeholder word (WebGPU binds every declared binding). */
  seeds: GPUBuffer;
}

function planAttention(k: Kernels, shape: AttentionShape, pass: "forward" | "backward"): AttentionPlan {
  const gpu = k.gpu;
  const { batch, seq, heads, headDim, dropout } = shape;
  const asked = shape.lanes ?? SOFTMAX_LANES[gpu.hasSubgroups ? "subgroups" : "workgroup"][pass];
  checkMultiple("attention batch", batch, 1);
  checkMultiple("attention seq", seq, 1);
  checkMultiple("attention heads", heads, 1);
  checkMultiple("attention headDim", headDim, 1);
  if (!(Number.isInteger(asked) && asked >= 1 && asked <= WG && (asked & (asked - 1)) === 0)) {
    throw new GpuError(`attention lanes = ${asked}, expected a power of two from 1 to ${WG}`);
  }
  const lanes = rowLanes(gpu, asked, "attention");
  if (dropout) checkDropoutSite("attention dropout", dropout);
  const tokens = batch * seq;
  const hidden = heads * headDim;
  const rows = batch * heads * seq;
  const scoreStrides = [heads * seq * seq, seq * seq] as const;
  const qkvStrides = [seq * 3 * hidden, headDim] as const;
  const hiddenStrides = [seq * hidden, headDim] as const;
  const count = batch * heads;
  const seeds = dropout?.seeds ?? storageBuffer(gpu, "attention.noSeeds", 4);
  const scale = 1 / Math.sqrt(headDim);
  return {
    tokens,
    hidden,
    probsCount: rows * seq,
    products: {
      rowsByRows: {
        m: seq,
        n: seq,
        k: headDim,
        transB: true,
        lda: 3 * hidden,
        ldb: 3 * hidden,
        batch: { count, inner: heads, a: qkvStrides, b: qkvStrides, c: scoreStrides },
      },
      probsTimesRows: { m: seq, n: headDim, k: seq },
      batch: { count, inner: heads, a: scoreStrides },
      qkvStrides,
      hiddenStrides,
    },
    constants: { SEQ: seq, LANES: lanes, WG, PROBS_DROPOUT: dropout ? 1 : 0 },
    resident: seq % 4 === 0 && seq <= 4 * RESIDENT_VEC4 * lanes,
    grid: flatGrid(gpu, Math.ceil(rows / (WG / lanes))),
    elementGrid: flatGrid(gpu, Math.ceil((rows * seq) / WG)),
    uniforms: (hasMask) =>
      uniformBuffer(k, UNIFORMS, "attention uniforms", {
        rows,
        heads,
        hasMask,
        scale,
        ...(dropout
          ? {
            dropThreshold: dropoutThreshold(dropout.p),
            dropScale: 1 / (1 - dropout.p),
            seedIndex: dropout.seedIndex,
          }
          : { dropThreshold: 0, dropScale: 0, seedIndex: 0 }),
      }),
    seeds,
  };
}

/**
 * Attention's benchmark cases (timed by src/bench/kernels.ts): the forward and backward with their
 * batched products, and the softmax passes alone, at `shape.softmaxLanes` lanes per row of scores.
 */
export function attentionBenchCases(shape: BenchShape): KernelCase[] {
  const { config, microBatch: B } = shape;
  const { hidden: H, heads, maxSeqLen: S } = config;
  const N = benchTokens(shape);
  const d = headDimOf(config);
  const probs = B * heads * S * S;
  const attentionShape = { batch: B, seq: S, heads, headDim: d, lanes: shape.softmaxLanes };
  const attentionDims = `${B}x${heads}x${S}x${d}`;
  // One S x S x d product per (batch, head) is 2 S^2 d FLOPs.
  const product = 2 * B * heads * S * S * d;
  const forward = (k: Kernels, b: CaseBuffers) =>
    attentionForward(k, {
      ...attentionShape,
      qkv: b.random("qkv", 3 * N * H),
      out: b.zeros("out", N * H),
      probs: b.random("probs", probs),
    });
  const backward = (k: Kernels, b: CaseBuffers) =>
    attentionBackward(k, {
      ...attentionShape,
      dout: b.random("dout", N * H),
      qkv: b.random("qkv", 3 * N * H),
      probs: b.random("probs", probs),
      scratch: b.random("scratch", probs),
      dqkv: b.zeros("dqkv", 3 * N * H),
    });
  // The softmax passes alone (the attention family's dispatches; the rest are matmuls).
  const softmaxOnly = async (dispatches: Promise<Dispatch[]>) =>
    (await dispatches).filter((one) => one.pipeline.label.startsWith(`${FAMILY}.`));
  return [{
    name: "attention_forward",
    shape: attentionDims,
    // Scores: q, k read, written. Softmax: scores read, probs written. Out: probs and v read, out written.
    bytes: f32(4 * N * H + 4 * probs),
    // Scores Q K^T and out = P V.
    flops: 2 * product,
    plan: forward,
  }, {
    name: "attention_backward",
    shape: attentionDims,
    // dV: probs, dout read, dV written. Grads: dout, v read, grads written. Softmax: probs, grads read,
    // dS written. dQ: dS, k read, dQ written. dK: dS, q read, dK written.
    bytes: f32(8 * N * H + 7 * probs),
    // dV = P^T dO, dO V^T, dQ = dS K, dK = dS^T Q.
    flops: 4 * product,
    plan: backward,
  }, {
    name: "softmax_forward",
    shape: attentionDims,
    // Scores read, probs written in place.
    bytes: f32(2 * probs),
    flops: null,
    plan: (k, b) => softmaxOnly(forward(k, b)),
  }, {
    name: "softmax_backward",
    shape: attentionDims,
    // Probs and their gradient read, score gradients written in place.
    bytes: f32(3 * probs),
    flops: null,
    plan: (k, b) => softmaxOnly(backward(k, b)),
  }];
}
