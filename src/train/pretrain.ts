/**
 * A pretraining run from its parsed options to its summary: prepare the data (a tokenized dataset folder,
 * or a raw corpus tokenized on the way in with a vocabulary trained first), plan the model and optimizer on
 * the GPU with the largest micro-batch that fits, start fresh or from a checkpoint, and train until the
 * budget is used, writing checkpoints, metrics.jsonl, loss.svg and summary.json into the run folder.
 *
 * This is the training path: it imports no npm package, so it runs where there is no node_modules.
 *
 * @module
 */
import { UsageError } from "../args.ts";
import { buildDataset } from "../data/dataset.ts";
import { openShards, readManifests, type ShardSet } from "../data/shard.ts";
import { Tokenizer } from "../data/tokenizer.ts";
import { MIN_TRAINED_VOCAB } from "../data/trainer.ts";
import { writeFileAtomic } from "../fs.ts";
import { writeBuffer } from "../gpu/buffers.ts";
import { requestGpu } from "../gpu/device.ts";
import { Kernels } from "../gpu/kernels.ts";
import {
  type ModelConfig,
  modelName,
  type ModelShape,
  paddedVocabSize,
  presets,
  validateConfig,
} from "../model/config.ts";
import { initParams } from "../model/init.ts";
import { readLossScale } from "../model/loss_scale.ts";
import { BatchSource } from "./batches.ts";
import { Budget, formatBudget } from "./budget.ts";
import { readCheckpoint, writeCheckpoint } from "./checkpoints.ts";
import { trainLoop } from "./loop.ts";
import { maxLabels } from "./masking.ts";
import { MetricsLog, parseMetrics } from "./metrics.ts";
import { defaultMicroBatch, planFittingMicroBatch } from "./micro_batch.ts";
import {
  adapterDefaults,
  checkBatch,
  checkDatasetOptions,
  devicePrecision,
  type ParsedOptions,
  type PretrainOptions,
} from "./options.ts";
import { lossCurveSvg } from "./plot.ts";
import { epochMessage, type Progress } from "./progress.ts";
import { budgetUsedMessage, checkResumedDataset, restoreTrainer, runOptions } from "./resume.ts";
import { type RunSummary, summarizeRun, writeSummary } from "./run_summary.ts";
import { microBatchesInSteps } from "./schedule.ts";
import {
  checkFreshRunFolder,
  clearRunOutputs,
  lockRunFolder,
  planRunData,
  type RunData,
} from "./run_setup.ts";
import { planTrainer } from "./step.ts";

/** How a run ended: nothing to do (its budget was used before), or trained with these options. */
export type PretrainResult =
  | { trained: false; message: string }
  | { trained: true; summary: RunSummary; options: PretrainOptions };

/** What {@linkcode pretrain} reports to and asks of the task that runs it. */
export interface PretrainEvents {
  /** The progress display. */
  progress: Progress;
  /**
   * Starts listening for the user's request to stop, while the model trains (before that, an interrupt ends
   * the process as usual): `requested()` says whether one came (the run then saves a checkpoint and ends),
   * `close()` stops listening.
   */
  listenForStop: () => { requested: () => boolean; close: () => void };
}

