/**
 * The GLUE report: medians over seeds, the GLUE average, a Markdown table next to the paper's figures,
 * and `glue.json`. Scores arrive as fractions (metrics.ts) and leave as percentages, as the paper
 * prints them.
 *
 * @module
 */
import { writeFileAtomic } from "../fs.ts";
import type { StorageType } from "../gpu/buffers.ts";
import { type DevSet, GLUE_TASKS, type SkippedTask } from "./glue.ts";
import { glueAverage, median, type MetricName, type Scores } from "./metrics.ts";

/** One finetuning run (one seed) scored on one dev set. */
export interface DevSetRun {
  /** Scores of onnxruntime-web's predictions. */
  onnx: Scores;
  /** Scores of our WebGPU engine's predictions. */
  webgpu: Scores;
  /** The largest |ONNX logit - WebGPU logit| over the dev set. */
  maxLogitDifference: number;
  /**
   * Wall-clock seconds of the run's finetuning (its epochs, host waits included; not the scoring), so that
   * glue.json says what each backend and precision cost. Absent in files written before it was recorded.
   */
  finetuneSeconds?: number;
}

/** Every run of one dev set. */
export interface DevSetResult {
  devSet: DevSet;
  /** The task's metrics; the first is the main one. */
  metrics: MetricName[];
  runs: DevSetRun[];
}

/** One dev set in the summary: median scores in percent. */
export interface SummaryRow {
  name: string;
  metrics: MetricName[];
  onnx: Scores;
  webgpu: Scores;
  maxLogitDifference: number;
  paper?: DevSet["paper"];
  /** Each run's scores in percent, in seed order. */
  runs: DevSetRun[];
}

/** The GLUE average over the dev sets present, ours and the paper's over the same sets. */
export interface SummaryAverage {
  covered: string[];
  onnx: number;
  webgpu: number;
  /** Present when the paper has a figure for every covered set. */
  paper?: { crammedBert: number; bertBase: number };
}

/** What was evaluated and how: the checkpoint (null: random init), finetuning and scoring options. */
export interface EvalSource {
  checkpoint: string | null;
  finetune: object;
  /** How the encoder's activations were stored while finetuning (files without it: f32). */
  precision?: StorageType;
  maxExamples?: number;
  onnx: boolean;
}

/** What the table and glue.json show. */
export interface GlueSummary {
  source?: EvalSource;
  /** Tasks still to evaluate: a summary saved part way through (see {@linkcode resumeResults}). */
  pending?: string[];
  seeds: number;
  rows: SummaryRow[];
  average: SummaryAverage;
  skipped: SkippedTask[];
}

const METRIC_LABELS: Record<MetricName, string> = {
  matthews: "Matthews corr.",
  f1: "F1",
  accuracy: "accuracy",
  pearson: "Pearson",
  spearman: "Spearman",
};

/** Medians over runs (in percent) and the GLUE average of each dev set's main metric. */
export function summarizeGlue(results: DevSetResult[], skipped: SkippedTask[]): GlueSummary {
  const seeds = new Set(results.map((r) => r.runs.length));
  if (seeds.size > 1) {
    throw new RangeError(`every dev set needs the same number of runs, got ${[...seeds].join(", ")}`);
  }
  const rows = results.map(({ devSet, metrics, runs }): SummaryRow => {
    if (runs.length === 0) throw new RangeError(`${devSet.name}: no runs`);
    const percent = (scores: Scores): Scores =>
      Object.fromEntries(metrics.map((m) => [m, 100 * (scores[m] ?? NaN)]));
    const percentRuns = runs.map((run) => ({ ...run, onnx: percent(run.onnx), webgpu: percent(run.webgpu) }));
    const medianOf = (side: "onnx" | "webgpu"): Scores =>
      Object.fromEntries(metrics.map((m) => [m, median(percentRuns.map((run) => run[side][m]!))]));
    return {
      name: devSet.name,
      metrics,
      onnx: medianOf("onnx"),
      webgpu: medianOf("webgpu"),
      maxLogitDifference: Math.max(...runs.map((run) => run.maxLogitDifference)),
      paper: devSet.paper,
      runs: percentRuns,
    };
  });
  const averageOf = (pick: (row: SummaryRow) => number) =>
    glueAverage(Object.fromEntries(rows.map((row) => [row.name, pick(row)])));
  const onnx = averageOf((row) => row.onnx[row.metrics[0]]!);
  const average: SummaryAverage = {
    covered: onnx.covered,
    onnx: onnx.average,
    webgpu: averageOf((row) => row.webgpu[row.metrics[0]]!).average,
  };
  const covered = rows.filter((row) => onnx.covered.includes(row.name));
  if (covered.length > 0 && covered.every((row) => row.paper)) {
    const paperAverage = (key: "crammedBert" | "bertBase") =>
      glueAverage(Object.fromEntries(covered.map((row) => [row.name, row.paper![key]]))).average;
    average.paper = { crammedBert: paperAverage("crammedBert"), bertBase: paperAverage("bertBase") };
  }
  return { seeds: [...seeds][0] ?? 0, rows, average, skipped };
}

