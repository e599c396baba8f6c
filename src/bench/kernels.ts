/**
 * Per-kernel benchmark of every non-matmul kernel of the training step: the time of one call of each
 * layer wrapper at a model's shapes (back-to-back calls in one submit, see timing.ts), the bytes the call
 * must move, and how close that comes to the memory bandwidth.
 *
 * The cases live beside their wrappers (`layerNormBenchCases` in src/model/layers/layernorm.ts, and so
 * on; src/bench/case.ts says how their bytes are counted): this module collects them and times each.
 *
 * Token ids follow a Zipf law over the vocabulary, masked as in training (src/train/masking.ts), so the
 * word-embedding gradient sees the long segments of frequent ids and of [MASK] that real batches have.
 *
 * @module
 */
import { storageBuffer, uploadBuffer, writeBuffer } from "../gpu/buffers.ts";
import type { Gpu } from "../gpu/device.ts";
import type { Kernels } from "../gpu/kernels.ts";
import type { ModelConfig } from "../model/config.ts";
import type { ModelBatch } from "../model/model.ts";
import { activationBenchCases } from "../model/layers/activation.ts";
import { convertBenchCases } from "../model/layers/convert.ts";
import { attentionBenchCases } from "../model/layers/attention.ts";
import { crossEntropyBenchCases } from "../model/layers/cross_entropy.ts";
import { dropoutBenchCases } from "../model/layers/dropout.ts";
import { embeddingBenchCases } from "../model/layers/embedding.ts";
import { layerNormBenchCases } from "../model/layers/layernorm.ts";
import { BERT_MASK_RATE, maxLabels } from "../train/masking.ts";
import { optimizerBenchCases } from "../train/optimizer.ts";
import { streamKey, uniform } from "../train/random.ts";
import type { BenchShape, CaseBuffers, KernelCase } from "./case.ts";
import { timeDispatches, type TimingOptions } from "./timing.ts";
import { zipfBatch } from "./batches.ts";

export interface KernelBenchOptions extends TimingOptions {
  /**
   * Memory bandwidth in bytes per second that `vs_bandwidth` compares with; by default the rate of the
   * `copy` case (an f32 copy) measured first on this device.
   */
  bandwidth?: number;
  /** Names of the cases to run (default all, see {@linkcode kernelCases}). */
  only?: readonly string[];
  /** Seed of the token ids and buffer contents (default 0). */
  seed?: number;
  /** Invocations per row of scores in the softmax passes (default: the attention layer's). */
  softmaxLanes?: number;
}

/** One JSON line of `deno task bench --kernels`. */
export interface KernelResult {
  bench: "kernel";
  /** The case: the layer wrapper's operation, e.g. "layernorm_backward". */
  name: string;
  /** Pipeline labels of the call's dispatches, in order. */
  kernels: string[];
  /** The sizes it runs at, e.g. "16384x768". */
  shape: string;
  /** Microseconds per call. */
  us: number;
  /** Bytes the call must move (see the module comment). */
  bytes: number;
  /** Achieved bytes per second / 1e9. */
  gb_s: number;
  /** Time over the time `bytes` take at the bandwidth: 1 is the copy's rate, 2 half of it. */
  vs_bandwidth: number;
  /** Floating-point operations of a call (attention only; null for the memory-bound kernels). */
  flops: number | null;
  tflops: number | null;
}

/**
 * The bandwidth reference (`copy`, an f32 copy) and the non-matmul calls of one training step of `config`
 * at `microBatch` sequences (the configured FFN activation and position embedding), plus dropout
 * (finetuning only; its backward is the same kernel): each layer wrapper's own cases (its `...BenchCases`).
 */
export function kernelCases(
  config: ModelConfig,
  microBatch: number,
  batch: ModelBatch,
  options: Pick<KernelBenchOptions, "softmaxLanes"> = {},
): KernelCase[] {
  const shape: BenchShape = {
    config,
    microBatch,
    batch,
    maskedRows: maxLabels(microBatch, config.maxSeqLen, BERT_MASK_RATE),
    softmaxLanes: options.softmaxLanes,
  };
  const [embeddingForward, embeddingBackward] = embeddingBenchCases(shape);
  return [
    ...convertBenchCases(shape),
    embeddingForward,
    ...layerNormBenchCases(shape),
    ...activationBenchCases(shape),
    ...attentionBenchCases(shape),
    embeddingBackward,
    ...crossEntropyBenchCases(shape),
    ...dropoutBenchCases(shape),
    ...optimizerBenchCases(shape),
  ];
}

