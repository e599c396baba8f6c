/**
 * `deno task pretrain`: a budgeted cramming run. Prepares the data (a tokenized dataset folder, or a raw
 * corpus tokenized on the way in with a vocabulary trained first), plans the model and optimizer on the
 * GPU, and trains until the budget is used; the run folder gets checkpoints, metrics.jsonl, loss.svg
 * and summary.json. Ctrl-C saves a checkpoint and stops; `--resume` continues.
 *
 * This is the training path: it imports no npm package, so it runs where there is no node_modules.
 *
 * @module
 */
import { requestGpu } from "../src/gpu/device.ts";
import { writeBuffer } from "../src/gpu/buffers.ts";
import { Kernels } from "../src/gpu/kernels.ts";
import { type ModelConfig, presets, validateConfig } from "../src/model/config.ts";
import { initParams } from "../src/model/init.ts";
import { openShards, readManifest, type ShardSet } from "../src/data/shard.ts";
import { buildDataset } from "../src/data/dataset.ts";
import { Tokenizer } from "../src/data/tokenizer.ts";
import { BatchSource } from "../src/train/batches.ts";
import { Budget, formatBudget } from "../src/train/budget.ts";
import { trainLoop, writeWeights } from "../src/train/loop.ts";
import { maxLabels } from "../src/train/masking.ts";
import {
  adapterDefaults,
  checkBatch,
  checkDatasetOptions,
  devicePrecision,
  helpText,
  parseOptions,
  type PretrainOptions,
  resumeOptions,
} from "../src/train/options.ts";
import { lossCurveSvg } from "../src/train/plot.ts";
import { formatRunEnd, Progress } from "../src/train/progress.ts";
import { readCheckpoint, writeCheckpoint } from "../src/train/checkpoints.ts";
import { MetricsLog, parseMetrics } from "../src/train/metrics.ts";
import { writeSummary } from "../src/train/run_summary.ts";
import { planTrainer, type Trainer } from "../src/train/step.ts";
import { writeFileAtomic } from "../src/fs.ts";
import {
  checkFreshRunFolder,
  clearRunOutputs,
  lockRunFolder,
  planRunData,
  type RunData,
} from "../src/train/run_setup.ts";
import { describe } from "../src/data/errors.ts";
import { UsageError } from "../src/args.ts";
import { readLossScale, writeLossScale } from "../src/model/loss_scale.ts";

/**
 * Micro-batch when none is given: on an H200, `deno task bench --step --micro-batch 64,128,256` (crammed,
 * f32, the engine as of d0edbc0) ran at 33.8k, 34.7k and 35.1k tokens/s, within 4% of each other, so 128
 * keeps memory low at almost no cost; a GPU that cannot hold it gets the largest half that fits.
 */
const GPU_MICRO_BATCH = 128;
const CPU_MICRO_BATCH = 8;

/** The signals that save a checkpoint and stop a run (Windows knows only SIGINT and SIGBREAK). */
const STOP_SIGNALS: Deno.Signal[] = Deno.build.os === "windows"
  ? ["SIGINT", "SIGBREAK"]
  : ["SIGINT", "SIGTERM", "SIGHUP"];

/** The run's dataset folder: as given, tokenized earlier, or tokenized now from raw files into the run folder. */
async function prepareData(
  data: RunData,
  options: PretrainOptions,
  config: ModelConfig,
  progress: Progress,
  overwrite: boolean,
) {
  if (data.kind === "dataset") return data.dir;
  if (data.kind === "tokenized") {
    progress.message(`using the dataset tokenized earlier in ${data.dir}`);
    return data.dir;
  }
  progress.message(`tokenizing ${data.corpus.join(", ")} into ${data.dir} (not counted in the budget)`);
  await buildDataset({
    corpus: data.corpus,
    out: data.dir,
    vocabSize: options.vocabSize ?? config.vocabSize,
    seqLen: options.seqLen ?? config.maxSeqLen,
    overwrite,
  });
  return data.dir;
}

/** The preset, fitted to the dataset's vocabulary and sequence length. */
function modelConfig(preset: string, shards: ShardSet, dataDir: string): ModelConfig {
  const base = presets[preset];
  if (!base) throw new UsageError(`--preset ${preset}: expected one of ${Object.keys(presets).join(", ")}`);
  if (shards.seqLen > base.maxSeqLen) {
    throw new UsageError(
      `${dataDir}: its sequences have ${shards.seqLen} tokens, more than the ${preset} model's ${base.maxSeqLen} ` +
        `(--preset, or --seq-len when tokenizing)`,
    );
  }
  return validateConfig({ ...base, vocabSize: shards.vocabSize, maxSeqLen: shards.seqLen }, "dataset");
}

