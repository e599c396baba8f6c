/**
 * The classifier head's small ops on the GPU (kernels/head.wgsl): bias add, bias + tanh, their backward,
 * and the loss over a batch's logits. The matrix products between them are `matmul`'s; see
 * src/model/classifier.ts for the order. Biases and their gradients may be sub-ranges of the flat
 * parameter and gradient buffers.
 *
 * @module
 */
import { GpuError } from "../../gpu/device.ts";
import { type Binding, type Dispatch, dispatch, type Kernels, uniformBuffer } from "../../gpu/kernels.ts";
import { uniformStruct } from "../../gpu/uniforms.ts";
import { LOSS_TOTALS_BYTES } from "./cross_entropy.ts";
import { LOSS_SCALE_BYTES } from "../loss_scale.ts";
import { checkBuffer, checkMultiple } from "./plan.ts";

const FAMILY = "head";
/** The kernels' uniform: the [rows, cols] of an elementwise op, or the loss's [rows, labels]. */
const SHAPE = uniformStruct(FAMILY, "Uniforms", { rows: "u32", cols: "u32" });
const WG = 64;

/** A row-major [rows, cols] matrix and a bias of [cols]. */
export interface BiasOptions {
  /** [rows, cols] f32, updated in place. */
  values: Binding;
  /** [cols] f32. */
  bias: Binding;
  rows: number;
  cols: number;
}

/** values = values + bias, per row. */
export function biasAdd(k: Kernels, args: BiasOptions): Promise<Dispatch[]> {
  return biased(k, "bias_add", args);
}

/** values = tanh(values + bias), per row. */
export function biasTanh(k: Kernels, args: BiasOptions): Promise<Dispatch[]> {
  return biased(k, "bias_tanh", args);
}

async function biased(
  k: Kernels,
  entry: string,
  { values, bias, rows, cols }: BiasOptions,
): Promise<Dispatch[]> {
  checkShape(entry, rows, cols);
  checkBuffer(`${entry} bias`, bias, cols * 4);
  checkBuffer(`${entry} values`, values, rows * cols * 4);
  return await elementwise(k, entry, rows, cols, [bias, values]);
}

export interface TanhBackwardOptions {
  /** [rows, cols] f32: the gradient of tanh's output, replaced by the gradient of its input. */
  gradient: Binding;
  /** [rows, cols] f32: tanh's output. */
  activated: Binding;
  rows: number;
  cols: number;
}

/** gradient = gradient * (1 - activated^2). */
export async function tanhBackward(k: Kernels, args: TanhBackwardOptions): Promise<Dispatch[]> {
  const { rows, cols } = args;
  checkShape("tanhBackward", rows, cols);
  checkBuffer("tanhBackward activated", args.activated, rows * cols * 4);
  checkBuffer("tanhBackward gradient", args.gradient, rows * cols * 4);
  return await elementwise(k, "tanh_backward", rows, cols, [args.activated, args.gradient]);
}

export interface BiasGradientOptions {
  /** [rows, cols] f32: the gradient of the biased values. */
  gradient: Binding;
  /** [cols] f32, added to: the sum of `gradient` over rows, in row order. */
  dbias: Binding;
  rows: number;
  cols: number;
}

/** dbias += the column sums of gradient. */
export async function biasGradient(k: Kernels, args: BiasGradientOptions): Promise<Dispatch[]> {
  const { rows, cols } = args;
  checkShape("biasGradient", rows, cols);
  checkBuffer("biasGradient gradient", args.gradient, rows * cols * 4);
  checkBuffer("biasGradient dbias", args.dbias, cols * 4);
  const pipeline = await k.pipeline(FAMILY, "bias_grad", { WG });
  const shape = uniformBuffer(k, SHAPE, "bias_grad shape", { rows, cols });
  return [dispatch(k.gpu, pipeline, [shape, args.gradient, args.dbias], [Math.ceil(cols / WG)])];
}

export interface HeadLossOptions {
  /** Capacity in rows (the batch). */
  rows: number;
  /** Outputs per row: the labels of a classifier, 1 for regression (squared error). */
  labels: number;
  /** [rows, labels] f32. */
  logits: Binding;
  /** [rows] f32: each real row's label index, or its score for regression. */
  targets: Binding;
  /** [1] u32: the real rows, the first `count` (<= rows); the loss is their mean. */
  count: Binding;
  /** [rows, labels] f32, written: the gradient of the mean loss; zero past `count`. */
  dlogits: Binding;
  /** {@linkcode LOSS_TOTALS_BYTES}: the loss sum (f32) and row count (u32), added to. */
  totals: Binding;
  /**
   * With f16 storage: the loss-scale buffer ({@linkcode LOSS_SCALE_BYTES}, src/model/loss_scale.ts) whose
   * scale multiplies the gradient (not the loss), as the MLM loss does.
   */
  lossScale?: Binding;
}

/**
 * The mean cross-entropy (or squared error for one output) over the real rows: their gradient into
 * `dlogits`, their losses and count added to `totals`. One workgroup; a fixed summation order.
 */
export async function headLoss(k: Kernels, args: HeadLossOptions): Promise<Dispatch[]> {
  const { rows, labels } = args;
  checkShape("headLoss", rows, labels);
  checkBuffer("headLoss logits", args.logits, rows * labels * 4);
  checkBuffer("headLoss targets", args.targets, rows * 4);
  checkBuffer("headLoss count", args.count, 4);
  checkBuffer("headLoss dlogits", args.dlogits, rows * labels * 4);
  checkBuffer("headLoss totals", args.totals, LOSS_TOTALS_BYTES);
  if (args.lossScale) checkBuffer("headLoss lossScale", args.lossScale, LOSS_SCALE_BYTES);
  const entry = args.lossScale ? "head_loss_scaled" : "head_loss";
  const pipeline = await k.pipeline(FAMILY, entry, { WG, REGRESSION: labels === 1 ? 1 : 0 });
  const shape = uniformBuffer(k, SHAPE, "head_loss shape", { rows, cols: labels });
  const bindings = [shape, args.count, args.targets, args.logits, args.dlogits, args.totals];
  if (args.lossScale) bindings.push(args.lossScale);
  return [dispatch(k.gpu, pipeline, bindings, [1])];
}

/** One dispatch of `entry` with a thread per element of [rows, cols] (shapes and buffers checked). */
async function elementwise(
  k: Kernels,
  entry: string,
  rows: number,
  cols: number,
  buffers: Binding[],
): Promise<Dispatch[]> {
  const workgroups = Math.ceil((rows * cols) / WG);
  if (workgroups > k.gpu.limits.maxComputeWorkgroupsPerDimension) {
    throw new GpuError(`${entry}: ${rows} x ${cols} elements exceed one grid dimension`);
  }
  const pipeline = await k.pipeline(FAMILY, entry, { WG });
  const shape = uniformBuffer(k, SHAPE, `${entry} shape`, { rows, cols });
  return [dispatch(k.gpu, pipeline, [shape, ...buffers], [workgroups])];
}

function checkShape(what: string, rows: number, cols: number): void {
  checkMultiple(`${what} rows`, rows, 1);
  checkMultiple(`${what} cols`, cols, 1);
}