/** Runs pretraining as `parsed` say, reporting to `events`. */
export async function pretrain(parsed: ParsedOptions, events: PretrainEvents): Promise<PretrainResult> {
  const { progress } = events;
  const loaded = parsed.options.resume
    ? await readCheckpoint(parsed.options.resume, { branch: parsed.given.has("out") })
    : undefined;
  const given = runOptions(parsed, loaded);
  // A finished run stays as it is: nothing is planned, written or rewritten.
  const used = loaded && budgetUsedMessage(loaded, given);
  if (used) return { trained: false, message: used };

  const gpu = await requestGpu({ backend: given.gpu });
  const options = { ...given, precision: given.precision ?? devicePrecision(gpu) };
  const defaults = adapterDefaults(gpu, options.preset);
  const { preset } = defaults;
  const batch = options.batch ?? defaults.batch;
  const maskRate = options.maskRate ?? defaults.maskRate;
  const firstMicroBatch = options.microBatch ?? defaultMicroBatch(gpu, batch);
  checkBatch(batch, firstMicroBatch);
  // The model's shape is checked before any data is read or written: a resumed run keeps its own.
  const shaped = loaded?.state.config ?? shapedPreset(preset, options);
  const model = modelName(preset, shaped);
  progress.message(
    `adapter: ${gpu.name} (${gpu.backend}${gpu.subgroupMatrix ? ", tensor cores" : ""}); model ${model}, ` +
      `batch ${batch}, ${options.precision} storage, mask rate ${maskRate}${
        options.dropout > 0 ? `, dropout ${options.dropout}` : ""
      }`,
  );

  // Inputs are checked before the run folder exists: a wrong --corpus or --out leaves nothing behind.
  if (!loaded && !parsed.overwrite) await checkFreshRunFolder(options.out);
  const data = await planRunData(options.corpus, `${options.out}/data`, { reuse: !parsed.overwrite });
  await Deno.mkdir(options.out, { recursive: true });
  const lock = await lockRunFolder(options.out);
  const dataDirs = await prepareData(
    data,
    options,
    shaped,
    progress,
    parsed.overwrite,
  );
  // An overwriting run removes the earlier run's outputs only once its own dataset is ready.
  if (parsed.overwrite) await clearRunOutputs(options.out);
  const paths = await readManifests(dataDirs);
  const tokenizer = await Tokenizer.load(dataDirs[0]);
  const dataName = dataDirs.join(", ");
  const shards = await openShards(paths, {
    expect: { vocabHash: tokenizer.hash, vocabSize: tokenizer.size },
  });
  if (loaded) checkResumedDataset(loaded.state.dataset, shards, options.resume!, dataName);
  checkDatasetOptions(options, shards, dataName);
  await tokenizer.save(options.out); // the run folder carries its tokenizer, for `deno task eval`
  const config = loaded?.state.config ?? fitToDataset(shaped, model, shards, dataName);
  progress.message(
    `data: ${shards.sequences} sequences of ${shards.seqLen} tokens ` +
      `(${paths.length} shard${paths.length === 1 ? "" : "s"} in ${dataName})`,
  );

  const k = new Kernels(gpu);
  const { planned: trainer, microBatch } = await planFittingMicroBatch(
    (micro) =>
      planTrainer(k, config, {
        batch: micro,
        seq: shards.seqLen,
        maxLabels: maxLabels(micro, shards.seqLen, maskRate),
        storage: options.precision,
        dropout: options.dropout,
      }, { seed: options.seed }),
    {
      microBatch: firstMicroBatch,
      halve: options.microBatch === undefined,
      onHalve: (from, to) => progress.message(`micro-batch ${from} does not fit in GPU memory; trying ${to}`),
    },
  );
  const resolved: PretrainOptions = { ...options, preset, batch, microBatch, maskRate };
  progress.message(`micro-batches of ${microBatch} sequences`);
  if (loaded) restoreTrainer(trainer, loaded);
  else writeBuffer(gpu, trainer.model.params, initParams(config, { seed: options.seed }));
  const memoryBytes = trainer.model.bytes + trainer.m.size + trainer.v.size;
  progress.message(`GPU buffers: ${formatBytes(memoryBytes)}`);

  const budget = new Budget(options.budget, {
    usedSeconds: loaded?.state.usedSeconds,
    steps: loaded?.state.step,
  });
  const ramp = { target: batch / microBatch, ramp: options.ramp };
  // A budget of steps reads a known number of sequences (the ramp's small batches first).
  const stepBudgetPasses = "steps" in budget.spec
    ? microBatchesInSteps(ramp, budget.spec.steps) * microBatch / shards.sequences
    : undefined;
  const source = new BatchSource(shards, {
    microBatch,
    seed: options.seed,
    maskRate,
    // The tokenizer's ids, not the model's padded rows: random replacements are real tokens.
    vocabSize: shards.vocabSize,
    start: loaded?.state.data,
    onEpoch: (epoch) => progress.message(epochMessage(epoch, budget.fraction, stepBudgetPasses)),
    name: dataName,
  });
  const metrics = await MetricsLog.open(
    options.out,
    loaded ? { runDir: loaded.runDir, step: loaded.state.step } : undefined,
  );
  const budgetLabel = formatBudget(options.budget);
  const stop = events.listenForStop();
  const result = await trainLoop({
    trainer,
    source,
    budget,
    lr: { peak: options.peakLr, start: options.lrStart, peakAt: options.lrPeakAt },
    ramp,
    logEvery: options.logEvery,
    checkpointSeconds: options.checkpointEvery * 60,
    maxNonfinite: options.maxNonfinite,
    start: loaded
      ? { ...loaded.state, epoch: loaded.state.data.epoch }
      : { step: 0, skipped: 0, tokensSeen: 0, data: { epoch: 0, index: 0 }, epoch: 0 },
    budgetLabel,
  }, {
    record: (record) => {
      metrics.append(record);
      progress.record({
        ...record,
        usedSeconds: record.seconds,
        fraction: budget.fraction,
        budget: budgetLabel,
        remainingSeconds: budget.remainingSeconds,
      });
    },
    progress: (snapshot) => progress.update(snapshot),
    message: (text) => progress.message(text),
    checkpoint: async (state, weights) => {
      const dir = await writeCheckpoint(
        options.out,
        {
          ...state,
          updates: trainer.steps,
          dataset: { sequences: shards.sequences, vocabHash: shards.vocabHash },
          usedSeconds: budget.usedSeconds,
          config,
          options: resolved,
          ...(trainer.model.lossScale && { lossScale: await readLossScale(gpu, trainer.model.lossScale) }),
        },
        await weights(),
        options.keepCheckpoints,
      );
      progress.message(`checkpoint ${dir}`);
    },
    interrupted: stop.requested,
  }).finally(stop.close);
  metrics.close();
  progress.finish();

  const records = parseMetrics(await Deno.readTextFile(metrics.path), metrics.path);
  await writeFileAtomic(`${options.out}/loss.svg`, new TextEncoder().encode(lossCurveSvg(records)));
  const summary = summarizeRun({
    preset: model,
    config,
    precision: options.precision,
    result,
    usedSeconds: budget.usedSeconds,
    budget: budgetLabel,
    peakMemoryBytes: memoryBytes,
    maskRate,
    dataTokens: shards.sequences * shards.seqLen,
    resumedFrom: loaded?.state,
  });
  await writeSummary(options.out, summary);
  lock.close();
  return { trained: true, summary, options: resolved };
}

