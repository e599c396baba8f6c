/**
 * cram: train a BERT-style language model from scratch on one GPU within a fixed time budget, with
 * every part of the training step running as WGSL compute shaders through WebGPU.
 *
 * @module
 */

// data: streams, tokenizer, packing
export { DataError } from "./src/data/errors.ts";
export {
  JsonlParser,
  listCorpusFiles,
  newReadStats,
  readCorpus,
  TextParser,
  Utf8Decoder,
} from "./src/data/read.ts";
export type {
  CorpusFile,
  CorpusFormat,
  DocumentParser,
  JsonlParserOptions,
  ReadCorpusOptions,
  ReadStats,
  TextChunk,
  TextParserOptions,
} from "./src/data/read.ts";
export { HF_NORMALIZER, Normalizer, normalizeStream, normalizeText } from "./src/data/normalize.ts";
export { preTokenize, PreTokenizer, preTokenizeStream } from "./src/data/pretokenize.ts";
export type { PreTokenizerOptions, WordChunk } from "./src/data/pretokenize.ts";
export { encodeStream, WordPiece } from "./src/data/wordpiece.ts";
export type { IdChunk, WordPieceOptions } from "./src/data/wordpiece.ts";
export { countWordsStream, trainWordPiece, WordCounter } from "./src/data/trainer.ts";
export type { TrainOptions, WordCounterOptions } from "./src/data/trainer.ts";
export {
  CLS_ID,
  fnv1a64,
  MASK_ID,
  PAD_ID,
  SEP_ID,
  SPECIAL_TOKENS,
  Tokenizer,
  UNK_ID,
} from "./src/data/tokenizer.ts";
export type { ModelInput } from "./src/data/tokenizer.ts";
export { newPackStats, Packer, packStream } from "./src/data/pack.ts";
export type { PackOptions, PackStats } from "./src/data/pack.ts";
export {
  crc32,
  decodeShard,
  encodeShard,
  MAX_SHARD_VOCAB,
  openShards,
  parseShardHeader,
  readManifest,
  SHARD_HEADER_BYTES,
  SHARD_MAGIC,
  SHARD_VERSION,
  ShardSet,
  ShardWriter,
  shardWriterStream,
} from "./src/data/shard.ts";
export type {
  Manifest,
  OpenShardsOptions,
  ShardHeader,
  ShardInfo,
  ShardMeta,
  ShardWriterOptions,
} from "./src/data/shard.ts";

export { buildDataset } from "./src/data/dataset.ts";
export type { DatasetOptions, DatasetSummary } from "./src/data/dataset.ts";
export { sampleCorpus } from "./src/data/sample.ts";

// gpu: device, buffers, kernel dispatch
export { checked, GPU_BACKENDS, GpuError, parseGpuBackend, requestGpu } from "./src/gpu/device.ts";
export type {
  Gpu,
  GpuBackend,
  GpuBackendChoice,
  RequestGpuOptions,
  SubgroupMatrixShape,
} from "./src/gpu/device.ts";
export { DAWN_PACKAGE, loadDawn } from "./src/gpu/dawn.ts";
export {
  elementBytes,
  packParams,
  paramBuffer,
  readBuffer,
  readBuffers,
  readF32,
  readFloats,
  readU32,
  storageBuffer,
  storageTypeOf,
  uploadBuffer,
  writeBuffer,
  writeParams,
} from "./src/gpu/buffers.ts";
export {
  bindGroup,
  dispatch,
  encodeDispatches,
  Kernels,
  KERNELS_DIR,
  kernelSource,
  storageTypes,
  submitDispatches,
} from "./src/gpu/kernels.ts";
export type { Binding, Constants, Dispatch, StorageTypes } from "./src/gpu/kernels.ts";
export type { HostArray, Param, StorageType } from "./src/gpu/buffers.ts";

