/**
 * GLUE score against pretraining budget: one point per run folder, from its summary.json (preset, budget
 * used, tokens seen, final MLM loss, masking rate, dataset size) and the glue.json and glue-from-scratch.json
 * that `deno task eval` wrote into it, as a Markdown table and an SVG plot (`deno task glue-curve`). Runs of
 * one preset that differ in masking rate, dataset size or finetuning learning rate are separate series.
 *
 * @module
 */
import { decodeState, STATE_FILE } from "../train/checkpoint_state.ts";
import { newestCheckpoint } from "../train/checkpoints.ts";
import { escapeXml, formatCount, gridAndFrame, niceTicks, svgStart } from "../train/plot.ts";

/** One run's pretraining and its GLUE averages. */
export interface BudgetPoint {
  /** The run folder. */
  run: string;
  preset: string;
  /** Budget used, in minutes. */
  minutes: number;
  tokens: number;
  finalLoss: number;
  /** The MLM masking rate: from summary.json, else from the run's newest checkpoint; null if neither has it. */
  maskRate: number | null;
  /** Tokens in the run's dataset, from the same places. */
  dataTokens: number | null;
  /**
   * The learning rate of the run's finetuning: glue.json's, else glue-from-scratch.json's; null where neither
   * records it.
   */
  finetuneLr: number | null;
  /** GLUE average (WebGPU scores, percent) after pretraining; null without glue.json. */
  pretrained: number | null;
  /** The same finetuning from a random init; null without glue-from-scratch.json. */
  scratch: number | null;
  /** Seeds per task of the pretrained evaluation (its median is reported), and the dev sets averaged. */
  seeds: number | null;
  covered: string[];
}

/** A run folder's file that is not what the curve needs: the message names the file and the field. */
export class BudgetCurveError extends Error {
  override name = "BudgetCurveError";
}

async function readJson(path: string, optional: boolean): Promise<Record<string, unknown> | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (optional && e instanceof Deno.errors.NotFound) return null;
    throw new BudgetCurveError(`${path}: cannot be read (${(e as Error).message})`);
  }
  try {
    const value = JSON.parse(text);
    if (typeof value === "object" && value !== null && !Array.isArray(value)) return value;
  } catch {
    // reported below
  }
  throw new BudgetCurveError(`${path}: expected a JSON object`);
}

function field<T>(
  path: string,
  object: Record<string, unknown>,
  name: string,
  ok: (v: unknown) => v is T,
): T {
  const value = object[name];
  if (!ok(value)) throw new BudgetCurveError(`${path}: field ${name} is missing or has the wrong type`);
  return value;
}

const isNumber = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null;
const isString = (v: unknown): v is string => typeof v === "string";

/** A field that older files lack (null then), but that must be a number where present. */
function optionalNumber(path: string, object: Record<string, unknown>, name: string): number | null {
  return name in object ? field(path, object, name, isNumber) : null;
}

/**
 * The GLUE average of an evaluation file (WebGPU scores), its seeds, dev sets and finetuning learning rate
 * (`source.finetune.lr`; null where the file predates it); null without the file.
 */
async function readAverage(
  path: string,
): Promise<{ average: number; seeds: number; covered: string[]; lr: number | null } | null> {
  const glue = await readJson(path, true);
  if (!glue) return null;
  if ("pending" in glue) {
    throw new BudgetCurveError(`${path}: the evaluation has tasks pending (eval --resume)`);
  }
  const average = field(path, glue, "average", isObject);
  const finetune = isObject(glue.source) && isObject(glue.source.finetune) ? glue.source.finetune : {};
  return {
    average: field(`${path} average`, average, "webgpu", isNumber),
    seeds: field(path, glue, "seeds", isNumber),
    covered: field(`${path} average`, average, "covered", (v): v is string[] => Array.isArray(v)),
    lr: optionalNumber(`${path} source.finetune`, finetune, "lr"),
  };
}

/**
 * The masking rate and dataset tokens of a run whose summary.json predates them, from its newest checkpoint's
 * state (its resolved options and its dataset's sequences); null where the run kept no checkpoint or the
 * options no rate.
 */
async function recipeFromCheckpoint(
  run: string,
): Promise<{ maskRate: number | null; dataTokens: number | null }> {
  const dir = await newestCheckpoint(run);
  if (dir === undefined) return { maskRate: null, dataTokens: null };
  const path = `${dir}/${STATE_FILE}`;
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new BudgetCurveError(`${path}: cannot be read (${(e as Error).message})`);
  }
  const state = decodeState(bytes, path);
  return {
    maskRate: state.options.maskRate ?? null,
    dataTokens: state.dataset.sequences * state.config.maxSeqLen,
  };
}

