/**
 * GLUE tasks in the layout of GLUE's download script (`<glue-dir>/<Task>/train.tsv`, `dev.tsv`; MNLI has
 * `dev_matched.tsv` and `dev_mismatched.tsv`): the task table, discovery of the tasks present, and a
 * strict TSV parser whose errors name the file and line.
 *
 * Rows are split on tabs only, without quote handling, as GLUE's own readers do (MRPC's sentences begin
 * with unmatched quotes).
 *
 * @module
 */
import { describe } from "../data/errors.ts";
import type { MetricName } from "./metrics.ts";

/** One dev set of a task; MNLI has two, scored and averaged separately. */
export interface DevSet {
  /** Its name in reports and in the GLUE average, e.g. "MNLI-m". */
  name: string;
  file: string;
  /** The paper's dev-set figures (main metric, percent), where the paper gives them. */
  paper?: { crammedBert: number; bertBase: number };
}

/** A GLUE task: where its files are, which columns hold what, its labels and metrics. */
export interface GlueTask {
  /** The directory name under the GLUE root, e.g. "SST-2". */
  name: string;
  train: string;
  devSets: DevSet[];
  /** Rows of a file without a header have exactly this many columns; otherwise the header sets the count. */
  headerlessColumns?: number;
  /** Columns of sentence a, sentence b and the label; a negative index counts from the row's end. */
  columns: { a: number; b?: number; label: number };
  /** The label strings in index order; absent for regression (STS-B), whose label is a number. */
  labels?: string[];
  /** The metrics GLUE reports for it; the first is the one the GLUE average uses. */
  metrics: MetricName[];
}

/**
 * Paper figures: the Cramming paper's GLUE-dev table (Geiping & Goldstein, arXiv:2212.14034), rows
 * "Crammed BERT (A6000)" and "BERT-Base (Fully trained)", medians over 5 finetuning runs. Their means
 * are 78.6 and 80.9, the GLUE column of that table. The paper gives no WNLI figure.
 */
export const GLUE_TASKS: readonly GlueTask[] = [
  {
    name: "CoLA",
    train: "train.tsv",
    devSets: [{ name: "CoLA", file: "dev.tsv", paper: { crammedBert: 44.5, bertBase: 56.5 } }],
    headerlessColumns: 4,
    columns: { a: 3, label: 1 },
    labels: ["0", "1"],
    metrics: ["matthews"],
  },
  {
    name: "SST-2",
    train: "train.tsv",
    devSets: [{ name: "SST-2", file: "dev.tsv", paper: { crammedBert: 92.2, bertBase: 91.9 } }],
    columns: { a: 0, label: 1 },
    labels: ["0", "1"],
    metrics: ["accuracy"],
  },
  {
    name: "MRPC",
    train: "train.tsv",
    devSets: [{ name: "MRPC", file: "dev.tsv", paper: { crammedBert: 87.5, bertBase: 89.3 } }],
    columns: { a: 3, b: 4, label: 0 },
    labels: ["0", "1"],
    metrics: ["f1", "accuracy"],
  },
  {
    name: "STS-B",
    train: "train.tsv",
    devSets: [{ name: "STS-B", file: "dev.tsv", paper: { crammedBert: 84.6, bertBase: 86.7 } }],
    columns: { a: 7, b: 8, label: -1 },
    metrics: ["pearson", "spearman"],
  },
  {
    name: "QQP",
    train: "train.tsv",
    devSets: [{ name: "QQP", file: "dev.tsv", paper: { crammedBert: 87.3, bertBase: 87.7 } }],
    columns: { a: 3, b: 4, label: 5 },
    labels: ["0", "1"],
    metrics: ["f1", "accuracy"],
  },
  {
    name: "MNLI",
    train: "train.tsv",
    devSets: [
      { name: "MNLI-m", file: "dev_matched.tsv", paper: { crammedBert: 83.9, bertBase: 83.2 } },
      { name: "MNLI-mm", file: "dev_mismatched.tsv", paper: { crammedBert: 84.1, bertBase: 83.4 } },
    ],
    columns: { a: 8, b: 9, label: -1 },
    labels: ["contradiction", "entailment", "neutral"],
    metrics: ["accuracy"],
  },
  {
    name: "QNLI",
    train: "train.tsv",
    devSets: [{ name: "QNLI", file: "dev.tsv", paper: { crammedBert: 89.5, bertBase: 90.6 } }],
    columns: { a: 1, b: 2, label: 3 },
    labels: ["entailment", "not_entailment"],
    metrics: ["accuracy"],
  },
  {
    name: "RTE",
    train: "train.tsv",
    devSets: [{ name: "RTE", file: "dev.tsv", paper: { crammedBert: 53.8, bertBase: 59.2 } }],
    columns: { a: 1, b: 2, label: 3 },
    labels: ["entailment", "not_entailment"],
    metrics: ["accuracy"],
  },
  {
    name: "WNLI",
    train: "train.tsv",
    devSets: [{ name: "WNLI", file: "dev.tsv" }],
    columns: { a: 1, b: 2, label: 3 },
    labels: ["0", "1"],
    metrics: ["accuracy"],
  },
];

/** One example: one or two sentences and a label index (classification) or score (STS-B). */
export interface Example {
  a: string;
  b?: string;
  label: number;
}

/** A task found under the GLUE root with all of its files. */
export interface FoundTask {
  task: GlueTask;
  /** Paths of the training file and of each dev set's file, in `task.devSets` order. */
  trainPath: string;
  devPaths: string[];
}

