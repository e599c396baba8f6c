/**
 * The optimizer step on the GPU (kernels/optimizer.wgsl), with no CPU round trip: the gradients' global
 * L2 norm and clip factor, AdamW on the clipped gradients, and the buffer utilities of gradient
 * accumulation.
 *
 * Parameters, gradients and the AdamW moments are flat f32 buffers of one layout (`paramLayout`). Each
 * step the host writes only the learning rate and step number (`adamwStepUniforms` into the uniform
 * that `adamwStepBuffer` makes); the norm kernels leave their results in a small `stats` buffer that AdamW reads
 * on the GPU and the host reads every N steps (`readOptimizerStats`). A step whose gradient norm is NaN
 * or infinite is skipped (parameters and moments untouched) and counted. Its step number still counts
 * for the bias corrections, as the host cannot know of the skip before it reads the stats.
 *
 * A step is: `zeroBuffer(grads)`, the micro-batches' forward and backward (which add into grads, already
 * scaled by 1 / (tokens * micro-batches) at the loss), `gradNorm`, `adamw`.
 *
 * With f16 storage the loss gradient is also multiplied by a loss scale held on the GPU (`lossScaleBuffer`
 * in src/model/layers/cross_entropy.ts), and so is every gradient: `gradNorm` divides it out of the norm
 * and of the clip factor it leaves for AdamW, and with `dynamicLossScale` adjusts it after each step as
 * torch.amp.GradScaler does, all on the GPU.
 *
 * @module
 */
import { checked, GpuError } from "../gpu/device.ts";
import type { Gpu } from "../gpu/device.ts";
import { readBuffer, readBuffers, storageBuffer, uploadBuffer, writeBuffer } from "../gpu/buffers.ts";
import { decodeLossTotals, LOSS_TOTALS_BYTES } from "../model/layers/cross_entropy.ts";
import { LOSS_SCALE_BYTES } from "../model/loss_scale.ts";
import type { Binding, Constants, Dispatch, Kernels } from "../gpu/kernels.ts";
import { dispatch, uniformBuffer } from "../gpu/kernels.ts";
import { uniformStruct, type UniformValues } from "../gpu/uniforms.ts";
import { PARAM_ALIGNMENT, type ParamLayout, paramLayout } from "../model/params.ts";
import { checkBuffer, checkDistinct, checkMultiple, flatGrid } from "../model/layers/plan.ts";
import { type BenchShape, f32Bytes as f32, type KernelCase } from "../bench/case.ts";

const FAMILY = "optimizer";
const WG = 256;
/** The uniforms of kernels/optimizer.wgsl: the norm's, AdamW's fixed and per-step ones, the fill's. */
const NORM_SHAPE = uniformStruct(FAMILY, "NormShape", { length4: "u32", partials: "u32", max_norm: "f32" });
const ADAMW_CONFIG = uniformStruct(FAMILY, "AdamwConfig", {
  length4: "u32",
  beta1: "f32",
  one_minus_beta1: "f32",
  beta2: "f32",
  one_minus_beta2: "f32",
  eps: "f32",
  weight_decay: "f32",
});
const ADAMW_STEP = uniformStruct(FAMILY, "AdamwStep", { lr: "f32", step: "u32" });
const FILL_SHAPE = uniformStruct(FAMILY, "FillShape", { length4: "u32" });
/**
 * Bytes of the stats buffer (norm, AdamW's factor, non-finite flag, skipped steps, clip factor, loss
 * scale, padding); create it zero-filled.
 */
export const OPTIMIZER_STATS_BYTES = 32;

/** What the norm kernels last left in the stats buffer. */
export interface OptimizerStats {
  /** Global L2 norm of the (unscaled) gradients of the last step. */
  norm: number;
  /** The factor the last step's unscaled gradients were multiplied by (0 if it was skipped). */
  clipFactor: number;
  /** The last step's norm was NaN or infinite, and its update was skipped. */
  skipped: boolean;
  /** Steps skipped since the stats buffer was created. */
  skippedSteps: number;
  /** The loss scale the next step's gradients carry (after the last step's update); 1 without one. */
  lossScale: number;
}

