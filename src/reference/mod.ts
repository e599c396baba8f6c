/**
 * The float64 CPU reference: every op of the training step ({@linkcode matmul}, {@linkcode layerNormForward},
 * ...), the whole model's loss and gradients ({@linkcode referenceForwardBackward}), the classifier, and
 * the optimizer step. Plain loops written for clarity; each GPU kernel's tests compare against them.
 *
 * @module
 */
export * from "./matmul.ts";
export * from "./layernorm.ts";
export * from "./activation.ts";
export * from "./dropout.ts";
export * from "./attention.ts";
export * from "./embedding.ts";
export * from "./cross_entropy.ts";
export * from "./pooling.ts";
export { referenceEncode, referenceEncoderPass, referenceForwardBackward } from "./model.ts";
export type { ReferenceBatchOptions, ReferenceEncoderPass, ReferenceResult } from "./model.ts";
export { referenceClassifierLoss, referenceClassify } from "./classifier.ts";
export type { ClassifierBatchOptions, ClassifierLossResult } from "./classifier.ts";
export { adamwStep, clipFactor, globalNorm, updateLossScale } from "./optimizer.ts";
export type { AdamwOptions } from "./optimizer.ts";