// model: config, parameters, reference, forward/backward
export {
  compact,
  crammed,
  downInputWidth,
  fromPeerConfig,
  headDim,
  presets,
  small,
  tiny,
  toPeerConfig,
  validateConfig,
} from "./src/model/config.ts";
export type { Ffn, ModelConfig, Positions } from "./src/model/config.ts";
export { PARAM_ALIGNMENT, paramLayout, paramTensor, paramView } from "./src/model/params.ts";
export type { ParamKind, ParamLayout, ParamTensor } from "./src/model/params.ts";
export { INIT_STD, initHead, initParams } from "./src/model/init.ts";
export { decodeSafetensors, encodeSafetensors } from "./src/model/safetensors.ts";
export type { Dtype, Safetensors, Tensor } from "./src/model/safetensors.ts";
export {
  checkpointTensors,
  decodeBatch,
  decodeCheckpoint,
  encodeBatch,
  encodeCheckpoint,
  IGNORE_LABEL,
  loadBatch,
  loadCheckpoint,
  paramsFromTensors,
  saveBatch,
  saveCheckpoint,
} from "./src/model/checkpoint.ts";
export type { Batch, Checkpoint } from "./src/model/checkpoint.ts";
export * as reference from "./src/reference/ops.ts";
export { adamwStep, clipFactor, globalNorm, updateLossScale } from "./src/reference/optimizer.ts";
export type { AdamwOptions } from "./src/reference/optimizer.ts";
export { referenceEncode, referenceEncoderPass, referenceForwardBackward } from "./src/reference/model.ts";
export type { ReferenceBatchOptions, ReferenceEncoderPass, ReferenceResult } from "./src/reference/model.ts";
export { compareParity, randomParityBatch, referenceParityReport } from "./src/reference/parity.ts";
export type { ParityComparison, ParityReport } from "./src/reference/parity.ts";
export {
  columnSums,
  referenceClassifierLoss,
  referenceClassify,
  referenceHeadLoss,
} from "./src/reference/classifier.ts";
export type { ClassifierLossResult } from "./src/reference/classifier.ts";
export { HEAD_INNER, headLayout, headView } from "./src/model/head_layout.ts";
export type { HeadTensor } from "./src/model/head_layout.ts";
export { sinusoidTable } from "./src/model/positions.ts";
export { pcg } from "./src/model/hash.ts";
export { dropoutSiteCount, EMBEDDING_SITE, headSite, layerSites } from "./src/model/dropout_sites.ts";
export type { DropoutSeeds } from "./src/model/dropout_sites.ts";
export { Recorder, Recording } from "./src/model/recorder.ts";
export {
  allocateEncoder,
  recordEncoderBackward,
  recordEncoderForward,
  tensorBinding,
  writeEncoderInputs,
} from "./src/model/encoder.ts";
export type { EncoderBuffers, EncoderOptions, EncoderPass, LayerBuffers } from "./src/model/encoder.ts";
export { planModel } from "./src/model/model.ts";
export type { GpuModel, ModelBatch, ModelShape } from "./src/model/model.ts";
export {
  classifierLayout,
  joinClassifierParams,
  planClassifier,
  splitClassifierParams,
} from "./src/model/classifier.ts";
export type { ClassifierBatch, ClassifierShape, GpuClassifier } from "./src/model/classifier.ts";
export { biasAdd, biasGradient, biasTanh, headLoss, tanhBackward } from "./src/model/layers/head.ts";
export type { BiasArgs, BiasGradientArgs, HeadLossArgs, TanhBackwardArgs } from "./src/model/layers/head.ts";
export { writeFileAtomic } from "./src/fs.ts";
export {
  DEFAULT_MATMUL_TILE,
  DEFAULT_MATRIX_TILE,
  formatMatmulTile,
  formatMatrixTile,
  matmul,
  matmulKernel,
  matmulScratchBytes,
  parseMatmulTile,
  parseMatrixTile,
} from "./src/model/layers/matmul.ts";
export type {
  MatmulBatch,
  MatmulEntry,
  MatmulKernel,
  MatmulOptions,
  MatmulTile,
  MatrixTile,
} from "./src/model/layers/matmul.ts";
export { attentionBackward, attentionForward } from "./src/model/layers/attention.ts";
export type {
  AttentionBackwardArgs,
  AttentionForwardArgs,
  AttentionShape,
  ProbsDropout,
} from "./src/model/layers/attention.ts";
export {
  embeddingBackward,
  embeddingForward,
  packTokenOrder,
  sortTokens,
} from "./src/model/layers/embedding.ts";
export type {
  EmbeddingBackwardArgs,
  EmbeddingForwardArgs,
  EmbeddingShape,
  PositionGradient,
  PositionInput,
  SortedTokens,
} from "./src/model/layers/embedding.ts";
export {
  crossEntropy,
  gatherRows,
  LOSS_SCALE_BYTES,
  LOSS_TOTALS_BYTES,
  lossScaleBuffer,
  readLossScale,
  readLossTotals,
  scatterRows,
  writeLossScale,
} from "./src/model/layers/cross_entropy.ts";
export type {
  CrossEntropyArgs,
  GatherRowsArgs,
  LossScaleState,
  MaskedRowsShape,
  ScatterRowsArgs,
} from "./src/model/layers/cross_entropy.ts";
export { castToF16 } from "./src/model/layers/convert.ts";
export type { CastToF16Options } from "./src/model/layers/convert.ts";
export { dropoutBackward, dropoutForward, dropoutThreshold } from "./src/model/layers/dropout.ts";
export type { DropoutBackwardArgs, DropoutForwardArgs, DropoutSite } from "./src/model/layers/dropout.ts";
export { layerNormBackward, layerNormForward } from "./src/model/layers/layernorm.ts";
export type { LayerNormBackwardOptions, LayerNormForwardOptions } from "./src/model/layers/layernorm.ts";
export { geluBackward, geluForward, gluBackward, gluForward } from "./src/model/layers/activation.ts";
export type {
  GeluBackwardOptions,
  GeluForwardOptions,
  GluBackwardOptions,
  GluForwardOptions,
} from "./src/model/layers/activation.ts";
export { checkBuffer, checkMultiple, flatGrid } from "./src/model/layers/plan.ts";

