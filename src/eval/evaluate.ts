/**
 * The GLUE evaluation of `deno task eval`: for each task found and each seed, finetune with our WebGPU
 * engine (finetune.ts), score the dev sets from its logits, export the finetuned model to ONNX, load it
 * with onnxruntime-web, score the dev sets again from its logits and measure how far the two engines'
 * logits are apart. File output stays with the caller (`saveOnnx`), so this runs the same in a test.
 *
 * Finetuners are planned once per label count and reused across seeds and tasks.
 *
 * The ONNX half (export and onnxruntime-web, npm packages) is imported only when it runs, so that with
 * `onnx: false` the evaluation needs no npm package: it then runs where there is no node_modules.
 *
 * @module
 */
import type { Tokenizer } from "../data/tokenizer.ts";
import type { Kernels } from "../gpu/kernels.ts";
import type { ModelConfig } from "../model/config.ts";
import { joinClassifierParams, splitClassifierParams } from "../model/classifier.ts";
import { initHead, initParams } from "../model/init.ts";
import { type Finetuner, planFinetuner } from "../train/finetuner.ts";
import {
  type EncodedExample,
  encodeExamples,
  finetune,
  type FinetuneOptions,
  type FinetuneProgress,
  predict,
  sequenceBuckets,
} from "./finetune.ts";
import { MAX_LENGTH, padBatch } from "./features.ts";
import { taskFeaturesJson } from "./features_file.ts";
import { traceRecorder } from "./trace_file.ts";
import { type FoundTask, GLUE_TASKS, readExamples, type SkippedTask } from "./glue.ts";
import type { StorageType } from "../gpu/buffers.ts";
import { computeScores, predictionsFromLogits, type Scores } from "./metrics.ts";
import type { OnnxModel } from "./onnx_runtime.ts";
import { type DevSetResult, type DevSetRun, type GlueSummary, summarizeGlue } from "./report.ts";

/** What to evaluate and how. */
export interface GlueEvalOptions {
  config: ModelConfig;
  /** The pretrained encoder (paramLayout), or "scratch" for the no-pretraining baseline (a fresh init per seed). */
  encoder: Float32Array | "scratch";
  tokenizer: Pick<Tokenizer, "encode">;
  tasks: readonly FoundTask[];
  /** Tasks left out already (reported with the summary). */
  skipped: readonly SkippedTask[];
  /** Finetuning runs per task; seeds are `finetune.seed`, `finetune.seed + 1`, ... */
  seeds: number;
  finetune: FinetuneOptions;
  /** How the encoder's activations are stored while finetuning (src/model/classifier.ts); default f32. */
  storage?: StorageType;
  /** Use only the first N training and dev examples of each file (quick runs). */
  maxExamples?: number;
  /** Export to ONNX and score with onnxruntime-web (default true); off: WebGPU scores only. */
  onnx?: boolean;
  /** Stores an exported model (`<task>-seed<seed>.onnx`). */
  saveOnnx(name: string, bytes: Uint8Array): Promise<void>;
  /** Given, stores each task's tokenized examples (`<task>.json`, features_file.ts) before finetuning. */
  saveFeatures?(name: string, bytes: Uint8Array): Promise<void>;
  /**
   * Given, stores each run's trace (`<task>-seed<seed>.json`, trace_file.ts) for a lockstep replay; the
   * loss is then read after every step, a GPU round trip each.
   */
  saveTrace?(name: string, bytes: Uint8Array): Promise<void>;
  /** Results of other tasks from an earlier run (a resumed evaluation), reported with the new ones. */
  previous?: readonly DevSetResult[];
  /** Hears every result so far after each task, e.g. to save them: a run cut short loses one task at most. */
  onTaskDone?(results: DevSetResult[]): Promise<void>;
  /** Progress, one line at a time. */
  log(line: string): void;
}

/** The summary, and the largest difference between ONNX and WebGPU logits over every run. */
export interface GlueEvaluation {
  summary: GlueSummary;
  maxLogitDifference: number;
}

/** Seconds between progress lines within an epoch. */
const PROGRESS_SECONDS = 30;
/** Examples per onnxruntime-web run. */
const ONNX_BATCH = 32;

