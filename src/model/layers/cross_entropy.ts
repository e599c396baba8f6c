/**
 * The sparse MLM head around the decoder matmul (kernels/cross_entropy.wgsl): only the M masked tokens
 * (about 15%) are decoded. Per micro-batch the host writes three small buffers before submitting:
 * `positions` (the masked tokens' indices, distinct, < tokens), `labels` (their target ids, < vocab) and
 * `count` (u32 [1], M). M changes every micro-batch while the plan stays fixed: every buffer and dispatch
 * is sized for a capacity of `rows` masked tokens and the kernels read M from `count` on the GPU, so
 * one upload of M serves the gather, the loss and the scatter. Rows past M are kept zero.
 *
 * Step order: {@linkcode gatherRows}, decoder matmul (logits = gathered word^T), {@linkcode crossEntropy}
 * (logits become their gradient), decoder backward matmuls, {@linkcode scatterRows}.
 *
 * The gather's and the scatter's float tensors may each be an f32 or an f16 buffer (see `storageBuffer`);
 * the logits are f32. With f16 storage the loss gradient is also multiplied by a loss scale
 * (src/model/loss_scale.ts), so that small gradients survive f16; the optimizer divides it out.
 */
import { readBuffer, storageBuffer } from "../../gpu/buffers.ts";
import type { Gpu } from "../../gpu/device.ts";
import { GpuError } from "../../gpu/device.ts";
import { dispatch, storageTypes, uniformBuffer } from "../../gpu/kernels.ts";
import type { Dispatch, Kernels } from "../../gpu/kernels.ts";
import { uniformStruct } from "../../gpu/uniforms.ts";
import { type BenchShape, benchTokens, f32Bytes as f32, type KernelCase } from "../../bench/case.ts";
import { checkBuffer, checkFloats, checkMultiple, flatGrid } from "./plan.ts";
import { LOSS_SCALE_BYTES } from "../loss_scale.ts";

/** Shapes shared by the gather and the scatter. */
export interface MaskedRowsShape {
  /** Tokens of the full hidden states (batch * seq). */
  tokens: number;
  /** Capacity: the most masked tokens a micro-batch may have. */
  rows: number;
  /** A multiple of 4. */
  hidden: number;
}

export interface GatherRowsOptions extends MaskedRowsShape {
  /** [tokens, hidden] f32 or f16. */
  states: GPUBuffer;
  /** [rows] u32: the first M are the masked tokens' indices. */
  positions: GPUBuffer;
  /** [1] u32: M. */
  count: GPUBuffer;
  /** [rows, hidden] f32 or f16, written: row m < M = states[positions[m]], rows past M zero. */
  gathered: GPUBuffer;
}

export interface ScatterRowsOptions extends MaskedRowsShape {
  /** [rows, hidden] f32 or f16: gradient of the gathered rows. */
  dgathered: GPUBuffer;
  positions: GPUBuffer;
  count: GPUBuffer;
  /** [tokens, hidden] f32 or f16, written: dgathered[m] at row positions[m], zero elsewhere. */
  dstates: GPUBuffer;
}

export interface CrossEntropyOptions {
  /** Capacity in masked rows. */
  rows: number;
  /** A multiple of 4. */
  vocab: number;
  /** [rows, vocab] f32 logits; overwritten with their gradient (softmax - onehot) * gradScale. */
  logits: GPUBuffer;
  /** [rows] u32: target ids of the first M rows. */
  labels: GPUBuffer;
  /** [1] u32: M. */
  count: GPUBuffer;
  /** [1] f32: the gradient's factor, 1/M for a mean over this micro-batch (times any accumulation factor). */
  gradScale: GPUBuffer;
  /**
   * The loss-scale buffer (see src/model/loss_scale.ts): when given, its scale multiplies the gradient too
   * (not the loss totals). Without it the gradient is unscaled.
   */
  lossScale?: GPUBuffer;
  /** {@linkcode LOSS_TOTALS_BYTES}: the running loss sum (f32) and masked-token count (u32), added to. */
  totals: GPUBuffer;
}

/** Size of the loss totals buffer: f32 sum of per-token losses, then u32 number of tokens. */
export const LOSS_TOTALS_BYTES = 8;

const FAMILY = "cross_entropy";
const WG = 256;
/** vec4s of a logits row each invocation holds in the kernel's resident variant (its RESIDENT_VEC4). */
const RESIDENT_VEC4 = 8;

/**
 * The cross-entropy kernel's workgroup for a vocabulary: the smallest power of two from 64 whose
 * invocations hold the row in registers (RESIDENT_VEC4 vec4s each), so that it is read once; if the device
 * allows none that large, 256 invocations that read it twice.
 */