/** The point of run folder `run`: its summary.json is required, the evaluations are not. */
export async function readBudgetPoint(run: string): Promise<BudgetPoint> {
  const path = `${run}/summary.json`;
  const summary = (await readJson(path, false))!;
  const pretrained = await readAverage(`${run}/glue.json`);
  const scratch = await readAverage(`${run}/glue-from-scratch.json`);
  // The two scores compare only if the same finetuning produced them.
  if (pretrained?.lr != null && scratch?.lr != null && pretrained.lr !== scratch.lr) {
    throw new BudgetCurveError(
      `${run}: glue.json was finetuned at lr ${pretrained.lr} and glue-from-scratch.json at lr ${scratch.lr}; ` +
        "expected one rate for both (eval --lr)",
    );
  }
  let maskRate = optionalNumber(path, summary, "maskRate");
  let dataTokens = optionalNumber(path, summary, "dataTokens");
  if (maskRate === null || dataTokens === null) {
    const recipe = await recipeFromCheckpoint(run);
    maskRate ??= recipe.maskRate;
    dataTokens ??= recipe.dataTokens;
  }
  return {
    run,
    preset: field(path, summary, "preset", isString),
    minutes: field(path, summary, "usedSeconds", isNumber) / 60,
    tokens: field(path, summary, "tokensSeen", isNumber),
    finalLoss: field(path, summary, "finalLoss", isNumber),
    maskRate,
    dataTokens,
    finetuneLr: pretrained?.lr ?? scratch?.lr ?? null,
    pretrained: pretrained?.average ?? null,
    scratch: scratch?.average ?? null,
    seeds: pretrained?.seeds ?? null,
    covered: pretrained?.covered ?? [],
  };
}

const score = (v: number | null) => (v === null ? "—" : v.toFixed(1));
const masked = (rate: number | null) => (rate === null ? "—" : `${+(rate * 100).toPrecision(3)}%`);
const dataSize = (tokens: number | null) => (tokens === null ? "—" : formatCount(tokens));
const learningRate = (lr: number | null) => (lr === null ? "—" : lr.toExponential());

function maskLabel(p: BudgetPoint): string {
  return p.maskRate === null ? "masking not recorded" : `${masked(p.maskRate)} masked`;
}

function dataLabel(p: BudgetPoint): string {
  return p.dataTokens === null ? "data not recorded" : `${dataSize(p.dataTokens)} tokens of data`;
}

function lrLabel(p: BudgetPoint): string {
  return p.finetuneLr === null
    ? "finetuning lr not recorded"
    : `finetuned at lr ${learningRate(p.finetuneLr)}`;
}

/**
 * Each point's series: its preset, then its masking rate, its dataset's tokens and its finetuning learning rate
 * where the runs of that preset among `points` differ in them as printed, e.g.
 * `["compact", "30% masked", "66.8M tokens of data"]`.
 */
export function seriesOf(points: readonly BudgetPoint[]): Map<BudgetPoint, string[]> {
  const series = new Map<BudgetPoint, string[]>();
  for (const preset of new Set(points.map((p) => p.preset))) {
    const same = points.filter((p) => p.preset === preset);
    const varying = [maskLabel, dataLabel, lrLabel].filter((label) => new Set(same.map(label)).size > 1);
    for (const p of same) series.set(p, [preset, ...varying.map((label) => label(p))]);
  }
  return series;
}

/** The points as a Markdown table, by series and then budget. */
export function budgetTableMarkdown(points: readonly BudgetPoint[]): string {
  const rows = sortPoints(points).map((p) => {
    const cells = [
      ...[p.run, p.preset, masked(p.maskRate), dataSize(p.dataTokens), p.minutes.toFixed(1)],
      ...[
        formatCount(p.tokens),
        p.finalLoss.toFixed(3),
        learningRate(p.finetuneLr),
        score(p.pretrained),
        score(p.scratch),
        p.seeds ?? "—",
      ],
    ];
    return `| ${cells.join(" | ")} |`;
  });
  return [
    "| run | preset | masked | data tokens | minutes | tokens | MLM loss | finetuning lr | GLUE, pretrained " +
    "| GLUE, no pretraining | seeds |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...rows,
  ].join("\n");
}

/** By preset, masking rate, dataset size, finetuning rate (unrecorded ones last) and budget. */
function sortPoints(points: readonly BudgetPoint[]): BudgetPoint[] {
  const byValue = (a: number | null, b: number | null) =>
    a === b ? 0 : a === null ? 1 : b === null ? -1 : a - b;
  return points.toSorted((a, b) =>
    a.preset.localeCompare(b.preset) || byValue(a.maskRate, b.maskRate) ||
    byValue(a.dataTokens, b.dataTokens) || byValue(a.finetuneLr, b.finetuneLr) || a.minutes - b.minutes
  );
}

// Series past the eighth repeat the colours with dashed lines.
const COLORS = ["#1f5fbf", "#c0392b", "#27ae60", "#8e44ad", "#d68910", "#16a085", "#7f8c8d", "#d35400"];

/**
 * GLUE average against budget minutes (or tokens seen) as SVG: a line per series (see
 * {@linkcode seriesOf}) through its pretrained runs (filled dots), and each run's no-pretraining score
 * (hollow dots) at the same budget.
 */
