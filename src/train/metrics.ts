/**
 * A run's metrics.jsonl: one record every --log-every steps, appended as training goes, read back for the
 * loss plot and trimmed to the checkpoint's step on resume.
 *
 * @module
 */
import { writeFileAtomic } from "../fs.ts";
import { RunFileError } from "./run_dir.ts";

/** One line of metrics.jsonl. */
export interface MetricRecord {
  /** Optimizer steps counted, skipped ones included. */
  step: number;
  /** Budget seconds used. */
  seconds: number;
  /** Tokens seen (sequences x sequence length). */
  tokens: number;
  /** Mean MLM loss of the steps since the previous record; NaN when it was not finite (null in the file). */
  loss: number;
  /** Learning rate of the latest step. */
  lr: number;
  /** Sequences in the latest optimizer step. */
  batch: number;
  /** Training throughput since the previous record. */
  tokensPerSecond: number;
  /** The epoch of the latest step's data. */
  epoch: number;
  /** Non-finite steps skipped so far. */
  skipped: number;
}

const METRIC_FIELDS = [
  "step",
  "seconds",
  "tokens",
  "loss",
  "lr",
  "batch",
  "tokensPerSecond",
  "epoch",
  "skipped",
] as const;

/** A record as one line of JSON. */
export function encodeMetric(record: MetricRecord): string {
  return JSON.stringify(Object.fromEntries(METRIC_FIELDS.map((field) => [field, record[field]]))) + "\n";
}

/** Parses metrics.jsonl; errors name the file and line. A last line cut off by a crash is dropped. */
export function parseMetrics(text: string, file: string): MetricRecord[] {
  const lines = text.split("\n");
  const records: MetricRecord[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    const last = i === lines.length - 1;
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line);
    } catch {
      if (last) return;
      throw new RunFileError(`${file}:${i + 1}: not valid JSON`);
    }
    // A diverged step's loss is written as null (JSON has no NaN): read back as NaN.
    if (record.loss === null) record.loss = NaN;
    for (const field of METRIC_FIELDS) {
      const value = record[field];
      const ok = typeof value === "number" && (Number.isFinite(value) || (field === "loss" && isNaN(value)));
      if (!ok) {
        throw new RunFileError(
          `${file}:${i + 1}: ${field} must be a finite number${field === "loss" ? " or null" : ""}, got ${
            JSON.stringify(value)
          }`,
        );
      }
    }
    records.push(record as unknown as MetricRecord);
  });
  return records;
}

/** Appends records to a run's metrics.jsonl, one synchronous write each (a few per minute). */
export class MetricsLog {
  readonly path: string;
  readonly #file: Deno.FsFile;

  private constructor(path: string, file: Deno.FsFile) {
    this.path = path;
    this.#file = file;
  }

  /**
   * Opens `<runDir>/metrics.jsonl`. A resumed run passes where it resumed from: the log then holds
   * that run's records up to the checkpoint's step (rewritten atomically), so records of steps
   * that are about to be redone, or of another run folder, are not repeated.
   */
  static async open(runDir: string, resumed?: { runDir: string; step: number }): Promise<MetricsLog> {
    const path = `${runDir}/metrics.jsonl`;
    await Deno.mkdir(runDir, { recursive: true });
    if (resumed) {
      const source = `${resumed.runDir}/metrics.jsonl`;
      const text = await Deno.readTextFile(source).catch(() => "");
      const kept = parseMetrics(text, source).filter((r) => r.step <= resumed.step);
      await writeFileAtomic(path, new TextEncoder().encode(kept.map(encodeMetric).join("")));
    }
    const file = await Deno.open(path, { append: true, create: true });
    return new MetricsLog(path, file);
  }

  append(record: MetricRecord): void {
    const bytes = new TextEncoder().encode(encodeMetric(record));
    for (let written = 0; written < bytes.length;) written += this.#file.writeSync(bytes.subarray(written));
  }

  close(): void {
    this.#file.close();
  }
}