export function crossEntropyWorkgroup(
  vocab: number,
  limits: Pick<GPUSupportedLimits, "maxComputeInvocationsPerWorkgroup" | "maxComputeWorkgroupSizeX">,
): { resident: boolean; size: number } {
  let size = 64;
  while (size * RESIDENT_VEC4 * 4 < vocab) size *= 2;
  const most = Math.min(limits.maxComputeInvocationsPerWorkgroup, limits.maxComputeWorkgroupSizeX);
  return size <= most ? { resident: true, size } : { resident: false, size: WG };
}
/** The kernels' uniform: the masked rows' gather and scatter use hidden4 and tokens, the loss vocab4. */
const UNIFORMS = uniformStruct(FAMILY, "Uniforms", {
  rows: "u32",
  hidden4: "u32",
  vocab4: "u32",
  tokens: "u32",
});

/** Records the gather of the masked rows. */
export async function gatherRows(k: Kernels, args: GatherRowsOptions): Promise<Dispatch[]> {
  const gpu = k.gpu;
  const { tokens, rows, hidden } = args;
  checkRowsShape(args);
  const types = storageTypes({ STATES_T: args.states, GATHERED_T: args.gathered });
  checkFloats("gatherRows states", args.states, tokens * hidden);
  checkBuffer("gatherRows positions", args.positions, rows * 4);
  checkBuffer("gatherRows count", args.count, 4);
  checkFloats("gatherRows gathered", args.gathered, rows * hidden);
  const uniforms = uniformBuffer(k, UNIFORMS, "gatherRows uniforms", {
    rows,
    hidden4: hidden / 4,
    vocab4: 0,
    tokens,
  });
  const pipeline = await k.pipeline(FAMILY, "gather_rows", { WG }, types);
  const grid = flatGrid(gpu, Math.ceil((rows * hidden) / 4 / WG));
  return [dispatch(gpu, pipeline, [uniforms, args.count, args.positions, args.states, args.gathered], grid)];
}

/** Records the backward of the gather: dstates zeroed, then the masked rows written. */
export async function scatterRows(k: Kernels, args: ScatterRowsOptions): Promise<Dispatch[]> {
  const gpu = k.gpu;
  const { tokens, rows, hidden } = args;
  checkRowsShape(args);
  const types = storageTypes({ DGATHERED_T: args.dgathered, DSTATES_T: args.dstates });
  checkFloats("scatterRows dgathered", args.dgathered, rows * hidden);
  checkBuffer("scatterRows positions", args.positions, rows * 4);
  checkBuffer("scatterRows count", args.count, 4);
  checkFloats("scatterRows dstates", args.dstates, tokens * hidden);
  const uniforms = uniformBuffer(k, UNIFORMS, "scatterRows uniforms", {
    rows,
    hidden4: hidden / 4,
    vocab4: 0,
    tokens,
  });
  const [zero, scatter] = await Promise.all([
    k.pipeline(FAMILY, "zero_rows", { WG }, types),
    k.pipeline(FAMILY, "scatter_rows", { WG }, types),
  ]);
  return [
    dispatch(gpu, zero, [uniforms, args.dstates], flatGrid(gpu, Math.ceil((tokens * hidden) / 4 / WG))),
    dispatch(
      gpu,
      scatter,
      [uniforms, args.count, args.positions, args.dgathered, args.dstates],
      flatGrid(gpu, Math.ceil((rows * hidden) / 4 / WG)),
    ),
  ];
}

/**
 * Records the fused softmax cross-entropy forward and backward over the first M logits rows, then adds
 * the rows' losses (in a fixed order) and M to `totals`. The per-row losses go through a small scratch
 * buffer made here. With `lossScale`, the gradient is also multiplied by the scale the buffer holds
 * when the dispatch runs.
 */
