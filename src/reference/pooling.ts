/**
 * The float64 reference of the classifier head's pooling ({@linkcode Pooling}): `cls`, each example's state
 * at position 0; `mean`, its final states averaged over its real tokens (key mask 1; every token without a
 * mask), whose backward spreads the pooled gradient evenly over them. An example without real tokens
 * mean-pools to zero.
 *
 * @module
 */
import type { Pooling } from "../model/head_layout.ts";

/** The pooled batch's shape and its key mask ([batch * seq], 1 for a real token; absent: all real). */
export interface PoolOptions {
  /** Examples. */
  batch: number;
  /** Tokens per example. */
  seq: number;
  /** Width of each state. */
  hidden: number;
  /** [batch * seq]: 1 for a real token, 0 for padding; absent: every token is real. */
  keyMask?: ArrayLike<number>;
}

/** The positions of example b's real tokens. */
export function realTokens(options: PoolOptions, b: number): number[] {
  const { seq, keyMask } = options;
  return Array.from({ length: seq }, (_, t) => t).filter((t) => !keyMask || keyMask[b * seq + t] !== 0);
}

/** pooled [batch, hidden]: the mean of each example's real-token rows of `states` [batch * seq, hidden]. */
export function meanPool(states: ArrayLike<number>, options: PoolOptions): Float64Array {
  const { batch, seq, hidden: H } = options;
  const pooled = new Float64Array(batch * H);
  for (let b = 0; b < batch; b++) {
    const tokens = realTokens(options, b);
    for (const t of tokens) {
      for (let h = 0; h < H; h++) pooled[b * H + h] += states[(b * seq + t) * H + h] / tokens.length;
    }
  }
  return pooled;
}

/** dstates [batch * seq, hidden] from dpooled [batch, hidden]: dpooled / count at real tokens, else 0. */
export function meanPoolBackward(dpooled: ArrayLike<number>, options: PoolOptions): Float64Array {
  const { batch, seq, hidden: H } = options;
  const dstates = new Float64Array(batch * seq * H);
  for (let b = 0; b < batch; b++) {
    const tokens = realTokens(options, b);
    for (const t of tokens) {
      for (let h = 0; h < H; h++) dstates[(b * seq + t) * H + h] = dpooled[b * H + h] / tokens.length;
    }
  }
  return dstates;
}

/** pooled [batch, hidden] of `states` [batch * seq, hidden] as `pooling` says. */
export function pool(states: Float64Array, pooling: Pooling, options: PoolOptions): Float64Array {
  if (pooling === "mean") return meanPool(states, options);
  const { batch, seq, hidden: H } = options;
  const pooled = new Float64Array(batch * H);
  for (let b = 0; b < batch; b++) pooled.set(states.subarray(b * seq * H, (b * seq + 1) * H), b * H);
  return pooled;
}

/** dstates [batch * seq, hidden] from dpooled [batch, hidden], the backward of {@linkcode pool}. */
export function poolBackward(dpooled: Float64Array, pooling: Pooling, options: PoolOptions): Float64Array {
  if (pooling === "mean") return meanPoolBackward(dpooled, options);
  const { batch, seq, hidden: H } = options;
  const dstates = new Float64Array(batch * seq * H);
  for (let b = 0; b < batch; b++) dstates.set(dpooled.subarray(b * H, (b + 1) * H), b * seq * H);
  return dstates;
}
