/**
 * Per-kernel benchmark of every non-matmul kernel of the training step: the time of one call of each
 * layer wrapper at a model's shapes (back-to-back calls in one submit, see timing.ts), the bytes the call
 * must move, and how close that comes to the memory bandwidth.
 *
 * Byte counts are the DRAM traffic the call cannot avoid: every element of every buffer it reads counts
 * once per dispatch and every element it writes counts once (a read-modify-write element twice), however
 * often the kernel re-reads it from cache; a gather counts the distinct rows it touches. A call of several
 * dispatches sums its dispatches (a buffer that two dispatches read is read twice). Uniform buffers and
 * one-word buffers (counts, scales) are left out. Each case's comment lists its terms.
 *
 * Token ids follow a Zipf law over the vocabulary, masked as in training (src/train/masking.ts), so the
 * word-embedding gradient sees the long segments of frequent ids and of [MASK] that real batches have.
 *
 * @module
 */
import { storageBuffer, uploadBuffer, writeBuffer } from "../gpu/buffers.ts";
import type { Gpu } from "../gpu/device.ts";
import type { Dispatch, Kernels } from "../gpu/kernels.ts";
import { downInputWidth, headDim, type ModelConfig } from "../model/config.ts";
import { paramLayout } from "../model/params.ts";
import type { ModelBatch } from "../model/model.ts";
import { geluBackward, geluForward, gluBackward, gluForward } from "../model/layers/activation.ts";
import { attentionBackward, attentionForward } from "../model/layers/attention.ts";
import { crossEntropy, gatherRows, LOSS_TOTALS_BYTES, scatterRows } from "../model/layers/cross_entropy.ts";
import { dropoutForward } from "../model/layers/dropout.ts";
import {
  embeddingBackward,
  embeddingForward,
  packTokenOrder,
  sortTokens,
} from "../model/layers/embedding.ts";
import { layerNormBackward, layerNormForward } from "../model/layers/layernorm.ts";
import { BERT_MASK_RATE, maxLabels } from "../train/masking.ts";
import {
  adamw,
  adamwStepBuffer,
  decayFlags,
  gradNorm,
  OPTIMIZER_STATS_BYTES,
  zeroBuffer,
} from "../train/optimizer.ts";
import { streamKey, uniform } from "../train/random.ts";
import { timeDispatches, type TimingOptions } from "./timing.ts";
import { zipfBatch } from "./batches.ts";

/** The H200's measured copy bandwidth, bytes per second (the issue's yardstick). */
export const H200_BANDWIDTH = 4.3e12;

export interface KernelBenchOptions extends TimingOptions {
  /** Memory bandwidth in bytes per second that `vs_bandwidth` compares with (default {@linkcode H200_BANDWIDTH}). */
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
  /** Time over the time `bytes` take at the bandwidth (the target: at most 2). */
  vs_bandwidth: number;
  /** Floating-point operations of a call (attention only; null for the memory-bound kernels). */
  flops: number | null;
  tflops: number | null;
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
  name: string;
  shape: string;
  bytes: number;
  flops: number | null;
  plan(k: Kernels, buffers: CaseBuffers): Promise<Dispatch[]>;
}

/**
 * The non-matmul calls of one training step of `config` at `microBatch` sequences (the configured FFN
 * activation and position embedding), plus dropout (finetuning only; its backward is the same kernel).
 */
