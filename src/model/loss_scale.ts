/**
 * The dynamic loss scale of f16 storage, in one GPU buffer: the cross-entropy kernel multiplies the loss
 * gradient by its scale (kernels/cross_entropy.wgsl), the gradient-norm kernel divides it out and, as
 * torch.amp.GradScaler does, halves it on a non-finite step and doubles it after a run of finite ones
 * (kernels/optimizer.wgsl, src/train/optimizer.ts; the growth interval is set in src/train/step.ts). A
 * checkpoint saves its state (src/train/checkpoint_state.ts) so that a resumed run goes on with it.
 *
 * @module
 */
import { readBuffer, storageBuffer, writeBuffer } from "../gpu/buffers.ts";
import { type Gpu, GpuError } from "../gpu/device.ts";
import { checkBuffer } from "./layers/plan.ts";

/** The first loss scale of f16 storage: PyTorch GradScaler's 2^16. */
export const INITIAL_LOSS_SCALE = 65536;

/** Finite steps in a row before the loss scale doubles (torch.amp.GradScaler's default). */
export const LOSS_SCALE_GROWTH_INTERVAL = 2000;

/**
 * Size of the loss-scale buffer: the f32 scale, then the u32 count of finite steps since it last changed
 * (which the optimizer's dynamic loss scaling keeps), padded to 16 bytes.
 */
export const LOSS_SCALE_BYTES = 16;

/** The contents of a loss-scale buffer. */
export interface LossScaleState {
  /** The factor the loss, and so every gradient, is multiplied by. */
  scale: number;
  /** Finite steps in a row since the scale last changed. */
  goodSteps: number;
}

/** Creates a loss-scale buffer holding `scale` (and `goodSteps`, default 0), for the cross-entropy kernel. */
export function lossScaleBuffer(gpu: Gpu, scale: number, goodSteps = 0): GPUBuffer {
  const buffer = storageBuffer(gpu, "loss scale", LOSS_SCALE_BYTES);
  writeLossScale(gpu, buffer, scale, goodSteps);
  return buffer;
}

/** Queues the write of `scale` and `goodSteps` (default 0) into a loss-scale buffer (at start or on resume). */
export function writeLossScale(gpu: Gpu, buffer: GPUBuffer, scale: number, goodSteps = 0): void {
  const f32 = Math.fround(scale);
  if (!(f32 > 0 && f32 < Infinity)) {
    throw new GpuError(`writeLossScale: scale = ${scale}, expected a positive number within f32's range`);
  }
  if (!(Number.isInteger(goodSteps) && goodSteps >= 0 && goodSteps <= 0xffffffff)) {
    throw new GpuError(`writeLossScale: goodSteps = ${goodSteps}, expected a u32`);
  }
  checkBuffer("writeLossScale buffer", buffer, LOSS_SCALE_BYTES);
  const bytes = new ArrayBuffer(LOSS_SCALE_BYTES);
  const view = new DataView(bytes);
  view.setFloat32(0, scale, true);
  view.setUint32(4, goodSteps, true);
  writeBuffer(gpu, buffer, new Uint8Array(bytes));
}

/** Reads a loss-scale buffer (a GPU round trip: for checkpoints and tests, not every step). */
export async function readLossScale(gpu: Gpu, buffer: GPUBuffer): Promise<LossScaleState> {
  const view = new DataView(await readBuffer(gpu, buffer, LOSS_SCALE_BYTES));
  return { scale: view.getFloat32(0, true), goodSteps: view.getUint32(4, true) };
}