/** Finetunes and scores every task of `options.tasks`. */
export async function evaluateGlue(k: Kernels, options: GlueEvalOptions): Promise<GlueEvaluation> {
  const { config, seeds, finetune: recipe } = options;
  const maxLength = Math.min(MAX_LENGTH, config.maxSeqLen);
  const finetuners = new Map<number, Finetuner>();
  const results: DevSetResult[] = [...options.previous ?? []];
  // Rows in GLUE's table order, whichever run produced them.
  const order = GLUE_TASKS.flatMap((t) => t.devSets.map((d) => d.name));
  const ordered = () =>
    results.toSorted((a, b) => order.indexOf(a.devSet.name) - order.indexOf(b.devSet.name));
  let worst = Math.max(
    0,
    ...results.flatMap((r) => r.runs.map((run) => run.maxLogitDifference)).filter(Number.isFinite),
  );
  // Every task's files are read first: a bad file fails before any finetuning, naming itself.
  const data = options.tasks.map((found) => {
    const read = (path: string) =>
      encodeExamples(
        options.tokenizer,
        readExamples(path, found.task, options.log).slice(0, options.maxExamples),
        maxLength,
      );
    return { found, train: read(found.trainPath), devs: found.devPaths.map(read) };
  });
  if (options.saveFeatures) {
    for (const { found, train, devs } of data) {
      await options.saveFeatures(
        `${found.task.name}.json`,
        taskFeaturesJson(found.task, train, devs, recipe),
      );
    }
  }
  for (const { found, train, devs } of data) {
    const { task } = found;
    const outputs = task.labels?.length ?? 1;
    let finetuner = finetuners.get(outputs);
    if (!finetuner) {
      finetuner = await planFinetuner(
        k,
        config,
        {
          batch: recipe.batch,
          seqs: sequenceBuckets(maxLength),
          labels: outputs,
          dropout: recipe.dropout,
          storage: options.storage,
          pooling: recipe.pooling,
        },
        recipe,
      );
      finetuners.set(outputs, finetuner);
    }
    const runs: DevSetRun[][] = task.devSets.map(() => []);
    for (let s = 0; s < seeds; s++) {
      const seed = recipe.seed + s;
      const name = `${task.name} seed ${seed}`;
      const steps = Math.ceil(train.length / recipe.batch);
      options.log(
        `${name}: ${train.length} training examples, ${recipe.epochs} epochs of ${steps} steps; ` +
          `dev ${task.devSets.map((d, i) => `${d.name} ${devs[i].length}`).join(", ")}`,
      );
      const start = startParams(config, options.encoder, outputs, seed);
      const started = performance.now();
      let lastLine = started;
      const progress = (p: FinetuneProgress) => {
        const now = performance.now();
        if (!p.endOfEpoch && now - lastLine < PROGRESS_SECONDS * 1000) return;
        lastLine = now;
        const skipped = p.skipped > 0 ? `, ${p.skipped} steps skipped (non-finite gradients)` : "";
        options.log(
          `${name} epoch ${p.epoch}/${p.epochs} ${p.endOfEpoch ? "done" : `step ${p.step}/${p.steps}`}: ` +
            `loss ${(p.endOfEpoch ? p.epochLoss : p.loss).toFixed(4)}${skipped} ` +
            `(${((now - started) / 1000).toFixed(1)} s)`,
        );
      };
      const run = { ...recipe, seed, ...(options.saveTrace && { logEvery: 1 }) };
      const trace = options.saveTrace && traceRecorder({
        config,
        task: task.name,
        labels: outputs,
        finetune: run,
        trainExamples: train.length,
        head: splitClassifierParams(config, outputs, start).head,
      }, progress);
      await finetune(finetuner, start, train, run, trace ? trace.listeners : { progress });
      const finetuneSeconds = Math.round(performance.now() - started) / 1000;
      const webgpu: Float32Array[] = [];
      for (const dev of devs) webgpu.push(await predict(finetuner, dev));
      if (trace && options.saveTrace) {
        await options.saveTrace(
          `${task.name}-seed${seed}.json`,
          trace.json(task.devSets.map((d, i) => ({ name: d.name, logits: webgpu[i] }))),
        );
      }
      const onnx = options.onnx === false
        ? undefined
        : await onnxLogits(options, finetuner, found, seed, outputs, devs);
      task.devSets.forEach((devSet, d) => {
        const labels = devs[d].map((e) => e.target);
        const score = (logits: Float32Array): Scores =>
          computeScores(task.metrics, predictionsFromLogits(logits, outputs), labels);
        const difference = onnx ? maxDifference(onnx[d], webgpu[d]) : NaN;
        if (onnx) worst = Math.max(worst, difference);
        runs[d].push({
          webgpu: score(webgpu[d]),
          onnx: onnx ? score(onnx[d]) : {},
          maxLogitDifference: difference,
          finetuneSeconds,
        });
        const main = task.metrics[0];
        const percent = (scores: Scores) => (100 * scores[main]!).toFixed(1);
        const last = runs[d][runs[d].length - 1];
        options.log(
          `${name} ${devSet.name}: ${main} ${percent(last.webgpu)} (WebGPU)` +
            (onnx
              ? `, ${percent(last.onnx)} (ONNX), max |logit difference| ${difference.toExponential(1)}`
              : ""),
        );
      });
    }
    task.devSets.forEach((devSet, d) => results.push({ devSet, metrics: task.metrics, runs: runs[d] }));
    await options.onTaskDone?.(ordered());
  }
  return { summary: summarizeGlue(ordered(), [...options.skipped]), maxLogitDifference: worst };
}

