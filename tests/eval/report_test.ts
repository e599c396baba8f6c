import assert from "node:assert/strict";
import { normalizeText } from "../../src/data/normalize.ts";
import { preTokenize } from "../../src/data/pretokenize.ts";
import { SPECIAL_TOKENS, Tokenizer } from "../../src/data/tokenizer.ts";
import { exportClassifierOnnx } from "../../src/export/onnx.ts";
import { encodeExample, padBatch } from "../../src/eval/features.ts";
import { discoverTasks, GLUE_TASKS, readExamples } from "../../src/eval/glue.ts";
import { computeScores, predictionsFromLogits } from "../../src/eval/metrics.ts";
import { loadOnnx } from "../../src/eval/onnx_runtime.ts";
import {
  type DevSetResult,
  type EvalSource,
  glueJson,
  glueMarkdown,
  resumeResults,
  summarizeGlue,
} from "../../src/eval/report.ts";
import { tiny } from "../../src/model/config.ts";
import { initParams } from "../../src/model/init.ts";
import { headLayout } from "../../src/model/head_layout.ts";
import { referenceClassify } from "../../src/reference/classifier.ts";
import { randomArray } from "../reference/gradcheck.ts";

const devSet = (name: string) => GLUE_TASKS.flatMap((t) => t.devSets).find((d) => d.name === name)!;

/** Three runs each; the ONNX and WebGPU scores differ slightly, as they would from float rounding. */
const RESULTS: DevSetResult[] = [
  {
    devSet: devSet("CoLA"),
    metrics: ["matthews"],
    runs: [0.2, 0.1, 0.3].map((m, i) => ({
      onnx: { matthews: m },
      webgpu: { matthews: m + 0.002 },
      maxLogitDifference: [2e-6, 5e-6, 1e-6][i],
      finetuneSeconds: [1.5, 2.25, 3][i],
    })),
  },
  {
    devSet: devSet("MRPC"),
    metrics: ["f1", "accuracy"],
    runs: [[0.8, 0.7], [0.9, 0.6], [0.85, 0.75]].map(([f1, accuracy]) => ({
      onnx: { f1, accuracy },
      webgpu: { f1, accuracy },
      maxLogitDifference: 3e-6,
    })),
  },
  {
    devSet: devSet("WNLI"),
    metrics: ["accuracy"],
    runs: [0.5, 0.4, 0.45].map((accuracy) => ({
      onnx: { accuracy },
      webgpu: { accuracy },
      maxLogitDifference: 0,
    })),
  },
];
const SKIPPED = [{ name: "QQP", reason: "missing QQP/dev.tsv" }];

Deno.test("summarizeGlue takes medians in percent and averages the main metrics without WNLI", () => {
  const summary = summarizeGlue(RESULTS, SKIPPED);
  assert.equal(summary.seeds, 3);
  const [cola, mrpc] = summary.rows;
  assert.deepEqual(cola.onnx, { matthews: 20 });
  assert.ok(Math.abs(cola.webgpu.matthews! - 20.2) < 1e-9);
  assert.equal(cola.maxLogitDifference, 5e-6);
  assert.deepEqual(mrpc.onnx, { f1: 85, accuracy: 70 });
  assert.deepEqual(summary.average.covered, ["CoLA", "MRPC"]);
  assert.equal(summary.average.onnx, (20 + 85) / 2);
  // The paper's figures for the same two sets: (44.5 + 87.5) / 2 and (56.5 + 89.3) / 2.
  assert.deepEqual(summary.average.paper, { crammedBert: 66, bertBase: 72.9 });
  assert.deepEqual(summary.rows[2].runs.map((r) => r.onnx.accuracy), [50, 40, 45]);
});

Deno.test("glueMarkdown prints one row per dev set, the average, its coverage and the skipped tasks", () => {
  const expected = [
    "| task | metric | score (ONNX) | score (WebGPU) | max \\|Δ logit\\| | crammed BERT (paper) | BERT-base (paper) |",
    "| --- | --- | --- | --- | --- | --- | --- |",
    "| CoLA | Matthews corr. | 20.0 | 20.2 | 5.0e-6 | 44.5 | 56.5 |",
    "| MRPC | F1 / accuracy | 85.0 / 70.0 | 85.0 / 70.0 | 3.0e-6 | 87.5 | 89.3 |",
    "| WNLI | accuracy | 45.0 | 45.0 | 0.0e+0 | — | — |",
    "| GLUE average | main metric | 52.5 | 52.6 | | 66.0 | 72.9 |",
    "",
    "Scores in percent, the median of 3 runs per task. The GLUE average covers CoLA, MRPC (WNLI left out, " +
    "MNLI-m and -mm counted separately); the paper's averages are over the same sets.",
    "Skipped: QQP (missing QQP/dev.tsv).",
    "",
  ].join("\n");
  assert.equal(glueMarkdown(summarizeGlue(RESULTS, SKIPPED)), expected);
});