export async function crossEntropy(k: Kernels, args: CrossEntropyOptions): Promise<Dispatch[]> {
  const gpu = k.gpu;
  const { rows, vocab } = args;
  checkMultiple("crossEntropy rows", rows, 1);
  checkMultiple("crossEntropy vocab", vocab, 4);
  const limit = gpu.limits.maxComputeWorkgroupsPerDimension;
  if (rows > limit) {
    throw new GpuError(`crossEntropy: rows ${rows} is more than the ${limit} workgroups of a grid`);
  }
  checkBuffer("crossEntropy logits", args.logits, rows * vocab * 4);
  checkBuffer("crossEntropy labels", args.labels, rows * 4);
  checkBuffer("crossEntropy count", args.count, 4);
  checkBuffer("crossEntropy gradScale", args.gradScale, 4);
  checkBuffer("crossEntropy totals", args.totals, LOSS_TOTALS_BYTES);
  if (args.lossScale) checkBuffer("crossEntropy lossScale", args.lossScale, LOSS_SCALE_BYTES);
  const rowLoss = storageBuffer(gpu, "crossEntropy row losses", rows * 4);
  const uniforms = uniformBuffer(k, UNIFORMS, "crossEntropy uniforms", {
    rows,
    hidden4: 0,
    vocab4: vocab / 4,
    tokens: 0,
  });
  const row = crossEntropyWorkgroup(vocab, gpu.limits);
  const [rowPass, total] = await Promise.all([
    k.pipeline(FAMILY, args.lossScale ? "cross_entropy_scaled" : "cross_entropy", {
      WG: row.size,
      RESIDENT: row.resident ? 1 : 0,
    }),
    k.pipeline(FAMILY, "loss_total", { WG }),
  ]);
  const rowBindings = [uniforms, args.count, args.gradScale, args.labels, args.logits, rowLoss];
  if (args.lossScale) rowBindings.push(args.lossScale);
  return [
    dispatch(gpu, rowPass, rowBindings, [rows]),
    dispatch(gpu, total, [uniforms, args.count, rowLoss, args.totals], [1]),
  ];
}

/** Reads the loss totals (a GPU round trip: every few steps, not every step). */
export async function readLossTotals(gpu: Gpu, totals: GPUBuffer): Promise<{ sum: number; count: number }> {
  return decodeLossTotals(await readBuffer(gpu, totals, LOSS_TOTALS_BYTES));
}

/** The loss totals from the bytes of a `totals` buffer read back with others. */
export function decodeLossTotals(bytes: ArrayBuffer): { sum: number; count: number } {
  const view = new DataView(bytes);
  return { sum: view.getFloat32(0, true), count: view.getUint32(4, true) };
}

function checkRowsShape({ tokens, rows, hidden }: MaskedRowsShape): void {
  checkMultiple("masked rows tokens", tokens, 1);
  checkMultiple("masked rows rows", rows, 1);
  checkMultiple("masked rows hidden", hidden, 4);
}

/**
 * The MLM loss's benchmark cases (timed by src/bench/kernels.ts): the gather of the batch's masked rows,
 * the fused cross-entropy over the vocabulary, and the scatter of their gradient.
 */
export function crossEntropyBenchCases(shape: BenchShape): KernelCase[] {
  const { config, batch, maskedRows: R } = shape;
  const { hidden: H, vocabSize: V } = config;
  const N = benchTokens(shape);
  const M = batch.labelIds.length;
  const labelPositions = new Uint32Array(R);
  labelPositions.set(batch.labelPositions);
  const labelIds = new Uint32Array(R);
  labelIds.set(batch.labelIds);
  const maskedRows = { tokens: N, rows: R, hidden: H };
  const rowsOf = `${M} of ${R} rows`;
  const rowsShape = `${N}x${H}`;
  return [{
    name: "gather_rows",
    shape: `${rowsOf} of ${rowsShape}`,
    // positions M and the M masked rows of the states read; gathered (R x H, zero past M) written.
    bytes: f32(M + M * H + R * H),
    flops: null,
    plan: (k, b) =>
      gatherRows(k, {
        ...maskedRows,
        states: b.random("states", N * H),
        positions: b.upload("positions", labelPositions),
        count: b.upload("count", Uint32Array.of(M)),
        gathered: b.zeros("gathered", R * H),
      }),
  }, {
    name: "cross_entropy",
    shape: `${rowsOf} x ${V}`,
    // labels M and the first M logits rows read; every logits row (R x V) written (zero past M); the
    // row losses (R) written, then read by the total.
    bytes: f32(M + M * V + R * V + 2 * R),
    flops: null,
    plan: (k, b) =>
      crossEntropy(k, {
        rows: R,
        vocab: V,
        logits: b.random("logits", R * V),
        labels: b.upload("labels", labelIds),
        count: b.upload("count", Uint32Array.of(M)),
        gradScale: b.upload("grad scale", Float32Array.of(1 / Math.max(1, M))),
        totals: b.zeros("totals", LOSS_TOTALS_BYTES / 4),
      }),
  }, {
    name: "scatter_rows",
    shape: `${rowsOf} of ${rowsShape}`,
    // dstates (N x H) zeroed; positions M and the M rows of dgathered read, M rows of dstates written.
    bytes: f32(N * H + M + 2 * M * H),
    flops: null,
    plan: (k, b) =>
      scatterRows(k, {
        ...maskedRows,
        dgathered: b.random("dgathered", R * H),
        positions: b.upload("positions", labelPositions),
        count: b.upload("count", Uint32Array.of(M)),
        dstates: b.zeros("dstates", N * H),
      }),
  }];
}