export function kernelCases(
  config: ModelConfig,
  microBatch: number,
  batch: ModelBatch,
  options: Pick<KernelBenchOptions, "softmaxLanes"> = {},
): KernelCase[] {
  const { hidden: H, intermediate: I, vocabSize: V, heads, maxSeqLen: S, normEps: eps } = config;
  const B = microBatch;
  const N = B * S;
  const d = headDim(config);
  const R = maxLabels(B, S, BERT_MASK_RATE);
  const M = batch.labelIds.length;
  const layout = paramLayout(config);
  const P = layout.totalSize;
  const sorted = sortTokens(batch.inputIds);
  const U = sorted.uniqueIds.length;
  const probs = B * heads * S * S;
  const f32 = (count: number) => count * 4;
  const rowsShape = `${N}x${H}`;
  const cases: KernelCase[] = [];

  const scaled = config.positions === "scaled-sinusoidal";
  const embeddingForwardCase: KernelCase = {
    name: "embedding_forward",
    shape: `${rowsShape}, ${U} distinct ids`,
    // ids N, the distinct word rows U x H, the position table S x H; x N x H written.
    bytes: f32(N + U * H + S * H + N * H),
    flops: null,
    plan: (k, b) =>
      embeddingForward(k, {
        tokens: N,
        seq: S,
        hidden: H,
        vocab: V,
        ids: b.upload("ids", batch.inputIds),
        word: b.random("word", V * H),
        position: scaled
          ? { kind: "scaled-sinusoidal", table: b.random("sinusoid", S * H), scale: b.random("scale", 1) }
          : { kind: "learned", table: b.random("position", S * H) },
        x: b.zeros("x", N * H),
      }),
  };
  cases.push(embeddingForwardCase);

  cases.push({
    name: "layernorm_forward",
    shape: rowsShape,
    // x read, y written (N x H each); weight and bias H each; mean and rstd N each written.
    bytes: f32(2 * N * H + 2 * H + 2 * N),
    flops: null,
    plan: (k, b) =>
      layerNormForward(k, {
        x: b.random("x", N * H),
        weight: b.random("weight", H),
        bias: b.random("bias", H),
        y: b.zeros("y", N * H),
        mean: b.zeros("mean", N),
        rstd: b.zeros("rstd", N),
        rows: N,
        cols: H,
        eps,
      }),
  });

  // The wrapper's default rows per block of the first stage (8 per row slot).
  cases.push({
    name: "layernorm_backward",
    shape: `${rowsShape}, residual`,
    // dy, x and residual read, dx written (N x H each), weight H, mean and rstd N each, dweight and
    // dbias read and written. The two-stage reduction's partial sums are not counted.
    bytes: f32(4 * N * H + H + 2 * N + 4 * H),
    flops: null,
    plan: (k, b) =>
      layerNormBackward(k, {
        dy: b.random("dy", N * H),
        x: b.random("x", N * H),
        weight: b.random("weight", H),
        mean: b.random("mean", N),
        rstd: b.random("rstd", N),
        dx: b.zeros("dx", N * H),
        residual: b.random("residual", N * H),
        dweight: b.zeros("dweight", H),
        dbias: b.zeros("dbias", H),
        rows: N,
        cols: H,
      }),
  });

  if (config.ffn === "gelu") {
    cases.push({
      name: "gelu_forward",
      shape: `${N}x${I}`,
      // x read, y written.
      bytes: f32(2 * N * I),
      flops: null,
      plan: (k, b) => geluForward(k, { x: b.random("x", N * I), y: b.zeros("y", N * I), length: N * I }),
    }, {
      name: "gelu_backward",
      shape: `${N}x${I}`,
      // dy and x read, dx written.
      bytes: f32(3 * N * I),
      flops: null,
      plan: (k, b) =>
        geluBackward(k, {
          dy: b.random("dy", N * I),
          x: b.random("x", N * I),
          dx: b.zeros("dx", N * I),
          length: N * I,
        }),
    });
  } else {
    const half = downInputWidth(config);
    cases.push({
      name: "glu_forward",
      shape: `${N}x${I}`,
      // h (N x I) read, out (N x I/2) written.
      bytes: f32(N * I + N * half),
      flops: null,
      plan: (k, b) =>
        gluForward(k, { h: b.random("h", N * I), out: b.zeros("out", N * half), rows: N, inner: I }),
    }, {
      name: "glu_backward",
      shape: `${N}x${I}`,
      // dout (N x I/2) and h (N x I) read, dh (N x I) written.
      bytes: f32(N * half + 2 * N * I),
      flops: null,
      plan: (k, b) =>
        gluBackward(k, {
          dout: b.random("dout", N * half),
          h: b.random("h", N * I),
          dh: b.zeros("dh", N * I),
          rows: N,
          inner: I,
        }),
    });
  }

  const attentionShape = { batch: B, seq: S, heads, headDim: d, lanes: options.softmaxLanes };
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
    (await dispatches).filter((d) => d.pipeline.label.startsWith("attention."));
  cases.push({
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
  });

  cases.push({
    name: "embedding_backward",
    shape: `${rowsShape}, ${U} distinct ids`,
    // dx (N x H) read once; of tokenOrder the positions (N) and the U distinct ids read; the U distinct
    // dword rows read and written. Position scale: the sinusoid table (S x H) read. Learned table
    // instead: its gradient (S x H) read and written. Partial sums and segment bounds are not counted.
    bytes: f32(N * H + N + U + 2 * U * H + (scaled ? S * H : 2 * S * H)),
    flops: null,
    plan: (k, b) =>
      embeddingBackward(k, {
        tokens: N,
        seq: S,
        hidden: H,
        vocab: V,
        dx: b.random("dx", N * H),
        tokenOrder: b.upload("token order", packTokenOrder(sorted, N)),
        dword: b.zeros("dword", V * H),
        position: scaled
          ? { kind: "scaled-sinusoidal", table: b.random("sinusoid", S * H), grad: b.zeros("dscale", 1) }
          : { kind: "learned", grad: b.zeros("dposition", S * H) },
      }),
  });

  const labelPositions = new Uint32Array(R);
  labelPositions.set(batch.labelPositions);
  const labelIds = new Uint32Array(R);
  labelIds.set(batch.labelIds);
  const maskedRows = { tokens: N, rows: R, hidden: H };
  const rowsOf = `${M} of ${R} rows`;
  cases.push({
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
  }, {
    name: "dropout",
    shape: `${rowsShape}, finetuning only`,
    // input read, output written.
    bytes: f32(2 * N * H),
    flops: null,
    plan: (k, b) =>
      dropoutForward(k, {
        count: N * H,
        p: 0.1,
        seeds: b.upload("seeds", Uint32Array.of(12345)),
        seedIndex: 0,
        x: b.random("x", N * H),
        y: b.zeros("y", N * H),
      }),
  });

  // The wrapper's default partial-sum count for P elements.
  const normPartials = Math.min(Math.ceil(P / 4 / 256), 1024);
  const flags = decayFlags(layout);
  cases.push({
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
  });
  return cases;
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
  options: KernelBenchOptions = {},
): Promise<KernelResult> {
  const { bandwidth = H200_BANDWIDTH, seed = 0 } = options;
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
  for (const benchCase of cases) {
    if (!options.only || options.only.includes(benchCase.name)) {
      yield await benchKernelCase(k, benchCase, options);
    }
  }
}

function round(value: number): number {
  return +value.toPrecision(4);
}
