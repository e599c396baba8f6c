/**
 * A run of `deno task eval` from its parsed options to its GLUE summary: the pretrained model and the tasks
 * to evaluate, the results an interrupted run kept, the MLM model's ONNX export, and the finetuning and
 * scoring of every task (evaluate.ts), with glue.json rewritten after each.
 *
 * @module
 */
import { describe } from "../data/errors.ts";
import { exists, writeFileAtomic } from "../fs.ts";
import { UsageError } from "../args.ts";
import { requestGpu } from "../gpu/device.ts";
import { Kernels } from "../gpu/kernels.ts";
import type { ModelConfig } from "../model/config.ts";
import { evaluateGlue, pendingTasks } from "./evaluate.ts";
import { defaultFinetuneLr } from "./finetune.ts";
import { discoverTasks, type FoundTask, GlueDataError, type SkippedTask } from "./glue.ts";
import type { EvalOptions } from "./options.ts";
import { loadPretrained } from "./pretrained.ts";
import { devicePrecision } from "../train/options.ts";
import {
  type DevSetResult,
  type EvalSource,
  type GlueSummary,
  resumeResults,
  summarizeGlue,
  writeGlueJson,
} from "./report.ts";

/**
 * The largest |ONNX logit - WebGPU logit| accepted in f32: the README's GLUE run measured at most 2.1e-5
 * (SST-2), so this leaves a factor of 5 for other tasks and seeds.
 */
export const LOGIT_TOLERANCE = 1e-4;

/** What an evaluation wrote and found. */
export interface EvalRun {
  summary: GlueSummary;
  /** The largest |ONNX logit - WebGPU logit| over every dev set (NaN without ONNX). */
  maxLogitDifference: number;
  /** glue.json (or glue-from-scratch.json). */
  summaryPath: string;
  /** The folder of the finetuned ONNX models, if they were exported. */
  onnxDir?: string;
}

/** Runs the evaluation `options` describe; `log` gets its progress lines. */
export async function runEvaluation(options: EvalOptions, log: (line: string) => void): Promise<EvalRun> {
  if (options.onnx) {
    // Fail before any work when the ONNX half's npm packages are missing (the GPU machine has none).
    await Promise.all([import("../export/onnx.ts"), import("./onnx_runtime.ts")]).catch((e) => {
      throw new Error(
        `the ONNX export and scoring need their npm packages: ${describe(e)} (--no-onnx skips them)`,
      );
    });
  }
  const pretrained = await loadPretrained(options.checkpoint, options.tokenizer);
  const { config, runDir } = pretrained;
  const { tasks, skipped } = selectTasks(discoverTasks(options.glueDir), options.glueDir, options.tasks);
  for (const s of skipped) log(`skipping ${s.name}: ${s.reason}`);
  const finetune = { ...options.finetune, lr: options.finetune.lr ?? defaultFinetuneLr(config) };
  log(
    `finetuning at lr ${finetune.lr}${
      options.finetune.lr === undefined ? ` (the default for width ${config.hidden})` : ""
    }`,
  );

  const gpu = await requestGpu({ backend: options.gpu });
  const precision = options.precision ?? devicePrecision(gpu);
  if (options.trace && precision === "f16") {
    throw new UsageError(
      `--trace needs --precision f32 (the peer replays a trace in float32); on ${gpu.name} the default is f16`,
    );
  }
  log(
    `${gpu.name} (${gpu.backend}, ${precision}): ` +
      `${options.fromScratch ? "no pretraining (random init)" : pretrained.dir}, ` +
      `${tasks.length} task(s), ${options.seeds} seed(s)`,
  );
  const outDir = options.out ?? runDir;
  await Deno.mkdir(outDir, { recursive: true });
  const variant = options.fromScratch ? "glue-from-scratch" : "glue";
  const onnxDir = `${outDir}/${variant}`;
  const summaryPath = `${outDir}/${variant}.json`;
  const source: EvalSource = {
    checkpoint: options.fromScratch ? null : pretrained.dir,
    finetune,
    precision,
    maxExamples: options.maxExamples,
    onnx: options.onnx,
  };
  const previous = options.resume ? await previousResults(summaryPath, source, options.seeds) : [];
  const todo = pendingTasks(tasks, previous);
  for (const f of tasks) if (!todo.includes(f)) log(`${f.task.name}: kept from ${summaryPath}`);
  // glue.json, with the tasks still to run while there are any.
  const save = (summary: GlueSummary, pending: string[]) =>
    writeGlueJson(summaryPath, { source, ...(pending.length > 0 ? { pending } : {}), ...summary });
  if (options.onnx) {
    await Deno.mkdir(onnxDir, { recursive: true });
    if (!options.fromScratch && !(options.resume && await exists(`${outDir}/mlm.onnx`))) {
      await exportMaskedLm(pretrained.config, pretrained.params, `${outDir}/mlm.onnx`, log);
    }
  }
  const { summary, maxLogitDifference } = await evaluateGlue(new Kernels(gpu), {
    config,
    encoder: options.fromScratch ? "scratch" : pretrained.params,
    tokenizer: pretrained.tokenizer,
    tasks: todo,
    skipped,
    seeds: options.seeds,
    finetune,
    storage: precision,
    maxExamples: options.maxExamples,
    onnx: options.onnx,
    saveOnnx: (name, bytes) => writeFileAtomic(`${onnxDir}/${name}`, bytes),
    ...(options.writeFeatures && { saveFeatures: saveInto(`${outDir}/glue-features`) }),
    ...(options.trace && { saveTrace: saveInto(`${outDir}/glue-trace`) }),
    previous,
    onTaskDone: (results) =>
      save(summarizeGlue(results, skipped), pendingTasks(todo, results).map((f) => f.task.name)),
    log,
  });
  await save(summary, []);
  return { summary, maxLogitDifference, summaryPath, ...(options.onnx && { onnxDir }) };
}

