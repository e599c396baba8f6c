/**
 * Parity with the PyTorch peer: the report `torch_peer.py parity` prints (loss, predicted tokens, and per
 * parameter its gradient's L2 norm and first 4 values), computed here from the float64 reference, and a
 * comparison of two such reports.
 *
 * @module
 */
import type { Batch } from "../model/checkpoint.ts";
import type { ModelConfig } from "../model/config.ts";
import { paramLayout } from "../model/params.ts";
import { referenceForwardBackward } from "./model.ts";
import { pcg } from "../model/hash.ts";

/** The JSON that `torch_peer.py parity` prints, key for key. */
export interface ParityReport {
  loss: number;
  predicted_tokens: number;
  grads: Record<string, { norm: number; head: number[] }>;
}

/** The reference's parity report for one MLM forward/backward of `batch`. */
export function referenceParityReport(config: ModelConfig, params: Float32Array, batch: Batch): ParityReport {
  const { loss, predicted, grads } = referenceForwardBackward(config, params, batch.ids, batch.labels, batch);
  return parityReport(config, { loss, predicted, grads });
}

/** The parity report of a loss and flat gradients (in `paramLayout(config)`) computed by any engine. */
export function parityReport(
  config: ModelConfig,
  { loss, predicted, grads }: { loss: number; predicted: number; grads: Float32Array | Float64Array },
): ParityReport {
  const report: ParityReport = { loss, predicted_tokens: predicted, grads: {} };
  for (const t of paramLayout(config).tensors) {
    const g = grads.subarray(t.offset, t.offset + t.size);
    let sumSquares = 0;
    for (const v of g) sumSquares += v * v;
    report.grads[t.name] = { norm: Math.sqrt(sumSquares), head: Array.from(g.subarray(0, 4)) };
  }
  return report;
}

/**
 * A batch of random token ids in which each position is predicted (labelled with its own id) with
 * probability `maskRate`, at least one per batch; reproducible from `seed`.
 */
export function randomParityBatch(
  config: ModelConfig,
  options: { batch: number; seq: number; seed: number; maskRate?: number },
): Batch {
  const { batch, seq, seed, maskRate = 0.15 } = options;
  const n = batch * seq;
  const key = pcg(seed >>> 0);
  const ids = new Int32Array(n);
  const labels = new Int32Array(n).fill(-100);
  for (let t = 0; t < n; t++) {
    ids[t] = pcg((key ^ (2 * t)) >>> 0) % config.vocabSize;
    if (pcg((key ^ (2 * t + 1)) >>> 0) / 2 ** 32 < maskRate) labels[t] = ids[t];
  }
  if (!labels.some((l) => l >= 0)) labels[0] = ids[0];
  return { batch, seq, ids, labels };
}

/** How far one parity report is from another: relative differences of the loss and of each gradient. */
export interface ParityComparison {
  /** |loss - expected| / |expected|. */
  loss: number;
  predictedTokensMatch: boolean;
  /** Per tensor: relative difference of the norms, and of the first values relative to the norm. */
  grads: { name: string; norm: number; head: number }[];
  /** Tensors in one report but not the other. */
  missing: string[];
  /** The largest of all relative differences. */
  worst: number;
}

/** Compares `actual` against `expected` (e.g. this project's report against the peer's). */
export function compareParity(actual: ParityReport, expected: ParityReport): ParityComparison {
  const relative = (a: number, e: number, scale = Math.abs(e)) => Math.abs(a - e) / Math.max(scale, 1e-30);
  const names = new Set([...Object.keys(actual.grads), ...Object.keys(expected.grads)]);
  const grads: ParityComparison["grads"] = [];
  const missing: string[] = [];
  for (const name of names) {
    const a = actual.grads[name];
    const e = expected.grads[name];
    if (!a || !e) {
      missing.push(name);
      continue;
    }
    const head = Math.max(0, ...e.head.map((v, i) => relative(a.head[i] ?? NaN, v, e.norm)));
    grads.push({ name, norm: relative(a.norm, e.norm), head });
  }
  const loss = relative(actual.loss, expected.loss);
  const predictedTokensMatch = actual.predicted_tokens === expected.predicted_tokens;
  const worst = missing.length > 0 || !predictedTokensMatch
    ? Infinity
    : Math.max(loss, ...grads.flatMap((g) => [g.norm, g.head]));
  return { loss, predictedTokensMatch, grads, missing, worst: Number.isNaN(worst) ? Infinity : worst };
}