Deno.test("glue.json holds the summary; a score that is not a number is null", () => {
  const stsb: DevSetResult = {
    devSet: devSet("STS-B"),
    metrics: ["pearson", "spearman"],
    runs: [{
      onnx: { pearson: NaN, spearman: 0.5 },
      webgpu: { pearson: NaN, spearman: 0.5 },
      maxLogitDifference: 0,
    }],
  };
  const json = JSON.parse(glueJson(summarizeGlue([stsb], [])));
  assert.deepEqual(json.rows[0].onnx, { pearson: null, spearman: 50 });
  assert.deepEqual(json.average, {
    covered: ["STS-B"],
    onnx: null,
    webgpu: null,
    paper: { crammedBert: 84.6, bertBase: 86.7 },
  });
  assert.match(
    glueMarkdown(summarizeGlue([stsb], [])),
    /\| STS-B \| Pearson \/ Spearman \| n\/a \/ 50\.0 \|/,
  );
});

Deno.test("glueMarkdown shows n/a for the scores and the logit difference of a run without ONNX", () => {
  const webgpuOnly: DevSetResult = {
    devSet: devSet("RTE"),
    metrics: ["accuracy"],
    runs: [{ onnx: { accuracy: NaN }, webgpu: { accuracy: 0.5 }, maxLogitDifference: NaN }],
  };
  assert.match(
    glueMarkdown(summarizeGlue([webgpuOnly], [])),
    /\| RTE \| accuracy \| n\/a \| 50\.0 \| n\/a \|/,
  );
});

const SOURCE: EvalSource = { checkpoint: "runs/x/checkpoints/step-1", finetune: { lr: 4e-5 }, onnx: true };

Deno.test("resumeResults reads a saved glue.json back into the results it summarized", () => {
  const text = glueJson({ source: SOURCE, ...summarizeGlue(RESULTS, SKIPPED) });
  const back = resumeResults("glue.json", text, { source: SOURCE, seeds: 3 });
  assert.deepEqual(back.map((r) => [r.devSet, r.metrics]), RESULTS.map((r) => [r.devSet, r.metrics]));
  back.forEach((r, i) =>
    r.runs.forEach((run, j) => {
      const expected = RESULTS[i].runs[j];
      assert.equal(run.maxLogitDifference, expected.maxLogitDifference);
      // Kept where recorded (CoLA's), absent where not (as in files written before it was).
      assert.equal(run.finetuneSeconds, expected.finetuneSeconds);
      for (const side of ["onnx", "webgpu"] as const) {
        for (const [metric, v] of Object.entries(expected[side])) {
          assert.ok(Math.abs(run[side][metric as "f1"]! - v) < 1e-15, `${side} ${metric}`);
        }
      }
    })
  );
  // Summarizing them again gives the same file.
  assert.equal(glueJson({ source: SOURCE, ...summarizeGlue(back, SKIPPED) }), text);
  // NaN scores (saved as null) come back as NaN.
  const noOnnx = { ...RESULTS[2], runs: RESULTS[2].runs.map((r) => ({ ...r, onnx: { accuracy: NaN } })) };
  const nan = resumeResults("glue.json", glueJson({ source: SOURCE, ...summarizeGlue([noOnnx], []) }), {
    source: SOURCE,
    seeds: 3,
  });
  assert.ok(Number.isNaN(nan[0].runs[0].onnx.accuracy));
});

