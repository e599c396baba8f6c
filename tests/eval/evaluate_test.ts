/**
 * `deno task eval` on the CPU adapter, short of writing files: the small pretrained fixture run
 * finetuned on the GLUE-format fixtures, exported to ONNX, loaded by onnxruntime-web and scored.
 */
import assert from "node:assert/strict";
import { requestGpu } from "../../src/gpu/device.ts";
import { Kernels } from "../../src/gpu/kernels.ts";
import { evaluateGlue, type GlueEvalOptions, pendingTasks, startParams } from "../../src/eval/evaluate.ts";
import { splitClassifierParams } from "../../src/model/classifier.ts";
import { initHead, initParams } from "../../src/model/init.ts";
import { encodeExamples, FINETUNE_DEFAULTS } from "../../src/eval/finetune.ts";
import type { TaskFeatures } from "../../src/eval/features_file.ts";
import { discoverTasks, GLUE_TASKS, readExamples } from "../../src/eval/glue.ts";
import { CLS_ID, SEP_ID } from "../../src/data/tokenizer.ts";
import { loadPretrained } from "../../src/eval/pretrained.ts";
import { glueMarkdown } from "../../src/eval/report.ts";

const fixtures = new URL("../../fixtures/", import.meta.url).pathname;
const k = new Kernels(await requestGpu());
const pretrained = await loadPretrained(`${fixtures}eval/run`);

function options(overrides: Partial<GlueEvalOptions>): GlueEvalOptions {
  return {
    config: pretrained.config,
    encoder: pretrained.params,
    tokenizer: pretrained.tokenizer,
    tasks: [],
    skipped: [],
    seeds: 1,
    // A few steps per task: the fixtures hold 2 to 8 training examples.
    finetune: { ...FINETUNE_DEFAULTS, epochs: 2, batch: 4, lr: 1e-3 },
    saveOnnx: () => Promise.resolve(),
    log: () => {},
    ...overrides,
  };
}