/** Reads the stats buffer (a GPU round trip: every N steps, not every step). */
export async function readOptimizerStats(gpu: Gpu, stats: GPUBuffer): Promise<OptimizerStats> {
  return decodeOptimizerStats(await readBuffer(gpu, stats, OPTIMIZER_STATS_BYTES));
}

/** The stats from the bytes of a stats buffer read back with others. */
function decodeOptimizerStats(bytes: ArrayBuffer): OptimizerStats {
  const view = new DataView(bytes);
  return {
    norm: view.getFloat32(0, true),
    clipFactor: view.getFloat32(16, true),
    skipped: view.getUint32(8, true) !== 0,
    skippedSteps: view.getUint32(12, true),
    lossScale: view.getFloat32(20, true),
  };
}

/** The mean loss and row count since the last read, and the optimizer's stats. */
export interface StepStats extends OptimizerStats {
  /** NaN when no row was counted. */
  loss: number;
  rows: number;
}

/**
 * Reads the loss totals (then queues their reset to zero) and the optimizer stats in one GPU round trip:
 * the training loops' every-N-steps read.
 */
export async function readStepStats(gpu: Gpu, lossTotals: GPUBuffer, stats: GPUBuffer): Promise<StepStats> {
  const [totalBytes, statBytes] = await readBuffers(gpu, [
    { buffer: lossTotals, bytes: LOSS_TOTALS_BYTES },
    { buffer: stats, bytes: OPTIMIZER_STATS_BYTES },
  ]);
  const totals = decodeLossTotals(totalBytes);
  writeBuffer(gpu, lossTotals, new Uint32Array(LOSS_TOTALS_BYTES / 4));
  return {
    loss: totals.count > 0 ? totals.sum / totals.count : NaN,
    rows: totals.count,
    ...decodeOptimizerStats(statBytes),
  };
}

/**
 * The weight-decay table of `layout` for {@linkcode adamw}: one u32 per `PARAM_ALIGNMENT`-element chunk
 * of the flat vector, 1 where the chunk's tensor decays. Upload it once with `uploadBuffer`.
 */
export function decayFlags(layout: ParamLayout): Uint32Array<ArrayBuffer> {
  const flags = new Uint32Array(Math.ceil(layout.totalSize / PARAM_ALIGNMENT));
  for (const t of layout.tensors) {
    if (t.offset % PARAM_ALIGNMENT !== 0) {
      throw new RangeError(`parameter ${t.name}: offset ${t.offset} is not a multiple of ${PARAM_ALIGNMENT}`);
    }
    if (t.decay) flags.fill(1, t.offset / PARAM_ALIGNMENT, Math.ceil((t.offset + t.size) / PARAM_ALIGNMENT));
  }
  return flags;
}

/** Buffers of {@linkcode gradNorm}. */
export interface GradNormOptions {
  /** The flat gradient buffer. */
  grads: Binding;
  /** Elements of grads, a multiple of 4 (the layout's totalSize). */
  length: number;
  /** The stats buffer ({@linkcode OPTIMIZER_STATS_BYTES}). */
  stats: Binding;
  /** Clip to this global norm (the Cramming recipe: 0.5); positive and finite. */
  maxNorm: number;
  /**
   * Workgroups of the first reduction stage, each summing a strided share of the gradients (default
   * 1024, fewer for small buffers). The second stage, one workgroup, adds their partial sums.
   */
  partials?: number;
  /**
   * The loss-scale buffer (`LOSS_SCALE_BYTES`, see `lossScaleBuffer`) whose scale the gradients carry:
   * the norm and clip factor are then those of the unscaled gradients, and the factor left for AdamW
   * also divides by the scale.
   */
  lossScale?: Binding;
  /** Adjusts `lossScale` after every step, as torch.amp.GradScaler; needs `lossScale`. */
  dynamicLossScale?: DynamicLossScale;
}

/**
 * Dynamic loss scaling: a non-finite norm halves the scale, `growthInterval` finite steps in a row double
 * it (each change restarts the count); the scale stays as it is when doubling would overflow f32.
 */
