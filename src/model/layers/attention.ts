/**
 * Multi-head self-attention (kernels/attention.wgsl): forward from the fused QKV projection, backward to
 * its gradient. The forward saves the full probabilities [batch, heads, seq, seq] (f32) rather than only
 * the softmax row statistics: at the crammed shape that is 100 MB per layer (1.6 GB for 16 layers, well
 * inside an H200), and it spares the backward the recomputation of QK^T, which with deterministic
 * (atomic-free) gradients would be needed twice: the backward does 4 small products instead of 7.
 *
 * Two variants of the kernels (`variant`), with the same results up to f32 rounding order: "simple"
 * (each thread one score or output vec4 at a time, any supported shape) and "tiled" (each thread a 4x4
 * tile in registers; headDim a multiple of 16 whose 16-row score tile and staged rows fit the adapter's
 * workgroup memory: at 32 KiB, seq <= 128 for headDim 64, seq <= 384 for headDim 32). A shape "tiled"
 * does not cover runs "simple" ({@linkcode attentionVariant} says which one runs).
 *
 * Finetuning drops attention probabilities (`dropout`): the forward saves the probabilities before
 * dropout and the backward recomputes the mask from the same seed, so nothing more is stored.
 */
import { paramBuffer, storageBuffer } from "../../gpu/buffers.ts";
import { GpuError } from "../../gpu/device.ts";
import type { Gpu } from "../../gpu/device.ts";
import { dispatch } from "../../gpu/kernels.ts";
import type { Dispatch, Kernels } from "../../gpu/kernels.ts";
import { dropoutThreshold } from "./dropout.ts";
import { checkBuffer, checkMultiple } from "./plan.ts";

/** Shapes of one attention layer. */
export interface AttentionShape {
  batch: number;
  /** Tokens per sequence, 1..512. */
  seq: number;
  heads: number;
  /** A multiple of 4 up to 128. */
  headDim: number;
  /** Probability dropout (finetuning); give the forward and the backward the same. Absent: none. */
  dropout?: ProbsDropout;
  /** Kernel variant (default "simple"); "tiled" falls back to "simple" for shapes it does not cover. */
  variant?: AttentionVariant;
}

/** The attention kernels: see the module documentation. */
export type AttentionVariant = "simple" | "tiled";

/** Dropout of the attention probabilities, with the mask of the reference's `dropoutKeep`. */
export interface ProbsDropout {
  /** Drop probability, in [0, 1). */
  p: number;
  /** u32 seeds of the step's dropout sites, rewritten by the host every step. */
  seeds: GPUBuffer;
  /** This site's index in `seeds`. */
  seedIndex: number;
}

export interface AttentionForwardArgs extends AttentionShape {
  /** [N, 3H] f32: all q heads, then all k heads, then all v heads. */
  qkv: GPUBuffer;
  /** [N, H] f32, written. */
  out: GPUBuffer;
  /** [batch, heads, seq, seq] f32, written: kept for the backward, which consumes it. */
  probs: GPUBuffer;
  /** [N] u32, 1 for a key to attend and 0 for padding (finetuning); absent: every key is attended. */
  keyMask?: GPUBuffer;
}

export interface AttentionBackwardArgs extends AttentionShape {
  /** [N, H] f32: gradient of the forward's `out`. */
  dout: GPUBuffer;
  /** [N, 3H] f32: the forward's input. */
  qkv: GPUBuffer;
  /**
   * [batch, heads, seq, seq] f32: the forward's probabilities (masked keys have probability 0, so the
   * backward needs no mask). Overwritten with the score gradients: the forward must run again before
   * another backward.
   */
  probs: GPUBuffer;
  /** [N, 3H] f32, written (not accumulated). */
  dqkv: GPUBuffer;
}

const FAMILY = "attention";
const WG = 128;
const CHUNK = 32;
const MAX_SEQ = 512;
const MAX_HEAD_DIM = 128;
// Rows per workgroup of the tiled kernels (TB in the WGSL).
const TILED_BLOCK = 16;