/** A task left out, and why. */
export interface SkippedTask {
  name: string;
  reason: string;
}

/** Bad GLUE data or a bad GLUE root; the message is one line naming the path (and line). */
export class GlueDataError extends Error {
  override name = "GlueDataError";
}

/**
 * The tasks of {@linkcode GLUE_TASKS} under `root` with every file present, in table order; a task
 * missing its directory or any of its files is skipped with the reason. Throws if `root` is not a
 * directory.
 */
export function discoverTasks(root: string): { found: FoundTask[]; skipped: SkippedTask[] } {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(root);
  } catch (e) {
    throw new GlueDataError(`GLUE directory ${root}: ${describe(e)}`);
  }
  if (!info.isDirectory) throw new GlueDataError(`GLUE directory ${root}: not a directory`);
  const found: FoundTask[] = [];
  const skipped: SkippedTask[] = [];
  for (const task of GLUE_TASKS) {
    const dir = `${root}/${task.name}`;
    if (!exists(dir, "directory")) {
      skipped.push({ name: task.name, reason: `no directory ${task.name}/` });
      continue;
    }
    const files = [task.train, ...task.devSets.map((d) => d.file)];
    const missing = files.filter((file) => !exists(`${dir}/${file}`, "file"));
    if (missing.length > 0) {
      skipped.push({
        name: task.name,
        reason: `missing ${missing.map((f) => `${task.name}/${f}`).join(", ")}`,
      });
      continue;
    }
    found.push({
      task,
      trainPath: `${dir}/${task.train}`,
      devPaths: task.devSets.map((d) => `${dir}/${d.file}`),
    });
  }
  return { found, skipped };
}

function exists(path: string, kind: "file" | "directory"): boolean {
  try {
    const info = Deno.statSync(path);
    return kind === "file" ? info.isFile : info.isDirectory;
  } catch {
    return false;
  }
}

/**
 * Reads and parses one of `task`'s TSV files (see {@linkcode parseTsv}). Bytes that are not UTF-8 are
 * replaced by U+FFFD, and `onWarning` is told how many.
 */
export function readExamples(
  path: string,
  task: GlueTask,
  onWarning: (message: string) => void = () => {},
): Example[] {
  let bytes: Uint8Array;
  try {
    bytes = Deno.readFileSync(path);
  } catch (e) {
    throw new GlueDataError(`${path}: ${describe(e)}`);
  }
  const text = new TextDecoder().decode(bytes);
  const replaced = invalidUtf8Count(bytes, text);
  if (replaced > 0) {
    onWarning(`${path}: ${replaced} invalid UTF-8 sequence${replaced === 1 ? "" : "s"} replaced by U+FFFD`);
  }
  return parseTsv(text, task, path);
}

/** How many U+FFFD of `text`, decoded from `bytes`, stand for invalid UTF-8 rather than for themselves. */
function invalidUtf8Count(bytes: Uint8Array, text: string): number {
  const decoded = text.match(/\uFFFD/g)?.length ?? 0;
  if (decoded === 0) return 0;
  // U+FFFD encoded in the file is EF BF BD.
  let literal = 0;
  for (let i = 0; i + 2 < bytes.length; i++) {
    if (bytes[i] === 0xef && bytes[i + 1] === 0xbf && bytes[i + 2] === 0xbd) literal++;
  }
  return decoded - literal;
}

/**
 * Parses the text of one of `task`'s TSV files into examples. A leading UTF-8 byte order mark, `\r\n`
 * line ends and blank lines at the end are accepted; a file without examples, a row with the wrong number
 * of columns, an unknown label or a non-numeric score throws a {@linkcode GlueDataError} naming `path` (and
 * the 1-based line).
 */
export function parseTsv(text: string, task: GlueTask, path: string): Example[] {
  const lines = text.replace(/^\uFEFF/, "").split("\n");
  // Blank lines at the end (an editor's extra newline) are not rows.
  while (lines.length > 0 && lines.at(-1)!.trim() === "") lines.pop();
  let first = 0;
  let columns = task.headerlessColumns;
  if (columns === undefined) {
    if (lines.length === 0) throw new GlueDataError(`${path}: empty file, expected a header line`);
    columns = splitRow(lines[0]).length;
    first = 1;
  }
  const at = (index: number) => (index < 0 ? columns + index : index);
  const { a, b, label } = task.columns;
  const examples: Example[] = [];
  for (let i = first; i < lines.length; i++) {
    const fail = (message: string) => new GlueDataError(`${path}:${i + 1}: ${message}`);
    const row = splitRow(lines[i]);
    if (row.length !== columns) throw fail(`expected ${columns} tab-separated columns, got ${row.length}`);
    const raw = row[at(label)];
    let value: number;
    if (task.labels) {
      value = task.labels.indexOf(raw);
      if (value < 0) throw fail(`unknown label "${raw}", expected one of ${task.labels.join(", ")}`);
    } else {
      value = raw.trim() === "" ? NaN : Number(raw);
      if (!Number.isFinite(value)) throw fail(`score "${raw}" is not a number`);
    }
    const example: Example = { a: row[at(a)], label: value };
    if (b !== undefined) example.b = row[at(b)];
    examples.push(example);
  }
  if (examples.length === 0) {
    throw new GlueDataError(`${path}: no examples${first === 1 ? " after the header line" : ""}`);
  }
  return examples;
}

function splitRow(line: string): string[] {
  return (line.endsWith("\r") ? line.slice(0, -1) : line).split("\t");
}