export interface DynamicLossScale {
  /** Finite steps in a row before the scale doubles (GradScaler's default: 2000). */
  growthInterval: number;
}

/**
 * The global L2 norm of the gradients, the clip factor min(1, maxNorm / (norm + 1e-6)) and the non-finite
 * flag, into `stats`; also counts skipped steps there. With `lossScale`, the norm and clip factor are
 * those of the gradients divided by its scale, and `dynamicLossScale` adjusts the scale after the step.
 * Two dispatches; allocates the partial-sum scratch buffer (4 bytes per first-stage workgroup).
 */
export async function gradNorm(k: Kernels, options: GradNormOptions): Promise<Dispatch[]> {
  const { grads, length, stats, maxNorm, lossScale, dynamicLossScale } = options;
  checkMultiple("gradNorm: length", length, 4);
  if (!(maxNorm > 0 && Number.isFinite(maxNorm))) {
    throw new GpuError(`gradNorm: maxNorm = ${maxNorm}, expected a positive finite number`);
  }
  const partials = options.partials ?? Math.min(Math.ceil(length / 4 / WG), 1024);
  checkMultiple("gradNorm: partials", partials, 1);
  checkBuffer("gradNorm grads", grads, length * 4);
  checkBuffer("gradNorm stats", stats, OPTIMIZER_STATS_BYTES);
  if (dynamicLossScale) {
    if (!lossScale) throw new GpuError("gradNorm: dynamicLossScale needs a lossScale buffer");
    const interval = dynamicLossScale.growthInterval;
    if (!(Number.isInteger(interval) && interval >= 1 && interval <= 0xffffffff)) {
      throw new GpuError(`gradNorm: growthInterval = ${interval}, expected a positive integer (u32)`);
    }
  }
  if (lossScale) {
    checkBuffer("gradNorm lossScale", lossScale, LOSS_SCALE_BYTES);
    checkDistinct("gradNorm stats and lossScale", stats, lossScale);
  }
  const gpu = k.gpu;
  const sums = storageBuffer(gpu, "gradNorm partials", partials * 4);
  const shape = uniformBuffer(k, NORM_SHAPE, "gradNorm shape", {
    length4: length / 4,
    partials,
    max_norm: maxNorm,
  });
  const scaling: Constants = dynamicLossScale
    ? { DYNAMIC_SCALE: 1, GROWTH_INTERVAL: dynamicLossScale.growthInterval }
    : {};
  const [squares, finish] = await Promise.all([
    k.pipeline(FAMILY, "grad_sum_squares", { WG }),
    lossScale
      ? k.pipeline(FAMILY, "grad_norm_finish_scaled", { WG, ...scaling })
      : k.pipeline(FAMILY, "grad_norm_finish", { WG }),
  ]);
  return [
    dispatch(gpu, squares, [shape, grads, sums], [partials]),
    dispatch(gpu, finish, lossScale ? [shape, sums, stats, lossScale] : [shape, sums, stats], [1]),
  ];
}

/**
 * The per-step AdamW uniform's values, for {@linkcode adamwStepBuffer} (once) and `writeUniforms` (before
 * each step's submit).
 */
export function adamwStepUniforms(step: { lr: number; step: number }): UniformValues<"lr" | "step"> {
  if (!(Number.isInteger(step.step) && step.step >= 1)) {
    throw new RangeError(`AdamW step = ${step.step}, expected an integer >= 1`);
  }
  return { lr: step.lr, step: step.step };
}

/** Creates the per-step AdamW uniform holding `step` (see {@linkcode adamwStepUniforms}). */
export function adamwStepBuffer(
  k: Kernels,
  step: { lr: number; step: number } = { lr: 0, step: 1 },
): GPUBuffer {
  return uniformBuffer(k, ADAMW_STEP, "adamw step", adamwStepUniforms(step));
}