Deno.test("resumeResults refuses another checkpoint, other options and malformed files, naming the field", () => {
  const text = glueJson({ source: SOURCE, ...summarizeGlue(RESULTS, SKIPPED) });
  const cases: [string, { source: EvalSource; seeds: number }, RegExp][] = [
    [text, { source: { ...SOURCE, checkpoint: "runs/y" }, seeds: 3 }, /source\.checkpoint is "runs\/x/],
    [
      text,
      { source: { ...SOURCE, finetune: { lr: 1e-4 } }, seeds: 3 },
      /source\.finetune is \{"pooling":"cls","lr":0\.00004\}, this run has \{"pooling":"cls","lr":0\.0001\}/,
    ],
    [
      text,
      { source: { ...SOURCE, maxExamples: 10 }, seeds: 3 },
      /source\.maxExamples is null, this run has 10/,
    ],
    [text, { source: { ...SOURCE, onnx: false }, seeds: 3 }, /source\.onnx is true/],
    // SOURCE names no pooling: a file from before it was recorded, which pooled the [CLS] state.
    [
      text,
      { source: { ...SOURCE, finetune: { lr: 4e-5, pooling: "mean" } }, seeds: 3 },
      /source\.finetune is \{"pooling":"cls","lr":0\.00004\}, this run has \{"pooling":"mean","lr":0\.00004\}/,
    ],
    // SOURCE names no precision: a file from before it was recorded, which finetuned in f32.
    [
      text,
      { source: { ...SOURCE, precision: "f16" }, seeds: 3 },
      /source\.precision is "f32", this run has "f16"/,
    ],
    [text, { source: SOURCE, seeds: 1 }, /seeds is 3, this run has 1/],
    ["{", { source: SOURCE, seeds: 3 }, /glue\.json: not JSON/],
    ["[]", { source: SOURCE, seeds: 3 }, /expected a GLUE summary with rows/],
    [text.replace('"name": "MRPC"', '"name": "XYZ"'), { source: SOURCE, seeds: 3 }, /rows\[1\]\.name: "XYZ"/],
    [
      text.replace('"matthews": 10', '"matthews": "10"'),
      { source: SOURCE, seeds: 3 },
      /rows\[0\]\.runs\[1\]\.onnx\.matthews: expected a number or null/,
    ],
  ];
  for (const [file, expected, message] of cases) {
    assert.throws(() => resumeResults("glue.json", file, expected), message);
  }
});

Deno.test("summarizeGlue rejects uneven or missing runs", () => {
  assert.throws(
    () => summarizeGlue([RESULTS[0], { ...RESULTS[1], runs: RESULTS[1].runs.slice(1) }], []),
    /same number of runs, got 3, 2/,
  );
  assert.throws(() => summarizeGlue([{ ...RESULTS[0], runs: [] }], []), /CoLA: no runs/);
});

Deno.test("fixture dev sets scored through ONNX end to end: every task present gets a row", async () => {
  // The finetuning engine is not part of this test: a random tiny model stands in for a finetuned one,
  // and the float64 reference stands in for the WebGPU logits.
  const { found, skipped } = discoverTasks(new URL("../../fixtures/glue", import.meta.url).pathname);
  const dev = found.flatMap(({ task, devPaths }) =>
    devPaths.map((path, d) => ({ task, devSet: task.devSets[d], examples: readExamples(path, task) }))
  );
  const words = new Set(
    dev.flatMap(({ examples }) => examples.flatMap((e) => preTokenize(normalizeText(`${e.a} ${e.b ?? ""}`)))),
  );
  const tokenizer = new Tokenizer([...SPECIAL_TOKENS, ...words]);
  const config = { ...tiny, vocabSize: tokenizer.size };
  const params = initParams(config, { seed: 5 });
  const results: DevSetResult[] = [];
  for (const [i, { task, devSet, examples }] of dev.entries()) {
    const outputs = task.labels?.length ?? 1;
    const head = Float32Array.from(randomArray(headLayout(config, outputs).totalSize, 40 + i, 0.5));
    const model = await loadOnnx(exportClassifierOnnx(config, params, head, outputs), { name: task.name });
    try {
      const batch = padBatch(examples.map((e) => encodeExample(tokenizer, e, config.maxSeqLen)));
      const { logits } = await model.run(batch);
      const reference = referenceClassify(config, params, head, outputs, batch.inputIds, {
        batch: batch.batch,
        seq: batch.seq,
        keyMask: batch.attentionMask,
      });
      const labels = examples.map((e) => e.label);
      const score = (values: ArrayLike<number>) =>
        computeScores(task.metrics, predictionsFromLogits(values, outputs), labels);
      const maxLogitDifference = Math.max(...reference.map((v, j) => Math.abs(v - logits[j])));
      results.push({
        devSet,
        metrics: task.metrics,
        runs: [{ onnx: score(logits), webgpu: score(reference), maxLogitDifference }],
      });
    } finally {
      await model.release();
    }
  }
  const summary = summarizeGlue(results, skipped);
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
  assert.deepEqual(summary.average.covered, ["CoLA", "SST-2", "MRPC", "STS-B", "MNLI-m", "MNLI-mm", "RTE"]);
  for (const row of summary.rows) {
    assert.ok(
      row.maxLogitDifference < 1e-4,
      `${row.name}: ONNX and reference logits differ by ${row.maxLogitDifference}`,
    );
    // Float rounding may move a correlation of nearly constant predictions a little, never a whole example.
    for (const metric of row.metrics) {
      const [onnx, webgpu] = [row.onnx[metric]!, row.webgpu[metric]!];
      assert.ok(
        Math.abs(onnx - webgpu) < 0.1,
        `${row.name} ${metric}: ${onnx} from ONNX, ${webgpu} from the reference`,
      );
    }
  }
  assert.equal(glueMarkdown(summary).split("\n").filter((line) => line.startsWith("| ")).length, 2 + 8 + 1);
});