/** Records the attention forward: probs and out from qkv. */
export async function attentionForward(k: Kernels, args: AttentionForwardArgs): Promise<Dispatch[]> {
  const gpu = k.gpu;
  const plan = planAttention(gpu, args);
  checkBuffer("attention qkv", args.qkv, plan.tokens * 3 * plan.hidden * 4);
  checkBuffer("attention out", args.out, plan.tokens * plan.hidden * 4);
  checkBuffer("attention probs", args.probs, plan.probsBytes);
  if (args.keyMask) checkBuffer("attention keyMask", args.keyMask, plan.tokens * 4);
  // WebGPU binds every declared binding: without a mask the kernel gets a word it never reads.
  const keyMask = args.keyMask ?? storageBuffer(gpu, "attention.noKeyMask", 4);
  const params = paramBuffer(gpu, "attention.forward params", [
    args.heads,
    args.keyMask ? 1 : 0,
    { f32: plan.scale },
    0,
    0,
    ...plan.dropout,
  ]);
  const pipeline = await k.pipeline(FAMILY, `attention_forward${plan.suffix}`, plan.constants);
  const bindings = [params, args.qkv, args.probs, args.out, keyMask, plan.seeds];
  return [dispatch(gpu, pipeline, bindings, plan.grid)];
}

/** Records the attention backward: dqkv from dout, overwriting probs (see {@linkcode AttentionBackwardArgs}). */
export async function attentionBackward(k: Kernels, args: AttentionBackwardArgs): Promise<Dispatch[]> {
  const gpu = k.gpu;
  const plan = planAttention(gpu, args);
  const hidden4 = plan.hidden / 4;
  checkBuffer("attention backward dout", args.dout, plan.tokens * plan.hidden * 4);
  checkBuffer("attention backward qkv", args.qkv, plan.tokens * 3 * plan.hidden * 4);
  checkBuffer("attention backward probs", args.probs, plan.probsBytes);
  checkBuffer("attention backward dqkv", args.dqkv, plan.tokens * 3 * plan.hidden * 4);
  // dV and dQ see the dropped probabilities; dK's weights are score gradients, which have no mask.
  const [values, query, keys] = await Promise.all([
    k.pipeline(FAMILY, `attention_backward_keys${plan.suffix}`, plan.constants),
    k.pipeline(FAMILY, `attention_backward_query${plan.suffix}`, plan.constants),
    k.pipeline(FAMILY, `attention_backward_keys${plan.suffix}`, { ...plan.constants, PROBS_DROPOUT: 0 }),
  ]);
  const params = (label: string, rowStride4: number, outSection4: number) =>
    paramBuffer(gpu, `attention.backward ${label} params`, [
      args.heads,
      0,
      { f32: plan.scale },
      rowStride4,
      outSection4,
      ...plan.dropout,
    ]);
  const dvParams = params("dv", hidden4, 2 * hidden4);
  const queryParams = params("query", 0, 0);
  const dkParams = params("dk", 3 * hidden4, hidden4);
  const { seeds } = plan;
  return [
    dispatch(gpu, values, [dvParams, args.dout, args.probs, args.dqkv, seeds], plan.grid),
    dispatch(gpu, query, [queryParams, args.qkv, args.probs, args.dqkv, args.dout, seeds], plan.grid),
    dispatch(gpu, keys, [dkParams, args.qkv, args.probs, args.dqkv, seeds], plan.grid),
  ];
}

interface AttentionPlan {
  tokens: number;
  hidden: number;
  probsBytes: number;
  scale: number;
  /** The entry points' suffix: "" (simple) or "_tiled". */
  suffix: string;
  constants: Record<string, number>;
  grid: [number, number, number];
  /** The params' dropout words: threshold, scale, seed index (zeros without dropout). */
  dropout: [number, { f32: number }, number];
  /** The seeds binding, or a placeholder word (WebGPU binds every declared binding). */
  seeds: GPUBuffer;
}

/**
 * The variant that runs for `shape` on this adapter: "tiled" only where asked for and covered (headDim a
 * multiple of 16 and its workgroup memory within the adapter's limit).
 */