/** The run's dataset folder: as given, tokenized earlier, or tokenized now from raw files into the run folder. */
async function prepareData(
  data: RunData,
  options: PretrainOptions,
  config: ModelConfig,
  progress: Progress,
  overwrite: boolean,
): Promise<string[]> {
  if (data.kind === "dataset") return data.dirs;
  if (data.kind === "tokenized") {
    progress.message(`using the dataset tokenized earlier in ${data.dir}`);
    return [data.dir];
  }
  progress.message(`tokenizing ${data.corpus.join(", ")} into ${data.dir} (not counted in the budget)`);
  await buildDataset({
    corpus: data.corpus,
    out: data.dir,
    vocabSize: trainedVocabSize(options.vocabSize, config),
    seqLen: options.seqLen ?? config.maxSeqLen,
    overwrite,
  });
  return [data.dir];
}

/**
 * The size of the vocabulary to train on a raw corpus: `--vocab-size`, else the preset's, raised to the
 * smallest a trained vocabulary can be (the tiny preset's 96 is below it; the model takes the data's size).
 */
export function trainedVocabSize(option: number | undefined, config: ModelConfig): number {
  return option ?? Math.max(config.vocabSize, MIN_TRAINED_VOCAB);
}

/**
 * The preset's model with the shape options given (--layers, --hidden, --heads, --intermediate; undefined
 * keeps the preset's). Throws a `UsageError` for an unknown preset or a width the heads do not divide.
 */
export function shapedPreset(preset: string, shape: ModelShape): ModelConfig {
  const base = presets[preset];
  if (!base) throw new UsageError(`--preset ${preset}: expected one of ${Object.keys(presets).join(", ")}`);
  const config = {
    ...base,
    layers: shape.layers ?? base.layers,
    hidden: shape.hidden ?? base.hidden,
    heads: shape.heads ?? base.heads,
    intermediate: shape.intermediate ?? base.intermediate,
  };
  if (config.hidden % config.heads !== 0) {
    throw new UsageError(
      `--hidden ${config.hidden} must be a multiple of --heads ${config.heads}` +
        (shape.heads === undefined ? ` (the ${preset} preset's heads)` : ""),
    );
  }
  return config;
}

/**
 * `model` (named `name`, see modelName) fitted to the dataset's vocabulary (padded, see paddedVocabSize) and
 * sequence length (which it must be able to hold).
 */
export function fitToDataset(
  model: ModelConfig,
  name: string,
  dataset: Pick<ShardSet, "seqLen" | "vocabSize">,
  dataDir: string,
): ModelConfig {
  if (dataset.seqLen > model.maxSeqLen) {
    throw new UsageError(
      `${dataDir}: its sequences have ${dataset.seqLen} tokens, more than the ${name} model's ` +
        `${model.maxSeqLen} (--preset, or --seq-len when tokenizing)`,
    );
  }
  return validateConfig(
    { ...model, vocabSize: paddedVocabSize(dataset.vocabSize), maxSeqLen: dataset.seqLen },
    "dataset",
  );
}

/** A byte count in MiB, or GiB from 1 GiB on. */
export function formatBytes(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}