/** Buffers and hyperparameters of {@linkcode adamw}. */
export interface GpuAdamwOptions {
  /** Flat parameters, updated in place. */
  params: Binding;
  /** Flat gradients, read (multiplied by the clip factor from `stats`). */
  grads: Binding;
  /** First and second moments, updated in place; zero-filled before the first step. */
  m: Binding;
  v: Binding;
  /** Elements of each, a multiple of 4 (the layout's totalSize). */
  length: number;
  /** The {@linkcode decayFlags} table, uploaded. */
  decay: Binding;
  /** The stats buffer that {@linkcode gradNorm} writes. */
  stats: Binding;
  /** Uniform made by {@linkcode adamwStepBuffer}, rewritten by the host every step. */
  step: GPUBuffer;
  /** Default 0.9. */
  beta1?: number;
  /** Default 0.98. */
  beta2?: number;
  /** Default 1e-12. */
  eps?: number;
  /** Applied where `decay` says so; default 0.01. */
  weightDecay?: number;
}

/**
 * One AdamW update of every parameter, exactly as torch.optim.AdamW (decoupled weight decay, bias
 * correction) on the clipped gradients; a no-op when `stats` flags the step as skipped.
 */
export async function adamw(k: Kernels, options: GpuAdamwOptions): Promise<Dispatch[]> {
  const { params, grads, m, v, length, decay, stats, step } = options;
  const { beta1 = 0.9, beta2 = 0.98, eps = 1e-12, weightDecay = 0.01 } = options;
  checkMultiple("adamw: length", length, 4);
  for (const [name, value] of [["beta1", beta1], ["beta2", beta2]] as const) {
    if (!(value >= 0 && value < 1)) {
      throw new GpuError(`adamw: ${name} = ${value}, expected 0 <= ${name} < 1`);
    }
  }
  if (!(eps > 0)) throw new GpuError(`adamw: eps = ${eps}, expected a positive number`);
  if (!(weightDecay >= 0)) throw new GpuError(`adamw: weightDecay = ${weightDecay}, expected a number >= 0`);
  for (const [name, buffer] of [["params", params], ["grads", grads], ["m", m], ["v", v]] as const) {
    checkBuffer(`adamw ${name}`, buffer, length * 4);
  }
  checkBuffer("adamw decay", decay, Math.ceil(length / PARAM_ALIGNMENT) * 4);
  checkBuffer("adamw stats", stats, OPTIMIZER_STATS_BYTES);
  checkBuffer("adamw step", step, 8);
  const gpu = k.gpu;
  const pipeline = await k.pipeline(FAMILY, "adamw", { WG, DECAY_CHUNK4: PARAM_ALIGNMENT / 4 });
  const config = uniformBuffer(k, ADAMW_CONFIG, "adamw config", {
    length4: length / 4,
    beta1,
    one_minus_beta1: 1 - beta1,
    beta2,
    one_minus_beta2: 1 - beta2,
    eps,
    weight_decay: weightDecay,
  });
  const bindings = [config, step, stats, decay, grads, params, m, v];
  return [dispatch(gpu, pipeline, bindings, flatGrid(gpu, Math.ceil(length / 4 / WG)))];
}

/** A buffer and its length in f32 elements (a multiple of 4). */
export interface FillOptions {
  buffer: Binding;
  length: number;
}

/** buffer = 0: the gradients at the start of each accumulation. */
export async function zeroBuffer(k: Kernels, options: FillOptions): Promise<Dispatch[]> {
  const { buffer, length } = options;
  checkMultiple("zeroBuffer: length", length, 4);
  checkBuffer("zeroBuffer buffer", buffer, length * 4);
  const pipeline = await k.pipeline(FAMILY, "zero_buffer", { WG });
  const shape = uniformBuffer(k, FILL_SHAPE, "zero_buffer shape", { length4: length / 4 });
  return [dispatch(k.gpu, pipeline, [shape, buffer], flatGrid(k.gpu, Math.ceil(length / 4 / WG)))];
}

/** What {@linkcode planAdamw} plans around a model's flat parameters and gradients. */
export interface PlannedAdamw {
  /** AdamW moments, zero-filled, in the parameters' layout. */
  m: GPUBuffer;
  v: GPUBuffer;
  /** The stats buffer (norm, clip factor, skip flag, skipped steps, loss scale): `readOptimizerStats`. */
  stats: GPUBuffer;
  /** The per-step uniform: rewrite it with `writeUniforms(gpu, stepUniforms, adamwStepUniforms(...))`. */
  stepUniforms: GPUBuffer;
  /** Zeroes the gradients: record before a step's first micro-batch. */
  zero: Dispatch[];
  /** Gradient norm, clipping and the AdamW update: record after a step's last micro-batch. */
  update: Dispatch[];
}