/** The tasks of `tasks` that `results` do not cover (some dev set without a result). */
export function pendingTasks(tasks: readonly FoundTask[], results: readonly DevSetResult[]): FoundTask[] {
  const done = new Set(results.map((r) => r.devSet.name));
  return tasks.filter((f) => !f.task.devSets.every((d) => done.has(d.name)));
}

/**
 * The classifier (classifierLayout) a run of `seed` starts from: the pretrained encoder, or a fresh one
 * for "scratch", and a fresh head.
 */
export function startParams(
  config: ModelConfig,
  encoder: Float32Array | "scratch",
  outputs: number,
  seed: number,
): Float32Array<ArrayBuffer> {
  const params = encoder === "scratch" ? initParams(config, { seed }) : encoder;
  return joinClassifierParams(config, outputs, params, initHead(config, outputs, { seed }));
}

/** Exports the finetuned model, saves it, and returns onnxruntime-web's logits of each dev set. */
async function onnxLogits(
  options: GlueEvalOptions,
  finetuner: Finetuner,
  found: FoundTask,
  seed: number,
  outputs: number,
  devs: EncodedExample[][],
): Promise<Float32Array[]> {
  const [{ exportClassifierOnnx }, { loadOnnx }] = await Promise.all([
    import("../export/onnx.ts"),
    import("./onnx_runtime.ts"),
  ]);
  const { params, head } = splitClassifierParams(options.config, outputs, await finetuner.readParams());
  const bytes = exportClassifierOnnx(options.config, params, head, outputs, {
    pooling: options.finetune.pooling,
  });
  const file = `${found.task.name}-seed${seed}.onnx`;
  await options.saveOnnx(file, bytes);
  const model = await loadOnnx(bytes, { name: file });
  try {
    const logits: Float32Array[] = [];
    for (const dev of devs) logits.push(await runOnnx(model, dev, outputs));
    return logits;
  } finally {
    await model.release();
  }
}

/** onnxruntime-web's logits [examples, outputs], batched by length like `predict`. */
async function runOnnx(model: OnnxModel, examples: EncodedExample[], outputs: number): Promise<Float32Array> {
  const order = Array.from(examples.keys()).sort((a, b) => examples[a].ids.length - examples[b].ids.length);
  const out = new Float32Array(examples.length * outputs);
  for (let first = 0; first < order.length; first += ONNX_BATCH) {
    const indices = order.slice(first, first + ONNX_BATCH);
    const { logits } = await model.run(padBatch(indices.map((i) => examples[i].ids)));
    indices.forEach((example, r) =>
      out.set(logits.subarray(r * outputs, (r + 1) * outputs), example * outputs)
    );
  }
  return out;
}

function maxDifference(a: Float32Array, b: Float32Array): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}
