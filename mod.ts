/**
 * cram: train a BERT-style language model from scratch on one GPU within a fixed time budget, with every
 * part of the training step (forward, backward, clipping, AdamW) running as WGSL compute shaders through
 * WebGPU. The tasks (`deno task pretrain`, `eval`, `tokenize`, `bench`) are built from this surface:
 * tokenizing a corpus into a dataset, acquiring a device, planning a model and its trainer, the budgeted
 * training loop and its run folder, and the exports and evaluation of a pretrained model. The float64 CPU
 * reference of every op is the {@linkcode reference} namespace.
 *
 * @example Ten optimizer steps of the tiny model on a tokenized dataset
 * ```ts
 * import {
 *   BatchSource, Budget, initParams, Kernels, maxLabels, openShards, planTrainer, presets, readManifest,
 *   requestGpu, trainLoop,
 * } from "./mod.ts";
 *
 * const { paths } = await readManifest("runs/data");
 * const shards = await openShards(paths);
 * const config = { ...presets.tiny, vocabSize: shards.vocabSize, maxSeqLen: shards.seqLen };
 * const gpu = await requestGpu();
 * const trainer = await planTrainer(new Kernels(gpu), config, {
 *   batch: 8,
 *   seq: shards.seqLen,
 *   maxLabels: maxLabels(8, shards.seqLen, 0.15),
 * });
 * gpu.device.queue.writeBuffer(trainer.model.params, 0, initParams(config, { seed: 0 }));
 * const result = await trainLoop({
 *   trainer,
 *   source: new BatchSource(shards, { microBatch: 8, seed: 0, maskRate: 0.15, vocabSize: config.vocabSize }),
 *   budget: new Budget({ steps: 10 }),
 *   lr: { peak: 1e-3, start: 0.25, peakAt: 0.75 },
 *   ramp: { target: 1, ramp: 0 },
 *   logEvery: 5,
 *   checkpointSeconds: Infinity,
 *   maxNonfinite: 10,
 *   start: { step: 0, skipped: 0, tokensSeen: 0, data: { epoch: 0, index: 0 }, epoch: 0 },
 *   budgetLabel: "10steps",
 * }, {
 *   record: (r) => console.log(r.step, r.loss),
 *   progress: () => {},
 *   message: console.log,
 *   checkpoint: async () => {},
 *   interrupted: () => false,
 * });
 * console.log(result.stopped, result.last?.loss);
 * ```
 *
 * @module
 */

// Tokenizer and datasets.
export { CLS_ID, MASK_ID, PAD_ID, SEP_ID, Tokenizer, UNK_ID } from "./src/data/tokenizer.ts";
export type { ModelInput } from "./src/data/tokenizer.ts";
export { buildDataset } from "./src/data/dataset.ts";
export type { DatasetOptions, DatasetSummary } from "./src/data/dataset.ts";
export type { CorpusFile, CorpusFormat } from "./src/data/corpus_files.ts";
export type { ReadStats } from "./src/data/read.ts";
export type { PackStats } from "./src/data/pack.ts";
export type { WordPiece } from "./src/data/wordpiece.ts";
export { openShards, readManifest, readManifests, ShardSet } from "./src/data/shard.ts";
export type { Manifest, OpenShardsOptions, ShardInfo, ShardMeta } from "./src/data/shard.ts";
export { DataError } from "./src/data/errors.ts";

// The device.
export { GpuError, requestGpu } from "./src/gpu/device.ts";
export type {
  Gpu,
  GpuBackend,
  GpuBackendChoice,
  RequestGpuOptions,
  SubgroupMatrixShape,
} from "./src/gpu/device.ts";
export { Kernels } from "./src/gpu/kernels.ts";
export type { Constants, Dispatch, StorageTypes } from "./src/gpu/kernels.ts";
export type { StorageType } from "./src/gpu/buffers.ts";

// Model presets, parameters and checkpoints.
export { presets } from "./src/model/config.ts";
export type { Ffn, ModelConfig, Positions } from "./src/model/config.ts";
export { initParams } from "./src/model/init.ts";
export { paramLayout } from "./src/model/params.ts";
export type { ParamKind, ParamLayout, ParamTensor } from "./src/model/params.ts";
export { decodeCheckpoint, encodeCheckpoint } from "./src/model/checkpoint.ts";
export type { Checkpoint } from "./src/model/checkpoint.ts";

// The trainer and the budgeted loop, and the run folder they write.
export { planTrainer } from "./src/train/step.ts";
export type { Trainer, TrainerOptions, TrainStats } from "./src/train/step.ts";
export type { GpuModel, ModelBatch, ModelShape } from "./src/model/model.ts";
export { maxLabels } from "./src/train/masking.ts";
export { BatchSource } from "./src/train/batches.ts";
export type { BatchSourceOptions, DataPosition, MicroBatch, SequenceSource } from "./src/train/batches.ts";
export type { MaskedBatch } from "./src/train/masking.ts";
export { Budget } from "./src/train/budget.ts";
export type { BudgetOptions, BudgetSpec } from "./src/train/budget.ts";
export type { BatchRamp, LearningRateSchedule } from "./src/train/schedule.ts";
export { trainLoop } from "./src/train/loop.ts";
export type { LoopEvents, LoopOptions, LoopResult, LoopState } from "./src/train/loop.ts";
export type { ProgressSnapshot } from "./src/train/progress.ts";
export { readCheckpoint, writeCheckpoint } from "./src/train/checkpoints.ts";
export type { LoadedCheckpoint } from "./src/train/checkpoints.ts";
export type { TrainState, Weights } from "./src/train/checkpoint_state.ts";
export type { MetricRecord } from "./src/train/metrics.ts";
export type { LossScaleState } from "./src/model/loss_scale.ts";
export type { PretrainOptions } from "./src/train/options.ts";

// A pretrained model: loaded for finetuning, scored on held-out text, and exported to ONNX.
export { loadPretrained } from "./src/eval/pretrained.ts";
export type { Pretrained } from "./src/eval/pretrained.ts";
export { mlmLoss } from "./src/eval/mlm_loss.ts";
export type { MlmLoss, MlmLossOptions, TokenSource } from "./src/eval/mlm_loss.ts";
export { exportClassifierOnnx, exportMaskedLmOnnx } from "./src/export/onnx.ts";
export type { Pooling } from "./src/model/head_layout.ts";

// The float64 CPU reference: the single source of truth of every kernel's tests.
export * as reference from "./src/reference/mod.ts";