/** Saves a file into `dir`, made when the first file comes. */
function saveInto(dir: string): (name: string, bytes: Uint8Array) => Promise<void> {
  return async (name, bytes) => {
    await Deno.mkdir(dir, { recursive: true });
    await writeFileAtomic(`${dir}/${name}`, bytes);
  };
}

/**
 * The tasks to evaluate among those found under `glueDir`: all, or those `names` asks for. A task asked for
 * by name that cannot run is an error before any work, not a line in the table; so is finding none.
 */
export function selectTasks(
  discovered: { found: FoundTask[]; skipped: SkippedTask[] },
  glueDir: string,
  names?: readonly string[],
): { tasks: FoundTask[]; skipped: SkippedTask[] } {
  const wanted = (name: string) => !names || names.includes(name);
  const tasks = discovered.found.filter((f) => wanted(f.task.name));
  const skipped = discovered.skipped.filter((s) => wanted(s.name));
  if (names && skipped.length > 0) {
    throw new GlueDataError(
      `--tasks ${skipped.map((s) => s.name).join(",")}: cannot be evaluated: ` +
        skipped.map((s) => `${s.name} (${s.reason})`).join("; "),
    );
  }
  if (tasks.length === 0) throw new GlueDataError(`${glueDir}: no GLUE task to evaluate`);
  return { tasks, skipped };
}

/** The results of an earlier run's summary at `path` to keep (none if there is no file yet). */
export async function previousResults(
  path: string,
  source: EvalSource,
  seeds: number,
): Promise<DevSetResult[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  return resumeResults(path, text, { source, seeds });
}

/** Exports the pretrained MLM model to `path` after checking that onnxruntime-web loads it. */
async function exportMaskedLm(
  config: ModelConfig,
  params: Float32Array,
  path: string,
  log: (line: string) => void,
): Promise<void> {
  // Imported where used, so that --no-onnx needs no npm package.
  const [{ exportMaskedLmOnnx }, { loadOnnx }] = await Promise.all([
    import("../export/onnx.ts"),
    import("./onnx_runtime.ts"),
  ]);
  const bytes = exportMaskedLmOnnx(config, params);
  await (await loadOnnx(bytes, { name: "mlm.onnx" })).release();
  await writeFileAtomic(path, bytes);
  log(`wrote ${path} (${(bytes.length / 2 ** 20).toFixed(1)} MiB)`);
}