Deno.test("every fixture task is finetuned, exported, run by onnxruntime-web and scored; the logits agree", async () => {
  const { found, skipped } = discoverTasks(`${fixtures}glue`);
  const saved: string[] = [];
  const lines: string[] = [];
  const { summary, maxLogitDifference } = await evaluateGlue(
    k,
    options({
      tasks: found,
      skipped,
      seeds: 2,
      saveOnnx: (name, bytes) => {
        assert.ok(bytes.length > 1000);
        saved.push(name);
        return Promise.resolve();
      },
      log: (line) => lines.push(line),
    }),
  );
  assert.ok(maxLogitDifference < 1e-4, `ONNX and WebGPU logits differ by ${maxLogitDifference}`);
  assert.deepEqual(summary.rows.map((r) => r.name), [
    "CoLA",
    "SST-2",
    "MRPC",
    "STS-B",
    "MNLI-m",
    "MNLI-mm",
    "RTE",
    "WNLI",
  ]);
  assert.deepEqual(summary.skipped.map((s) => s.name), ["QQP", "QNLI"]);
  assert.deepEqual(
    saved,
    found.flatMap((f) => [`${f.task.name}-seed0.onnx`, `${f.task.name}-seed1.onnx`]),
  );
  for (const row of summary.rows) {
    assert.equal(row.runs.length, 2);
    assert.ok(row.runs.every((run) => run.finetuneSeconds! > 0), `${row.name}: each run's finetuning time`);
    assert.ok(row.maxLogitDifference < 1e-4, `${row.name}: ${row.maxLogitDifference}`);
    for (const metric of row.metrics) {
      const [onnx, webgpu] = [row.onnx[metric]!, row.webgpu[metric]!];
      // Classifiers: the same argmax from both engines. Correlations of a barely trained regression head's
      // nearly constant predictions over 3 examples hinge on differences at the level of the logits'
      // disagreement, so only their range is checked.
      if (metric === "pearson" || metric === "spearman") {
        assert.ok(Math.abs(onnx) <= 100 && Math.abs(webgpu) <= 100, `${row.name} ${metric}`);
      } else assert.equal(onnx, webgpu, `${row.name} ${metric}`);
      if (metric !== "pearson" && metric !== "spearman" && metric !== "matthews") {
        assert.ok(onnx >= 0 && onnx <= 100, `${row.name} ${metric} = ${onnx}`);
      }
    }
  }
  assert.deepEqual(summary.average.covered, ["CoLA", "SST-2", "MRPC", "STS-B", "MNLI-m", "MNLI-mm", "RTE"]);
  const table = glueMarkdown(summary);
  for (const name of ["CoLA", "MNLI-mm", "GLUE average"]) assert.ok(table.includes(`| ${name} |`), table);
  // Progress: one line per task and seed, one per epoch, one per dev set.
  assert.ok(
    lines.some((l) => /^CoLA seed 1: \d+ training examples, 2 epochs of \d+ steps; dev CoLA \d+$/.test(l)),
  );
  assert.ok(lines.some((l) => /^MRPC seed 0 epoch 2\/2 done: loss \d+\.\d{4} \(/.test(l)), lines.join("\n"));
  assert.ok(
    lines.some((l) => /^STS-B seed 0 STS-B: pearson -?\d+\.\d \(WebGPU\), -?\d+\.\d \(ONNX\)/.test(l)),
  );
});

Deno.test("runs start from the pretrained encoder, or a fresh one for the baseline, and a fresh head", () => {
  const { config, params } = pretrained;
  const split = (flat: Float32Array) => splitClassifierParams(config, 3, flat);
  const fromCheckpoint = split(startParams(config, params, 3, 5));
  const fromScratch = split(startParams(config, "scratch", 3, 5));
  assert.deepEqual(fromCheckpoint.params, params);
  assert.deepEqual(fromScratch.params, initParams(config, { seed: 5 }));
  assert.deepEqual(fromCheckpoint.head, initHead(config, 3, { seed: 5 }));
  assert.deepEqual(fromScratch.head, fromCheckpoint.head);
  assert.notDeepEqual(split(startParams(config, params, 3, 6)).head, fromCheckpoint.head);
});

Deno.test("without ONNX the dev sets are scored with WebGPU alone and nothing is exported", async () => {
  const { found } = discoverTasks(`${fixtures}glue`);
  const rte = found.filter((f) => f.task.name === "RTE");
  const { summary, maxLogitDifference } = await evaluateGlue(
    k,
    options({ tasks: rte, onnx: false, saveOnnx: () => Promise.reject(new Error("nothing may be saved")) }),
  );
  assert.equal(maxLogitDifference, 0);
  assert.ok(Number.isNaN(summary.rows[0].maxLogitDifference));
  assert.ok(Number.isNaN(summary.rows[0].onnx.accuracy!));
  assert.ok(
    [0, 50, 100].includes(summary.rows[0].webgpu.accuracy!),
    `RTE has 2 dev examples: ${summary.rows[0].webgpu.accuracy}`,
  );
});

Deno.test("each task's tokenized examples and the recipe are saved for the finetuning peer", async () => {
  const { found } = discoverTasks(`${fixtures}glue`);
  const mrpc = found.filter((f) => f.task.name === "MRPC");
  const files = new Map<string, TaskFeatures>();
  const recipe = options({}).finetune;
  await evaluateGlue(
    k,
    options({
      tasks: mrpc,
      onnx: false,
      saveFeatures: (name, bytes) => {
        files.set(name, JSON.parse(new TextDecoder().decode(bytes)));
        return Promise.resolve();
      },
    }),
  );
  const file = files.get("MRPC.json")!;
  assert.deepEqual([...files.keys()], ["MRPC.json"]);
  assert.equal(file.format, "cram-glue-features");
  assert.deepEqual([file.labels, file.metrics], [["0", "1"], ["f1", "accuracy"]]);
  assert.deepEqual(file.finetune, recipe);
  // The ids are what the evaluation finetunes on: the fixture's pairs, tokenized and wrapped.
  const train = readExamples(mrpc[0].trainPath, mrpc[0].task, () => {});
  const expected = encodeExamples(pretrained.tokenizer, train, Math.min(128, pretrained.config.maxSeqLen));
  assert.deepEqual(file.train.ids, expected.map((e) => e.ids));
  assert.deepEqual(file.train.targets, expected.map((e) => e.target));
  assert.equal(file.devs.length, 1);
  assert.equal(file.devs[0].name, "MRPC");
  assert.ok(file.devs[0].ids.every((ids) => ids[0] === CLS_ID && ids.at(-1) === SEP_ID));
});

Deno.test("a resumed evaluation reports earlier results with the new ones and hears each task's end", async () => {
  const { found } = discoverTasks(`${fixtures}glue`);
  const [cola, rte] = ["CoLA", "RTE"].map((name) => found.find((f) => f.task.name === name)!);
  const earlier = {
    devSet: rte.task.devSets[0],
    metrics: rte.task.metrics,
    runs: [{ onnx: { accuracy: 0.5 }, webgpu: { accuracy: 0.5 }, maxLogitDifference: 3e-5 }],
  };
  assert.deepEqual(pendingTasks([cola, rte], [earlier]), [cola]);
  const heard: string[][] = [];
  const { summary, maxLogitDifference } = await evaluateGlue(
    k,
    options({
      tasks: pendingTasks([cola, rte], [earlier]),
      onnx: false,
      previous: [earlier],
      onTaskDone: (results) => {
        heard.push(results.map((r) => r.devSet.name));
        return Promise.resolve();
      },
    }),
  );
  // GLUE's order, whichever run a row came from; the earlier run's logit difference counts.
  assert.deepEqual(heard, [["CoLA", "RTE"]]);
  assert.deepEqual(summary.rows.map((r) => r.name), ["CoLA", "RTE"]);
  assert.equal(summary.rows[1].webgpu.accuracy, 50);
  assert.equal(maxLogitDifference, 3e-5);
  assert.deepEqual(pendingTasks([cola, rte], []), [cola, rte]);
});

Deno.test("a malformed training file stops the evaluation with its file and line", async () => {
  const task = {
    task: GLUE_TASKS.find((t) => t.name === "SST-2")!,
    trainPath: `${fixtures}glue-malformed/unknown_label.tsv`,
    devPaths: [`${fixtures}glue/SST-2/dev.tsv`],
  };
  await assert.rejects(
    () => evaluateGlue(k, options({ tasks: [task] })),
    /glue-malformed\/unknown_label.tsv:3: unknown label "2", expected one of 0, 1$/,
  );
});
