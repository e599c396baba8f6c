/**
 * The float64 reference of the finetuning model: the encoder of model.ts, then the Cramming recipe's head
 * on the pooled final states (`pooling`: the [CLS] state at position 0, the default, or the mean over the
 * real tokens): Linear(hidden -> 1024) with bias, tanh, dropout, Linear(1024 -> labels) with bias. STS-B's regression head is the same with one output. Dropout (0.1 during finetuning, at the
 * sites of src/model/dropout_sites.ts) is the identity at inference ({@linkcode referenceClassify});
 * {@linkcode referenceClassifierLoss} applies it when given seeds, and gives the loss's gradients: mean
 * cross-entropy over the batch for classification, mean squared error for regression (torch's
 * CrossEntropyLoss and MSELoss, as the recipe's model uses).
 *
 * The head's parameters live in a flat vector of their own (src/model/head_layout.ts).
 *
 * @module
 */
import type { ModelConfig } from "../model/config.ts";
import { headSite } from "../model/dropout_sites.ts";
import { HEAD_INNER, headLayout, headView, type Pooling } from "../model/head_layout.ts";
import { drop, dropoutAt, type ReferenceBatchOptions, referenceEncoderPass } from "./model.ts";
import { matmul } from "./matmul.ts";
import { crossEntropy } from "./cross_entropy.ts";
import { pool, poolBackward } from "./pooling.ts";

/** A classifier batch's options: the encoder's, and what the head pools (default `cls`). */
export interface ClassifierBatchOptions extends ReferenceBatchOptions {
  pooling?: Pooling;
}

/** Logits [batch, labels] of `ids` [batch, seq] (padding marked 0 in `options.keyMask`), without dropout. */
export function referenceClassify(
  config: ModelConfig,
  params: Float32Array | Float64Array,
  head: Float32Array | Float64Array,
  labels: number,
  ids: ArrayLike<number>,
  options: ClassifierBatchOptions,
): Float64Array {
  return classifierForward(config, params, head, labels, ids, { ...options, dropout: undefined }).logits;
}

/** The loss of a batch, its logits, and the gradients of the encoder's and the head's parameters. */
export interface ClassifierLossResult {
  loss: number;
  /** [batch, labels]. */
  logits: Float64Array;
  /** In the encoder's paramLayout. */
  grads: Float64Array;
  /** In {@linkcode headLayout}. */
  headGrads: Float64Array;
}

/**
 * The mean loss over the batch of `ids` [batch, seq] against `targets` [batch] (a label index, or the
 * score for a one-output regression head), with `options.dropout` applied if given, and its gradients.
 */
export function referenceClassifierLoss(
  config: ModelConfig,
  params: Float32Array | Float64Array,
  head: Float32Array | Float64Array,
  labels: number,
  ids: ArrayLike<number>,
  targets: ArrayLike<number>,
  options: ClassifierBatchOptions,
): ClassifierLossResult {
  const { batch, seq } = options;
  const H = config.hidden;
  if (targets.length !== batch) throw new RangeError(`targets: expected ${batch}, got ${targets.length}`);
  const f = classifierForward(config, params, head, labels, ids, options);
  const { loss, dlogits } = referenceHeadLoss(f.logits, targets, { rows: batch, labels });

  const weights = Float64Array.from(head);
  const view = (name: string) => headView(config, labels, weights, name);
  const headGrads = new Float64Array(headLayout(config, labels).totalSize);
  const grad = (name: string) => headView(config, labels, headGrads, name);
  grad("head.out.weight").set(
    matmul(dlogits, f.dropped, { m: labels, k: batch, n: HEAD_INNER, transA: true }),
  );
  grad("head.out.bias").set(columnSums(dlogits, batch, labels));
  const ddropped = matmul(dlogits, view("head.out.weight"), { m: batch, k: labels, n: HEAD_INNER });
  const dactivated = drop(ddropped, dropoutAt(options, headSite(config)));
  const ddense = dactivated.map((d, i) => d * (1 - f.activated[i] ** 2));
  grad("head.dense.weight").set(matmul(ddense, f.pooled, { m: HEAD_INNER, k: batch, n: H, transA: true }));
  grad("head.dense.bias").set(columnSums(ddense, batch, HEAD_INNER));
  const dpooled = matmul(ddense, view("head.dense.weight"), { m: batch, k: HEAD_INNER, n: H });
  const dstates = poolBackward(dpooled, options.pooling ?? "cls", {
    batch,
    seq,
    hidden: H,
    keyMask: options.keyMask,
  });
  return { loss, logits: f.logits, grads: f.encoder.backward(dstates), headGrads };
}

/**
 * The head's loss over `rows` rows of logits [rows, labels] and its gradient: mean cross-entropy against
 * label indices, or for one output the mean squared error against scores (torch.nn.MSELoss).
 */
export function referenceHeadLoss(
  logits: ArrayLike<number>,
  targets: ArrayLike<number>,
  options: { rows: number; labels: number },
): { loss: number; dlogits: Float64Array } {
  const { rows, labels } = options;
  if (labels > 1) return crossEntropy(logits, targets, { rows, vocab: labels });
  if (logits.length !== rows || targets.length !== rows) {
    throw new RangeError(`squared error: ${logits.length} logits, ${targets.length} targets, ${rows} rows`);
  }
  const dlogits = new Float64Array(rows);
  let loss = 0;
  for (let r = 0; r < rows; r++) {
    const diff = logits[r] - targets[r];
    loss += diff * diff / rows;
    dlogits[r] = 2 * diff / rows;
  }
  return { loss, dlogits };
}

/** The sums over the rows of a row-major [rows, cols] matrix (a bias's gradient). */
export function columnSums(m: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const sums = new Float64Array(cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) sums[c] += m[r * cols + c];
  return sums;
}

/** The forward, keeping what the backward needs. */
function classifierForward(
  config: ModelConfig,
  params: Float32Array | Float64Array,
  head: Float32Array | Float64Array,
  labels: number,
  ids: ArrayLike<number>,
  options: ClassifierBatchOptions,
) {
  const { batch, seq } = options;
  const H = config.hidden;
  const encoder = referenceEncoderPass(config, params, ids, options);
  const pooled = pool(encoder.states, options.pooling ?? "cls", {
    batch,
    seq,
    hidden: H,
    keyMask: options.keyMask,
  });
  const view = (name: string) => headView(config, labels, head, name);
  const dense = linear(pooled, view("head.dense.weight"), view("head.dense.bias"), batch, H, HEAD_INNER);
  const activated = dense.map(Math.tanh);
  const dropped = drop(activated, dropoutAt(options, headSite(config)));
  const logits = linear(dropped, view("head.out.weight"), view("head.out.bias"), batch, HEAD_INNER, labels);
  return { encoder, pooled, activated, dropped, logits };
}

/** y[rows, out] = x W^T + bias, W [out, in]. */
function linear(
  x: Float64Array,
  weight: ArrayLike<number>,
  bias: ArrayLike<number>,
  rows: number,
  inputs: number,
  outputs: number,
): Float64Array {
  const y = matmul(x, weight, { m: rows, k: inputs, n: outputs, transB: true });
  for (let r = 0; r < rows; r++) for (let c = 0; c < outputs; c++) y[r * outputs + c] += bias[c];
  return y;
}