/**
 * Words of the repeated fill pattern (256 KiB): random, so no compression of zero or repetitive data
 * can flatter a figure, and cheap to generate.
 */
const PATTERN_WORDS = 1 << 16;

function caseBuffers(gpu: Gpu, seed: number, created: GPUBuffer[]): CaseBuffers {
  const key = streamKey(seed, 0x7a11);
  const pattern = Float32Array.from({ length: PATTERN_WORDS }, (_, i) => uniform(key, i));
  const keep = (buffer: GPUBuffer) => (created.push(buffer), buffer);
  return {
    random(label, count) {
      const buffer = keep(storageBuffer(gpu, `bench ${label}`, count * 4));
      for (let at = 0; at < count; at += PATTERN_WORDS) {
        writeBuffer(gpu, buffer, pattern.subarray(0, Math.min(PATTERN_WORDS, count - at)), at * 4);
      }
      return buffer;
    },
    zeros: (label, count) => keep(storageBuffer(gpu, `bench ${label}`, count * 4)),
    upload: (label, data) => keep(uploadBuffer(gpu, `bench ${label}`, data)),
  };
}

/** Runs `benchCase` on its own buffers and measures it. */
async function benchKernelCase(
  k: Kernels,
  benchCase: KernelCase,
  options: KernelBenchOptions & { bandwidth: number },
): Promise<KernelResult> {
  const { bandwidth, seed = 0 } = options;
  const created: GPUBuffer[] = [];
  try {
    const dispatches = await benchCase.plan(k, caseBuffers(k.gpu, seed, created));
    const { seconds } = await timeDispatches(k.gpu, dispatches, options);
    return {
      bench: "kernel",
      name: benchCase.name,
      kernels: dispatches.map((d) => d.pipeline.label),
      shape: benchCase.shape,
      us: round(seconds * 1e6),
      bytes: benchCase.bytes,
      gb_s: round(benchCase.bytes / seconds / 1e9),
      vs_bandwidth: round(seconds / (benchCase.bytes / bandwidth)),
      flops: benchCase.flops,
      tflops: benchCase.flops === null ? null : round(benchCase.flops / seconds / 1e12),
    };
  } finally {
    for (const buffer of created) buffer.destroy();
  }
}

/**
 * Benchmarks the non-matmul calls of a step of `config` at `microBatch` (see {@linkcode kernelCases}),
 * yielding each result as soon as it is measured.
 */
export async function* benchKernels(
  k: Kernels,
  config: ModelConfig,
  microBatch: number,
  options: KernelBenchOptions = {},
): AsyncGenerator<KernelResult> {
  const batch = zipfBatch(config, microBatch, options.seed ?? 0);
  const cases = kernelCases(config, microBatch, batch, options);
  const unknown = options.only?.filter((name) => !cases.some((c) => c.name === name)) ?? [];
  if (unknown.length > 0) {
    throw new RangeError(
      `only: no kernel case named ${unknown.join(", ")}; expected among ${
        cases.map((c) => c.name).join(", ")
      }`,
    );
  }
  const selected = (c: KernelCase) => !options.only || options.only.includes(c.name);
  const [copyCase, ...others] = cases; // kernelCases lists the bandwidth reference first
  let bandwidth = options.bandwidth;
  if (bandwidth === undefined) {
    // The copy, measured first, is the reference: its own ratio is 1.
    const copy = await benchKernelCase(k, copyCase, { ...options, bandwidth: 1 });
    bandwidth = copy.bytes / (copy.us * 1e-6);
    if (selected(copyCase)) yield { ...copy, vs_bandwidth: 1 };
  } else if (selected(copyCase)) {
    yield await benchKernelCase(k, copyCase, { ...options, bandwidth });
  }
  for (const benchCase of others) {
    if (selected(benchCase)) yield await benchKernelCase(k, benchCase, { ...options, bandwidth });
  }
}

function round(value: number): number {
  return +value.toPrecision(4);
}