/**
 * Plans the optimizer of a model whose parameters and gradients are flat buffers in `layout`: the
 * moments (allocated inside error scopes, so that running out of GPU memory names them), the stats and
 * per-step buffers, and the dispatches of a step. `maxNorm` clips the global gradient norm; `lossScale`
 * and `dynamicLossScale` are as in {@linkcode gradNorm}.
 */
export async function planAdamw(
  k: Kernels,
  options:
    & { params: GPUBuffer; grads: GPUBuffer; layout: ParamLayout; maxNorm: number }
    & Pick<GradNormOptions, "lossScale" | "dynamicLossScale">
    & Pick<
      GpuAdamwOptions,
      "beta1" | "beta2" | "eps" | "weightDecay"
    >,
): Promise<PlannedAdamw> {
  const { params, grads, layout, maxNorm, lossScale, dynamicLossScale, ...hyper } = options;
  const gpu = k.gpu;
  const length = layout.totalSize;
  const moments: GPUBuffer[] = [];
  try {
    for (const name of ["adam m", "adam v"]) {
      moments.push(await checked(gpu, `buffer ${name}`, () => storageBuffer(gpu, name, length * 4)));
    }
  } catch (e) {
    for (const buffer of moments) buffer.destroy();
    throw e;
  }
  const [m, v] = moments;
  const stats = storageBuffer(gpu, "optimizer stats", OPTIMIZER_STATS_BYTES);
  const stepUniforms = adamwStepBuffer(k);
  const decay = uploadBuffer(gpu, "weight decay flags", decayFlags(layout));
  return {
    m,
    v,
    stats,
    stepUniforms,
    zero: await zeroBuffer(k, { buffer: grads, length }),
    update: [
      ...await gradNorm(k, { grads, length, stats, maxNorm, lossScale, dynamicLossScale }),
      ...await adamw(k, { params, grads, m, v, length, decay, stats, step: stepUniforms, ...hyper }),
    ],
  };
}

/**
 * The optimizer's benchmark cases (timed by src/bench/kernels.ts): the gradient norm, AdamW and the
 * gradients' zeroing, over the model's flat parameters.
 */
export function optimizerBenchCases(shape: BenchShape): KernelCase[] {
  const layout = paramLayout(shape.config);
  const P = layout.totalSize;
  // The wrapper's default partial-sum count for P elements.
  const normPartials = Math.min(Math.ceil(P / 4 / WG), 1024);
  const flags = decayFlags(layout);
  return [{
    name: "grad_norm",
    shape: `${P}`,
    // grads (P) read; the partial sums written, then read.
    bytes: f32(P + 2 * normPartials),
    flops: null,
    plan: (k, b) =>
      gradNorm(k, {
        grads: b.random("grads", P),
        length: P,
        stats: b.zeros("stats", OPTIMIZER_STATS_BYTES / 4),
        maxNorm: 0.5,
      }),
  }, {
    name: "adamw",
    shape: `${P}`,
    // grads read; params, m and v read and written (P each); one decay flag per 64 elements.
    bytes: f32(7 * P + flags.length),
    flops: null,
    plan: (k, b) =>
      adamw(k, {
        params: b.random("params", P),
        grads: b.random("grads", P),
        m: b.random("m", P),
        v: b.random("v", P),
        length: P,
        decay: b.upload("decay", flags),
        // Zero stats: clip factor 0 and a finite norm, so every element is updated.
        stats: b.zeros("stats", OPTIMIZER_STATS_BYTES / 4),
        step: adamwStepBuffer(k, { lr: 1e-4, step: 1 }),
      }),
  }, {
    name: "zero_buffer",
    shape: `${P}`,
    // grads written.
    bytes: f32(P),
    flops: null,
    plan: (k, b) => zeroBuffer(k, { buffer: b.random("grads", P), length: P }),
  }];
}
