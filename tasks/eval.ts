/**
 * `deno task eval --checkpoint runs/x --glue-dir <dir>`: GLUE finetuning of a pretrained run with our
 * WebGPU engine, ONNX export, and scoring with onnxruntime-web and WebGPU (src/eval/evaluate.ts). Prints
 * progress on stderr and the Markdown table on stdout; writes into the run folder (or --out), each file
 * atomically:
 *
 *   glue.json                    the summary (glue-from-scratch.json with --from-scratch), rewritten after
 *                                every task (with the tasks still pending) so that --resume can go on
 *   glue/<task>-seed<n>.onnx     every finetuned model (glue-from-scratch/ with --from-scratch)
 *   mlm.onnx                     the pretrained MLM model
 *
 * Exits 1 with `error: <message>` on bad input, and after writing its output when ONNX and WebGPU logits
 * differ by 1e-4 or more.
 *
 * @module
 */
import { requestGpu } from "../src/gpu/device.ts";
import { Kernels } from "../src/gpu/kernels.ts";
import type { ModelConfig } from "../src/model/config.ts";
import { exists, writeFileAtomic } from "../src/fs.ts";
import { describe } from "../src/data/errors.ts";
import { evaluateGlue, pendingTasks } from "../src/eval/evaluate.ts";
import { defaultFinetuneLr } from "../src/eval/finetune.ts";
import { discoverTasks, GlueDataError } from "../src/eval/glue.ts";
import { evalHelpText, parseEvalOptions } from "../src/eval/options.ts";
import { loadPretrained } from "../src/eval/pretrained.ts";
import {
  type DevSetResult,
  type EvalSource,
  glueMarkdown,
  type GlueSummary,
  resumeResults,
  summarizeGlue,
  writeGlueJson,
} from "../src/eval/report.ts";

/**
 * The largest |ONNX logit - WebGPU logit| accepted in f32: the README's GLUE run measured at most 2.1e-5
 * (SST-2), so this leaves a factor of 5 for other tasks and seeds.
 */
const LOGIT_TOLERANCE = 1e-4;

async function main(): Promise<number> {
  const options = parseEvalOptions(Deno.args);
  if (options.help) {
    console.log(evalHelpText());
    return 0;
  }
  const log = (line: string) => console.error(line);
  if (options.onnx) {
    // Fail before any work when the ONNX half's npm packages are missing (the GPU machine has none).
    await Promise.all([import("../src/export/onnx.ts"), import("../src/eval/onnx_runtime.ts")]).catch((e) => {
      throw new Error(
        `the ONNX export and scoring need their npm packages: ${describe(e)} (--no-onnx skips them)`,
      );
    });
  }
  const pretrained = await loadPretrained(options.checkpoint, options.tokenizer);
  const { config, runDir } = pretrained;
  const discovered = discoverTasks(options.glueDir);
  const wanted = (name: string) => !options.tasks || options.tasks.includes(name);
  const tasks = discovered.found.filter((f) => wanted(f.task.name));
  const skipped = discovered.skipped.filter((s) => wanted(s.name));
  // A task asked for by name that cannot run is an error before any work, not a line in the table.
  if (options.tasks && skipped.length > 0) {
    throw new GlueDataError(
      `--tasks ${skipped.map((s) => s.name).join(",")}: cannot be evaluated: ` +
        skipped.map((s) => `${s.name} (${s.reason})`).join("; "),
    );
  }
  for (const s of skipped) log(`skipping ${s.name}: ${s.reason}`);
  if (tasks.length === 0) throw new GlueDataError(`${options.glueDir}: no GLUE task to evaluate`);
  const finetune = { ...options.finetune, lr: options.finetune.lr ?? defaultFinetuneLr(config) };
  log(
    `finetuning at lr ${finetune.lr}${
      options.finetune.lr === undefined ? ` (the default for width ${config.hidden})` : ""
    }`,
  );

  const gpu = await requestGpu();
  log(
    `${gpu.name}: ${options.fromScratch ? "no pretraining (random init)" : pretrained.dir}, ` +
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
    maxExamples: options.maxExamples,
    onnx: options.onnx,
    saveOnnx: (name, bytes) => writeFileAtomic(`${onnxDir}/${name}`, bytes),
    previous,
    onTaskDone: (results) =>
      save(summarizeGlue(results, skipped), pendingTasks(todo, results).map((f) => f.task.name)),
    log,
  });
  await save(summary, []);
  console.log(glueMarkdown(summary));
  log(`wrote ${summaryPath}${options.onnx ? ` and the ONNX models in ${onnxDir}/` : ""}`);
  if (options.onnx && !(maxLogitDifference < LOGIT_TOLERANCE)) {
    console.error(
      `error: ONNX and WebGPU logits differ by up to ${maxLogitDifference.toExponential(2)}, ` +
        `the limit is ${LOGIT_TOLERANCE}`,
    );
    return 1;
  }
  return 0;
}

/** The results of an earlier run's summary at `path` to keep (none if there is no file yet). */
async function previousResults(path: string, source: EvalSource, seeds: number): Promise<DevSetResult[]> {
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
    import("../src/export/onnx.ts"),
    import("../src/eval/onnx_runtime.ts"),
  ]);
  const bytes = exportMaskedLmOnnx(config, params);
  await (await loadOnnx(bytes, { name: "mlm.onnx" })).release();
  await writeFileAtomic(path, bytes);
  log(`wrote ${path} (${(bytes.length / 2 ** 20).toFixed(1)} MiB)`);
}

if (import.meta.main) {
  try {
    Deno.exit(await main());
  } catch (e) {
    console.error(`error: ${describe(e)}`);
    Deno.exit(1);
  }
}