async function main(args: string[]): Promise<void> {
  const parsed = parseOptions(args);
  if (parsed.help) {
    console.log(helpText());
    return;
  }
  const progress = new Progress();
  const loaded = parsed.options.resume
    ? await readCheckpoint(parsed.options.resume, { branch: parsed.given.has("out") })
    : undefined;
  const given = loaded
    ? resumeOptions(
      loaded.state.options,
      parsed,
      parsed.given.has("out") ? parsed.options.out : loaded.runDir,
    )
    : parsed.options;
  if (loaded) {
    const budget = new Budget(given.budget, {
      usedSeconds: loaded.state.usedSeconds,
      steps: loaded.state.step,
    });
    if (budget.done) {
      // A finished run stays as it is: nothing is planned, written or rewritten.
      console.log(
        `${loaded.runDir}: the run has used its budget of ${formatBudget(given.budget)} ` +
          `(${loaded.state.step} steps, ${loaded.state.usedSeconds.toFixed(0)} s); nothing to do. ` +
          `To train it longer, give a larger --budget with --resume.`,
      );
      return;
    }
  }
  const gpu = await requestGpu({ backend: given.gpu });
  const options = { ...given, precision: given.precision ?? devicePrecision(gpu) };
  const defaults = adapterDefaults(gpu, options.preset);
  const preset = defaults.preset;
  const batch = options.batch ?? defaults.batch;
  let microBatch = options.microBatch ?? Math.min(batch, gpu.isCpu ? CPU_MICRO_BATCH : GPU_MICRO_BATCH);
  checkBatch(batch, microBatch);
  progress.message(
    `adapter: ${gpu.name} (${gpu.backend}${gpu.subgroupMatrix ? ", tensor cores" : ""}); preset ${preset}, ` +
      `batch ${batch}, ${options.precision} storage`,
  );

  // Inputs are checked before the run folder exists: a wrong --corpus or --out leaves nothing behind.
  if (!loaded && !parsed.overwrite) await checkFreshRunFolder(options.out);
  const data = await planRunData(options.corpus, `${options.out}/data`, { reuse: !parsed.overwrite });
  await Deno.mkdir(options.out, { recursive: true });
  const lock = await lockRunFolder(options.out);
  const dataDir = await prepareData(
    data,
    options,
    presets[preset] ?? presets.crammed,
    progress,
    parsed.overwrite,
  );
  // An overwriting run removes the earlier run's outputs only once its own dataset is ready.
  if (parsed.overwrite) await clearRunOutputs(options.out);
  const { manifest, paths } = await readManifest(dataDir);
  const tokenizer = await Tokenizer.load(dataDir);
  const shards = await openShards(paths, {
    expect: { vocabHash: tokenizer.hash, vocabSize: tokenizer.size },
  });
  if (loaded && loaded.state.dataset.vocabHash !== shards.vocabHash) {
    throw new UsageError(
      `--resume ${options.resume}: the checkpoint was trained on vocabulary ${loaded.state.dataset.vocabHash}, ` +
        `the dataset in ${dataDir} has ${shards.vocabHash}`,
    );
  }
  if (loaded && loaded.state.dataset.sequences !== shards.sequences) {
    throw new UsageError(
      `--resume ${options.resume}: the checkpoint was trained on ${loaded.state.dataset.sequences} sequences, ` +
        `the dataset in ${dataDir} has ${shards.sequences}: another corpus (its data order would not continue)`,
    );
  }
  checkDatasetOptions(options, shards, dataDir);
  await tokenizer.save(options.out); // the run folder carries its tokenizer, for `deno task eval`
  const config = loaded?.state.config ?? modelConfig(preset, shards, dataDir);
  progress.message(
    `data: ${shards.sequences} sequences of ${shards.seqLen} tokens (${manifest.shards.length} shard${
      manifest.shards.length === 1 ? "" : "s"
    } in ${dataDir})`,
  );

  const k = new Kernels(gpu);
  const plan = (micro: number) =>
    planTrainer(k, config, {
      batch: micro,
      seq: shards.seqLen,
      maxLabels: maxLabels(micro, shards.seqLen, options.maskRate),
      storage: options.precision,
    });
  let trainer: Trainer | undefined;
  while (!trainer) {
    try {
      trainer = await plan(microBatch);
    } catch (e) {
      // A default micro-batch that does not fit this GPU is halved; one the user gave is not changed.
      const half = microBatch / 2;
      const fits = /out of GPU memory/.test(describe(e)) && options.microBatch === undefined;
      if (!fits || !Number.isInteger(half) || batch % half !== 0) throw e;
      progress.message(`micro-batch ${microBatch} does not fit in GPU memory; trying ${half}`);
      microBatch = half;
    }
  }
  const resolved: PretrainOptions = { ...options, preset, batch, microBatch };
  progress.message(`micro-batches of ${microBatch} sequences`);
  if (loaded) {
    writeWeights(trainer, loaded.weights);
    trainer.setSteps(loaded.state.updates);
    const { lossScale } = loaded.state;
    if (lossScale && trainer.model.lossScale) {
      writeLossScale(gpu, trainer.model.lossScale, lossScale.scale, lossScale.goodSteps);
    }
  } else {
    writeBuffer(
      gpu,
      trainer.model.params,
      initParams(config, { seed: options.seed }),
    );
  }
  const memoryBytes = trainer.model.bytes + trainer.m.size + trainer.v.size;
  progress.message(
    `GPU buffers: ${
      memoryBytes >= 2 ** 30
        ? `${(memoryBytes / 2 ** 30).toFixed(2)} GiB`
        : `${(memoryBytes / 2 ** 20).toFixed(1)} MiB`
    }`,
  );

  const source = new BatchSource(shards, {
    microBatch,
    seed: options.seed,
    maskRate: options.maskRate,
    vocabSize: config.vocabSize,
    start: loaded?.state.data,
    onEpoch: (epoch) =>
      progress.message(`epoch ${epoch + 1} begins: every sequence of the dataset has been used once more`),
    name: dataDir,
  });
  const budget = new Budget(options.budget, {
    usedSeconds: loaded?.state.usedSeconds,
    steps: loaded?.state.step,
  });
  const metrics = await MetricsLog.open(
    options.out,
    loaded ? { runDir: loaded.runDir, step: loaded.state.step } : undefined,
  );
  // Ctrl-C, SIGTERM (schedulers, `timeout`, `docker stop`) and SIGHUP (a closed terminal) save a
  // checkpoint and stop; a second one quits at once.
  let interrupted = false;
  const onInterrupt = () => {
    if (interrupted) Deno.exit(130);
    interrupted = true;
    progress.message("interrupted: saving a checkpoint (interrupt again to quit without it)");
  };
  for (const signal of STOP_SIGNALS) Deno.addSignalListener(signal, onInterrupt);
  const budgetLabel = formatBudget(options.budget);
  const result = await trainLoop({
    trainer,
    source,
    budget,
    lr: { peak: options.peakLr, start: options.lrStart, peakAt: options.lrPeakAt },
    ramp: { target: batch / microBatch, ramp: options.ramp },
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
    interrupted: () => interrupted,
  });
  for (const signal of STOP_SIGNALS) Deno.removeSignalListener(signal, onInterrupt);
  metrics.close();
  progress.finish();

  const records = parseMetrics(await Deno.readTextFile(metrics.path), metrics.path);
  await writeFileAtomic(`${options.out}/loss.svg`, new TextEncoder().encode(lossCurveSvg(records)));
  const summary = {
    preset,
    config,
    precision: options.precision,
    stopped: result.stopped,
    steps: result.state.step,
    skipped: result.state.skipped,
    tokensSeen: result.state.tokensSeen,
    epochs: result.state.epoch + 1,
    finalLoss: result.last?.loss ?? NaN,
    // This process's throughput: a resumed run's earlier tokens and seconds are not its own.
    tokensPerSecond: (result.state.tokensSeen - (loaded?.state.tokensSeen ?? 0)) /
      Math.max(1e-9, budget.usedSeconds - (loaded?.state.usedSeconds ?? 0)),
    usedSeconds: budget.usedSeconds,
    budget: budgetLabel,
    peakMemoryBytes: memoryBytes,
  };
  await writeSummary(options.out, summary);
  lock.close();
  progress.message(formatRunEnd(summary, options.out));
  // The summary as JSON on stdout, for scripts.
  console.log(JSON.stringify(summary));
  if (result.stopped === "non-finite") {
    throw new UsageError(
      `stopped: ${options.maxNonfinite} steps in a row had non-finite gradients; the last good checkpoint ` +
        `in ${options.out}/checkpoints is intact (try a lower --peak-lr)`,
    );
  }
}

if (import.meta.main) {
  try {
    await main(Deno.args);
  } catch (e) {
    console.error(`error: ${describe(e)}`);
    Deno.exit(1);
  }
}