/** The Markdown table of a summary, with the average's coverage and the skipped tasks below it. */
export function glueMarkdown(summary: GlueSummary): string {
  const paper = (figures: SummaryAverage["paper"]) =>
    figures ? `${formatScore(figures.crammedBert)} | ${formatScore(figures.bertBase)}` : "— | —";
  const lines = [
    "| task | metric | score (ONNX) | score (WebGPU) | max \\|Δ logit\\| | crammed BERT (paper) | BERT-base (paper) |",
    "| --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const row of summary.rows) {
    const scores = (s: Scores) => row.metrics.map((m) => formatScore(s[m]!)).join(" / ");
    const metrics = row.metrics.map((m) => METRIC_LABELS[m]).join(" / ");
    lines.push(
      `| ${row.name} | ${metrics} | ${scores(row.onnx)} | ${scores(row.webgpu)} | ` +
        `${formatDifference(row.maxLogitDifference)} | ${paper(row.paper)} |`,
    );
  }
  const { average } = summary;
  lines.push(
    `| GLUE average | main metric | ${formatScore(average.onnx)} | ${formatScore(average.webgpu)} | | ` +
      `${paper(average.paper)} |`,
  );
  lines.push(
    "",
    `Scores in percent, the median of ${summary.seeds} run${summary.seeds === 1 ? "" : "s"} per task. ` +
      `The GLUE average covers ${average.covered.length > 0 ? average.covered.join(", ") : "no task"} ` +
      "(WNLI left out, MNLI-m and -mm counted separately); the paper's averages are over the same sets.",
  );
  if (summary.skipped.length > 0) {
    lines.push(`Skipped: ${summary.skipped.map((s) => `${s.name} (${s.reason})`).join("; ")}.`);
  }
  return lines.join("\n") + "\n";
}

/** glue.json: the summary as JSON text (scores in percent; a score that is not a number becomes null). */
export function glueJson(summary: GlueSummary): string {
  return JSON.stringify(
    summary,
    (_, value) => (typeof value === "number" && !Number.isFinite(value) ? null : value),
    2,
  ) +
    "\n";
}

/** Writes glue.json to `path` atomically. */
export function writeGlueJson(path: string, summary: GlueSummary): Promise<void> {
  return writeFileAtomic(path, new TextEncoder().encode(glueJson(summary)));
}

/**
 * The results a saved glue.json holds, for a run that goes on from it (`deno task eval --resume`): every
 * dev-set row back as fractions. Throws an Error naming `path` and the field when the file is not such a
 * summary, or when it was made from another checkpoint or with other options than `expected`.
 */
export function resumeResults(
  path: string,
  text: string,
  expected: { source: EvalSource; seeds: number },
): DevSetResult[] {
  const fail = (what: string) => new Error(`${path}: ${what}`);
  let saved: GlueSummary;
  try {
    saved = JSON.parse(text);
  } catch (e) {
    throw fail(`not JSON (${(e as Error).message})`);
  }
  if (typeof saved !== "object" || saved === null || !Array.isArray(saved.rows)) {
    throw fail("expected a GLUE summary with rows");
  }
  const canonical = (v: unknown) => JSON.stringify(v ?? null);
  // A file from before precision and pooling were recorded finetuned in f32 on the [CLS] state.
  const withDefaults = (source?: EvalSource) =>
    source && {
      ...source,
      precision: source.precision ?? "f32",
      finetune: { pooling: "cls", ...source.finetune },
    };
  const [was, now] = [withDefaults(saved.source), withDefaults(expected.source)!];
  for (const key of ["checkpoint", "finetune", "precision", "maxExamples", "onnx"] as const) {
    if (canonical(was?.[key]) !== canonical(now[key])) {
      throw fail(
        `source.${key} is ${canonical(was?.[key])}, this run has ${canonical(now[key])} ` +
          "(resume only with the same checkpoint and options)",
      );
    }
  }
  if (saved.seeds !== expected.seeds) {
    throw fail(`seeds is ${saved.seeds}, this run has ${expected.seeds}`);
  }
  const devSets = new Map(GLUE_TASKS.flatMap((t) => t.devSets).map((d) => [d.name, d]));
  const fraction = (scores: unknown, field: string): Scores => {
    if (typeof scores !== "object" || scores === null) throw fail(`${field}: expected scores`);
    return Object.fromEntries(
      Object.entries(scores).map(([metric, v]) => {
        if (v !== null && typeof v !== "number") throw fail(`${field}.${metric}: expected a number or null`);
        return [metric, v === null ? NaN : v / 100];
      }),
    );
  };
  return saved.rows.map((row, i) => {
    const field = `rows[${i}]`;
    const devSet = devSets.get(row?.name);
    if (!devSet) throw fail(`${field}.name: ${JSON.stringify(row?.name)} is not a GLUE dev set`);
    if (
      !Array.isArray(row.metrics) || row.metrics.some((m) => !(m in METRIC_LABELS)) ||
      !Array.isArray(row.runs) || row.runs.length !== expected.seeds
    ) {
      throw fail(`${field}: expected GLUE metrics and ${expected.seeds} runs`);
    }
    return {
      devSet,
      metrics: row.metrics,
      runs: row.runs.map((run, r) => ({
        onnx: fraction(run?.onnx, `${field}.runs[${r}].onnx`),
        webgpu: fraction(run?.webgpu, `${field}.runs[${r}].webgpu`),
        maxLogitDifference: typeof run.maxLogitDifference === "number" ? run.maxLogitDifference : NaN,
        ...(typeof run.finetuneSeconds === "number" && { finetuneSeconds: run.finetuneSeconds }),
      })),
    };
  });
}

function formatScore(value: number): string {
  return Number.isFinite(value) ? value.toFixed(1) : "n/a";
}

/** A logit difference, "n/a" where there is none (a run without ONNX). */
function formatDifference(value: number): string {
  return Number.isFinite(value) ? value.toExponential(1) : "n/a";
}