export function attentionVariant(gpu: Gpu, shape: AttentionShape): AttentionVariant {
  if (shape.variant !== "tiled" || shape.headDim % 16 !== 0) return "simple";
  const d4 = shape.headDim / 4;
  const chunk = shape.headDim;
  const seqPad = Math.ceil(shape.seq / chunk) * chunk;
  // tiledBlock, tiledChunk, tiledTile (vec4s) and tiledPartial (one f32 per thread).
  const bytes = (16 * d4 + 4 * d4 * d4 + seqPad * 4) * 16 + shape.headDim * 4;
  return bytes <= gpu.limits.maxComputeWorkgroupStorageSize ? "tiled" : "simple";
}

/**
 * Validates the shape and picks the rows per workgroup (BLOCK): 16 unless the block's score tile and
 * staged rows would exceed the adapter's workgroup memory (long sequences, wide heads), then halved.
 */
function planAttention(gpu: Gpu, shape: AttentionShape): AttentionPlan {
  const { batch, seq, heads, headDim } = shape;
  checkMultiple("attention batch", batch, 1);
  checkMultiple("attention seq", seq, 1);
  checkMultiple("attention heads", heads, 1);
  checkMultiple("attention headDim", headDim, 4);
  if (seq > MAX_SEQ) throw new GpuError(`attention seq = ${seq}, expected at most ${MAX_SEQ}`);
  if (headDim > MAX_HEAD_DIM) {
    throw new GpuError(`attention headDim = ${headDim}, expected at most ${MAX_HEAD_DIM}`);
  }
  const d4 = headDim / 4;
  const available = gpu.limits.maxComputeWorkgroupStorageSize;
  const workgroupBytes = (block: number) =>
    block * d4 * 16 + CHUNK * (d4 + 1) * 16 + block * seq * 4 + WG * 4;
  // BLOCK <= 16 and D4 <= 32 keep the kernel's BLOCK * D4 <= ACC * WG (4 * 128).
  let block = 16;
  while (block > 1 && workgroupBytes(block) > available) block /= 2;
  const needed = workgroupBytes(block);
  if (needed > available) {
    throw new GpuError(
      `attention seq ${seq} x headDim ${headDim} needs ${needed} bytes of workgroup memory, the adapter has ${available}`,
    );
  }
  const limit = gpu.limits.maxComputeWorkgroupsPerDimension;
  if (heads > limit || batch > limit) {
    throw new GpuError(`attention heads = ${heads}, batch = ${batch}, expected at most ${limit} each`);
  }
  const tokens = batch * seq;
  const { dropout } = shape;
  if (dropout) {
    if (!(dropout.p >= 0 && dropout.p < 1)) {
      throw new GpuError(`attention dropout p = ${dropout.p}, expected a probability in [0, 1)`);
    }
    checkBuffer("attention dropout seeds", dropout.seeds, (dropout.seedIndex + 1) * 4);
  }
  const dropoutConstant = { PROBS_DROPOUT: dropout ? 1 : 0 };
  const tiled = attentionVariant(gpu, shape) === "tiled";
  return {
    tokens,
    hidden: heads * headDim,
    probsBytes: batch * heads * seq * seq * 4,
    scale: 1 / Math.sqrt(headDim),
    suffix: tiled ? "_tiled" : "",
    // The tiled kernels run headDim threads per workgroup (one per 4x4 tile).
    constants: tiled
      ? { WG: headDim, SEQ: seq, D4: d4, ...dropoutConstant }
      : { WG, SEQ: seq, D4: d4, BLOCK: block, CHUNK, ...dropoutConstant },
    grid: [Math.ceil(seq / (tiled ? TILED_BLOCK : block)), heads, batch],
    dropout: dropout
      ? [dropoutThreshold(dropout.p), { f32: 1 / (1 - dropout.p) }, dropout.seedIndex]
      : [0, { f32: 0 }, 0],
    seeds: dropout?.seeds ?? storageBuffer(gpu, "attention.noSeeds", 4),
  };
}
