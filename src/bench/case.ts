/**
 * The shape of a kernel benchmark case, which each layer wrapper exports beside its ops (e.g.
 * `layerNormBenchCases` in src/model/layers/layernorm.ts) and src/bench/kernels.ts collects and times.
 *
 * A case's `bytes` are the DRAM traffic its call cannot avoid: every element of every buffer it reads
 * counts once per dispatch and every element it writes counts once (a read-modify-write element twice),
 * however often the kernel re-reads it from cache; a gather counts the distinct rows it touches. A call of
 * several dispatches sums its dispatches (a buffer that two dispatches read is read twice). Uniform buffers
 * and one-word buffers (counts, scales) are left out. Each case's comment lists its terms.
 *
 * @module
 */
import type { Dispatch, Kernels } from "../gpu/kernels.ts";
import type { ModelConfig } from "../model/config.ts";

/** What the cases are planned for: a model, a micro-batch and one masked batch of its token ids. */
export interface BenchShape {
  config: ModelConfig;
  /** Sequences per micro-batch: the calls run on microBatch * config.maxSeqLen tokens. */
  microBatch: number;
  /** One masked micro-batch (a Zipf law over the vocabulary in `deno task bench`, see batches.ts). */
  batch: {
    inputIds: Uint32Array<ArrayBuffer>;
    labelPositions: Uint32Array<ArrayBuffer>;
    labelIds: Uint32Array<ArrayBuffer>;
  };
  /** Capacity of the masked rows the loss runs on (maxLabels of the micro-batch). */
  maskedRows: number;
  /** Invocations per row of scores in the softmax passes (default: the attention layer's). */
  softmaxLanes?: number;
}

/** Allocates a case's buffers and remembers them for destruction after its measurement. */
export interface CaseBuffers {
  /** f32 [count] holding a fixed pattern of values in [0, 1). */
  random(label: string, count: number): GPUBuffer;
  /** Zero-filled, `count` 4-byte words. */
  zeros(label: string, count: number): GPUBuffer;
  /** Holding `data`. */
  upload(label: string, data: Uint32Array<ArrayBuffer> | Float32Array<ArrayBuffer>): GPUBuffer;
}

/** One call to measure. */
export interface KernelCase {
  /** The wrapper's operation, e.g. "layernorm_backward". */
  name: string;
  /** The sizes it runs at, e.g. "16384x768". */
  shape: string;
  /** Bytes the call must move (see the module comment). */
  bytes: number;
  /** Floating-point operations of a call, or null for a memory-bound kernel. */
  flops: number | null;
  /** Plans the call on buffers from `buffers`. */
  plan(k: Kernels, buffers: CaseBuffers): Promise<Dispatch[]>;
}

/** Bytes of `count` 4-byte elements. */
export function f32Bytes(count: number): number {
  return count * 4;
}

/** The tokens of a micro-batch: microBatch * maxSeqLen. */
export function benchTokens(shape: BenchShape): number {
  return shape.microBatch * shape.config.maxSeqLen;
}