// train: masking, schedule, optimizer, loop
export {
  adamw,
  adamwStepParams,
  decayFlags,
  gradNorm,
  OPTIMIZER_STATS_BYTES,
  readOptimizerStats,
  readStepStats,
  zeroBuffer,
} from "./src/train/optimizer.ts";
export type {
  DynamicLossScale,
  FillOptions,
  GpuAdamwOptions,
  GradNormOptions,
  OptimizerStats,
  StepStats,
} from "./src/train/optimizer.ts";
export { DROPOUT_STREAM, ORDER_STREAM, planFinetuner } from "./src/train/finetuner.ts";
export type { Finetuner, FinetunerOptions, FinetuneStats } from "./src/train/finetuner.ts";
export { planTrainer } from "./src/train/step.ts";
export type { Trainer, TrainerOptions, TrainStats } from "./src/train/step.ts";
export { readWeights, trainLoop, writeWeights } from "./src/train/loop.ts";
export type { LoopEvents, LoopOptions, LoopResult, LoopState } from "./src/train/loop.ts";
export {
  adapterDefaults,
  checkBatch,
  helpText,
  OptionError,
  optionsFromJson,
  parseOptions,
  resumeOptions,
  toArgs,
} from "./src/train/options.ts";
export type { ParsedOptions, PretrainOptions } from "./src/train/options.ts";
export { Budget, formatBudget, parseBudget } from "./src/train/budget.ts";
export type { BudgetOptions, BudgetSpec } from "./src/train/budget.ts";
export { learningRate, microBatchesPerStep } from "./src/train/schedule.ts";
export type { BatchRamp, LearningRateSchedule } from "./src/train/schedule.ts";
export { below, hash, permutation, streamKey, uniform } from "./src/train/random.ts";
export { FIRST_REGULAR_ID, maskBatch, maxLabels } from "./src/train/masking.ts";
export type { MaskedBatch, MaskingOptions, SequenceOrigin } from "./src/train/masking.ts";
export { BatchSource } from "./src/train/batches.ts";
export type { BatchSourceOptions, DataPosition, MicroBatch, SequenceSource } from "./src/train/batches.ts";
export {
  checkpointName,
  checkpointStep,
  checkpointsToRemove,
  decodeCheckpointFiles,
  decodeState,
  encodeCheckpointFiles,
  encodeMetric,
  MetricsLog,
  newestCheckpoint,
  parseMetrics,
  readCheckpoint,
  RunFileError,
  writeCheckpoint,
  writeSummary,
} from "./src/train/run_dir.ts";
export type { LoadedCheckpoint, MetricRecord, RunSummary, TrainState, Weights } from "./src/train/run_dir.ts";
export { formatCount, lossCurveSvg, niceTicks } from "./src/train/plot.ts";
export type { PlotOptions } from "./src/train/plot.ts";
export { formatBar, formatDuration, formatLine, Progress } from "./src/train/progress.ts";
export type { ProgressOptions, ProgressSnapshot } from "./src/train/progress.ts";

// export and eval
export { exportClassifierOnnx, exportMaskedLmOnnx } from "./src/export/onnx.ts";
export { IR_VERSION, OnnxGraph, OPSET } from "./src/export/onnx_graph.ts";
export type { Attribute, Dim, ElementType } from "./src/export/onnx_graph.ts";
export { discoverTasks, GLUE_TASKS, GlueDataError, parseTsv, readExamples } from "./src/eval/glue.ts";
export type { DevSet, Example, FoundTask, GlueTask, SkippedTask } from "./src/eval/glue.ts";
export {
  accuracy,
  averageRanks,
  computeScores,
  f1,
  glueAverage,
  matthewsCorrelation,
  median,
  pearson,
  predictionsFromLogits,
  spearman,
} from "./src/eval/metrics.ts";
export type { GlueAverage, MetricName, Scores } from "./src/eval/metrics.ts";
export { encodeExample, longestFirst, MAX_LENGTH, padBatch } from "./src/eval/features.ts";
export type { TokenBatch } from "./src/eval/features.ts";
export { loadOnnx, OnnxRuntimeError } from "./src/eval/onnx_runtime.ts";
export type { LoadOnnxOptions, OnnxModel } from "./src/eval/onnx_runtime.ts";
export { glueJson, glueMarkdown, summarizeGlue, writeGlueJson } from "./src/eval/report.ts";
export type { DevSetResult, DevSetRun, GlueSummary, SummaryAverage, SummaryRow } from "./src/eval/report.ts";
export {
  encodeExamples,
  finetune,
  FINETUNE_DEFAULTS,
  finetuneLearningRate,
  paddedBatch,
  predict,
  sequenceBuckets,
} from "./src/eval/finetune.ts";
export type { EncodedExample, FinetuneOptions, FinetuneProgress } from "./src/eval/finetune.ts";
export { evaluateGlue, startParams } from "./src/eval/evaluate.ts";
export type { GlueEvalOptions, GlueEvaluation } from "./src/eval/evaluate.ts";
export { EVAL_HELP, EvalOptionError, parseEvalArgs } from "./src/eval/options.ts";
export type { EvalOptions } from "./src/eval/options.ts";
export { loadPretrained } from "./src/eval/pretrained.ts";
export type { Pretrained } from "./src/eval/pretrained.ts";
