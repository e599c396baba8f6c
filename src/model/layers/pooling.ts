/**
 * The classifier head's mean pooling on the GPU (kernels/pooling.wgsl): each example's final states
 * averaged over its real tokens, and the backward that spreads the pooled gradient back over them. The
 * alternative pooling, the [CLS] state, is a row gather (src/model/layers/cross_entropy.ts).
 *
 * @module
 */
import { GpuError } from "../../gpu/device.ts";
import { type Dispatch, dispatch, type Kernels, storageTypes, uniformBuffer } from "../../gpu/kernels.ts";
import { uniformStruct } from "../../gpu/uniforms.ts";
import { checkBuffer, checkFloats, checkMultiple } from "./plan.ts";

const FAMILY = "pooling";
const WG = 64;
const SHAPE = uniformStruct(FAMILY, "Uniforms", { batch: "u32", seq: "u32", hidden4: "u32" });

/** The pooled batch's shape. */
export interface PoolShape {
  batch: number;
  /** Tokens per example of this pass. */
  seq: number;
  /** A multiple of 4. */
  hidden: number;
  /** [batch * seq] u32: 1 for a real token, 0 for padding. */
  keyMask: GPUBuffer;
  /** [batch] f32: 1 / each example's count of real tokens (0 without any), written by the forward. */
  inverseCounts: GPUBuffer;
}

export interface MeanPoolForwardOptions extends PoolShape {
  /** [batch * seq, hidden] f32 or f16: the final states. */
  states: GPUBuffer;
  /** [batch, hidden] f32, written: the mean over each example's real tokens (zero without any). */
  pooled: GPUBuffer;
}

export interface MeanPoolBackwardOptions extends PoolShape {
  /** [batch, hidden] f32: the gradient of `pooled` (the forward of the same batch has run). */
  dpooled: GPUBuffer;
  /** [batch * seq, hidden] f32, written in full: dpooled / count at real tokens, zero at padding. */
  dstates: GPUBuffer;
}

/** Records pooled = the mean of each example's real-token states. */
export async function meanPoolForward(k: Kernels, args: MeanPoolForwardOptions): Promise<Dispatch[]> {
  const { batch, seq, hidden } = args;
  checkPoolShape("meanPoolForward", args);
  checkFloats("meanPoolForward states", args.states, batch * seq * hidden);
  checkBuffer("meanPoolForward pooled", args.pooled, batch * hidden * 4);
  const types = storageTypes({ STATES_T: args.states });
  const pipeline = await k.pipeline(FAMILY, "mean_pool_forward", { WG }, types);
  const shape = uniformBuffer(k, SHAPE, "mean_pool_forward shape", { batch, seq, hidden4: hidden / 4 });
  return [
    dispatch(k.gpu, pipeline, [shape, args.keyMask, args.states, args.pooled, args.inverseCounts], [
      workgroups(k, batch * hidden / 4),
    ]),
  ];
}

/** Records dstates from dpooled: the mean's gradient at each real token, zero at padding. */
export async function meanPoolBackward(k: Kernels, args: MeanPoolBackwardOptions): Promise<Dispatch[]> {
  const { batch, seq, hidden } = args;
  checkPoolShape("meanPoolBackward", args);
  checkBuffer("meanPoolBackward dpooled", args.dpooled, batch * hidden * 4);
  checkBuffer("meanPoolBackward dstates", args.dstates, batch * seq * hidden * 4);
  const pipeline = await k.pipeline(FAMILY, "mean_pool_backward", { WG });
  const shape = uniformBuffer(k, SHAPE, "mean_pool_backward shape", { batch, seq, hidden4: hidden / 4 });
  return [
    dispatch(k.gpu, pipeline, [shape, args.keyMask, args.dpooled, args.dstates, args.inverseCounts], [
      workgroups(k, batch * seq * hidden / 4),
    ]),
  ];
}

function checkPoolShape(what: string, args: PoolShape): void {
  checkMultiple(`${what} batch`, args.batch, 1);
  checkMultiple(`${what} seq`, args.seq, 1);
  checkMultiple(`${what} hidden`, args.hidden, 4);
  checkBuffer(`${what} keyMask`, args.keyMask, args.batch * args.seq * 4);
  checkBuffer(`${what} inverseCounts`, args.inverseCounts, args.batch * 4);
}

function workgroups(k: Kernels, invocations: number): number {
  const count = Math.ceil(invocations / WG);
  if (count > k.gpu.limits.maxComputeWorkgroupsPerDimension) {
    throw new GpuError(`pooling: ${invocations} invocations exceed one grid dimension`);
  }
  return count;
}