export function budgetCurveSvg(
  points: readonly BudgetPoint[],
  options: { x: "minutes" | "tokens"; title?: string },
): string {
  const xOf = (p: BudgetPoint) => (options.x === "minutes" ? p.minutes : p.tokens);
  const scored = sortPoints(points).filter((p) => p.pretrained !== null || p.scratch !== null);
  const series = seriesOf(scored);
  const groups = Map.groupBy(scored, (p) => series.get(p)!.join(", "));
  // The legend gives a series two lines (its dots) and one for each recipe part; the plot grows to hold it.
  const legendHeight = (runs: BudgetPoint[]) => 36 + 16 * (series.get(runs[0])!.length - 1);
  const legendTotal = [...groups.values()].reduce((sum, runs) => sum + legendHeight(runs), 0);
  const width = 780;
  const height = Math.max(440, 48 + 16 + legendTotal + 8);
  const box = { left: 60, right: width - 190, top: 48, bottom: height - 52 };
  const out = svgStart(width, height, options.title ?? "GLUE average against pretraining budget", 24);
  if (scored.length === 0) {
    out.push(
      `<text x="${width / 2}" y="${height / 2}" text-anchor="middle">no evaluated run</text>`,
      "</svg>",
    );
    return out.join("\n");
  }
  const scores = scored.flatMap((p) => [p.pretrained, p.scratch]).filter((v): v is number => v !== null);
  const xMax = Math.max(...scored.map(xOf));
  const xTicks = niceTicks(0, xMax);
  const [lowest, highest] = [Math.min(...scores) - 0.5, Math.max(...scores) + 0.5];
  const yTicks = niceTicks(Math.floor(lowest / 5) * 5, Math.ceil(highest / 5) * 5);
  // The ticks can stop short of the data (ticks 0, 2, 4 for 5.02 minutes; 46 to 54 for 45 to 55): the axes
  // reach past every point, with a margin that keeps its dot off the frame.
  const xEnd = Math.max(xTicks.at(-1)!, xMax * 1.05) || 1;
  const [yMin, yMax] = [Math.min(yTicks[0], lowest), Math.max(yTicks.at(-1)!, highest)];
  const x = (v: number) => box.left + (v / xEnd) * (box.right - box.left);
  const y = (v: number) => box.bottom - ((v - yMin) / (yMax - yMin || 1)) * (box.bottom - box.top);
  const f = (v: number) => v.toFixed(1);
  out.push(...gridAndFrame(box, xTicks.map(x), yTicks.map(y)));
  out.push(`<g text-anchor="middle" fill="#222">`);
  for (const t of xTicks) {
    out.push(
      `<text x="${f(x(t))}" y="${box.bottom + 18}">${options.x === "minutes" ? t : formatCount(t)}</text>`,
    );
  }
  out.push(
    `<text x="${(box.left + box.right) / 2}" y="${height - 14}">${
      options.x === "minutes" ? "pretraining budget used (minutes)" : "tokens seen in pretraining"
    }</text>`,
  );
  out.push(`</g><g text-anchor="end" fill="#222">`);
  for (const t of yTicks) out.push(`<text x="${box.left - 6}" y="${f(y(t) + 4)}">${t}</text>`);
  out.push(`</g>`);
  out.push(
    `<text transform="translate(16 ${(box.top + box.bottom) / 2}) rotate(-90)" text-anchor="middle">` +
      `GLUE average</text>`,
  );
  let ly = box.top + 16;
  [...groups.values()].forEach((runs, i) => {
    const color = COLORS[i % COLORS.length];
    const dash = i < COLORS.length ? "" : ` stroke-dasharray="6 3"`;
    const line = runs.filter((p) => p.pretrained !== null).map((p) =>
      `${f(x(xOf(p)))},${f(y(p.pretrained!))}`
    );
    out.push(
      `<polyline fill="none" stroke="${color}" stroke-width="1.5"${dash} points="${line.join(" ")}"/>`,
    );
    for (const p of runs) {
      if (p.pretrained !== null) {
        out.push(`<circle cx="${f(x(xOf(p)))}" cy="${f(y(p.pretrained))}" r="4" fill="${color}"/>`);
      }
      if (p.scratch !== null) {
        out.push(
          `<circle cx="${f(x(xOf(p)))}" cy="${f(y(p.scratch))}" r="4" fill="white" stroke="${color}"/>`,
        );
      }
    }
    // The preset beside the two dots, and what else sets the series apart on lines of their own below.
    const [preset, ...recipe] = series.get(runs[0])!;
    out.push(
      `<circle cx="${box.right + 18}" cy="${ly}" r="4" fill="${color}"/>` +
        `<text x="${box.right + 28}" y="${ly + 4}">${escapeXml(preset)}, pretrained</text>`,
      `<circle cx="${box.right + 18}" cy="${ly + 16}" r="4" fill="white" stroke="${color}"/>` +
        `<text x="${box.right + 28}" y="${ly + 20}">${escapeXml(preset)}, none</text>`,
      ...recipe.map((part, j) =>
        `<text x="${box.right + 28}" y="${ly + 36 + 16 * j}" fill="#555">${escapeXml(part)}</text>`
      ),
    );
    ly += legendHeight(runs);
  });
  out.push("</svg>");
  return out.join("\n");
}
