/**
 * The run folder:
 *
 *   <run>/checkpoints/step-000001234/model.safetensors      parameters, torch_peer.py names
 *   <run>/checkpoints/step-000001234/optimizer.safetensors  AdamW moments m.<name> and v.<name>
 *   <run>/checkpoints/step-000001234/state.json             step, data position, budget used, ...
 *   <run>/metrics.jsonl                                      one record every --log-every steps
 *   <run>/summary.json, <run>/loss.svg                       written at the end
 *
 * A checkpoint is written into `step-N.partial/` and renamed to `step-N/` once complete, so a crash
 * mid-write leaves a `.partial` folder that is ignored and the previous checkpoints intact. Its
 * state.json holds the size and SHA-256 of the two tensor files; loading checks them, so a
 * truncated or corrupt file is a one-line error naming it. There is no random-generator state to
 * save: all randomness after initialization is counter-based on the seed and the data position
 * (random.ts).
 *
 * The encoding and validation work on bytes in memory; the functions that touch the disk are thin.
 */
import { type ModelConfig, toPeerConfig, validateConfig } from "../model/config.ts";
import {
  checkpointTensors,
  decodeCheckpoint,
  encodeCheckpoint,
  parameterNames,
  paramsFromTensors,
} from "../model/checkpoint.ts";
import { decodeSafetensors, encodeSafetensors, type Tensor } from "../model/safetensors.ts";
import { writeFileAtomic } from "../fs.ts";
import type { DataPosition } from "./batches.ts";
import { optionsFromJson, type PretrainOptions } from "./options.ts";
import type { LossScaleState } from "../model/layers/cross_entropy.ts";
import type { StorageType } from "../gpu/buffers.ts";

/** A checkpoint, metrics or summary file that cannot be used: the message names the file. */
export class RunFileError extends Error {
  override name = "RunFileError";
}

/** Where training stands: everything but the tensors. */
export interface TrainState {
  /** Optimizer steps counted, skipped ones included. */
  step: number;
  /** AdamW's step count (its bias correction): every optimizer step, skipped ones included. */
  updates: number;
  /** Non-finite steps skipped in total. */
  skipped: number;
  /** Where the next micro-batch starts. */
  data: DataPosition;
  /** The tokenized corpus the data position refers to: a resume checks that it reads the same. */
  dataset: { sequences: number; vocabHash: string };
  /** Seconds of budget used, all processes together. */
  usedSeconds: number;
  /** Tokens trained on, all processes together. */
  tokensSeen: number;
  /** The model's shape. */
  config: ModelConfig;
  /** The run's options, with the adapter-dependent defaults resolved. */
  options: PretrainOptions;
  /** With `--precision f16`: the dynamic loss scale, so that a resumed run goes on with it. */
  lossScale?: LossScaleState;
}

/** The tensors of a checkpoint: flat vectors in the layout of src/model/params.ts. */
export interface Weights {
  /** The parameters. */
  params: Float32Array;
  /** AdamW first moments. */
  m: Float32Array;
  /** AdamW second moments. */
  v: Float32Array;
}

const MODEL_FILE = "model.safetensors";
const OPTIMIZER_FILE = "optimizer.safetensors";
export const STATE_FILE = "state.json";
const FORMAT = "cram-checkpoint/1";
const PARTIAL = ".partial";

/** A checkpoint folder's name: step-000001234. */
export function checkpointName(step: number): string {
  return `step-${String(step).padStart(9, "0")}`;
}

/** The step of a complete checkpoint folder's name, or undefined for any other name. */
export function checkpointStep(name: string): number | undefined {
  const match = /^step-(\d+)$/.exec(name);
  return match ? Number(match[1]) : undefined;
}

/** Folders to delete after a checkpoint: complete ones beyond the newest `keep` (0 = keep all), and leftovers of interrupted writes. */
export function checkpointsToRemove(names: readonly string[], keep: number): string[] {
  const complete = names.filter((n) => checkpointStep(n) !== undefined)
    .sort((a, b) => checkpointStep(b)! - checkpointStep(a)!);
  const partial = names.filter((n) => n.endsWith(PARTIAL));
  return [...(keep > 0 ? complete.slice(keep) : []), ...partial];
}

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

function prefixed(prefix: string, tensors: Record<string, Tensor>): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(tensors).map(([name, t]) => [prefix + name, t]));
}

/** The three files of a checkpoint, by name. */
export async function encodeCheckpointFiles(
  state: TrainState,
  weights: Weights,
): Promise<Map<string, Uint8Array>> {
  const { config } = state;
  // The model file records a digest of the state, so that an edit of state.json (its step, its options) is
  // caught when the checkpoint is read; state.json in turn records the model file's hash.
  const model = encodeCheckpoint(config, weights.params, {
    [STATE_DIGEST]: await stateDigest(state),
  }) as Uint8Array<ArrayBuffer>;
  const optimizer = encodeSafetensors({
    ...prefixed("m.", checkpointTensors(config, weights.m)),
    ...prefixed("v.", checkpointTensors(config, weights.v)),
  }) as Uint8Array<ArrayBuffer>;
  const files = {
    [MODEL_FILE]: { bytes: model.length, sha256: await sha256(model) },
    [OPTIMIZER_FILE]: { bytes: optimizer.length, sha256: await sha256(optimizer) },
  };
  const json = { format: FORMAT, ...state, files };
  return new Map([
    [MODEL_FILE, model],
    [OPTIMIZER_FILE, optimizer],
    [STATE_FILE, new TextEncoder().encode(JSON.stringify(json, null, 2) + "\n")],
  ]);
}

/** The model file's metadata key of {@linkcode stateDigest}. */
const STATE_DIGEST = "state_sha256";

/**
 * SHA-256 of `state` as state.json holds it: through the file's own decoding (which keeps only the fields
 * of a TrainState and normalizes the options), written as JSON with its keys sorted at every level. A state
 * and its decoded copy have the same digest.
 */
async function stateDigest(state: TrainState): Promise<string> {
  const placeholder = { bytes: 0, sha256: "0".repeat(64) };
  const text = JSON.stringify({
    format: FORMAT,
    ...state,
    files: { [MODEL_FILE]: placeholder, [OPTIMIZER_FILE]: placeholder },
  });
  const { files: _, ...decoded } = decodeState(new TextEncoder().encode(text), STATE_FILE);
  return await sortedDigest(decoded);
}

async function sortedDigest(state: TrainState): Promise<string> {
  const sorted = (value: unknown): unknown =>
    Array.isArray(value)
      ? value.map(sorted)
      : typeof value === "object" && value !== null
      ? Object.fromEntries(
        Object.keys(value).sort().map((key) => [key, sorted((value as Record<string, unknown>)[key])]),
      )
      : value;
  return await sha256(new TextEncoder().encode(JSON.stringify(sorted(state))) as Uint8Array<ArrayBuffer>);
}

const isCount = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
const isAmount = (v: unknown) => typeof v === "number" && Number.isFinite(v) && v >= 0;

/** Parses and checks state.json; errors are one line starting with `file`. */
export function decodeState(
  bytes: Uint8Array,
  file: string,
): TrainState & { files: Record<string, { bytes: number; sha256: string }> } {
  const fail = (message: string): never => {
    throw new RunFileError(`${file}: ${message}`);
  };
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (e) {
    fail(`not valid JSON (truncated or corrupt?): ${(e as Error).message}`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) fail("expected a JSON object");
  if (json.format !== FORMAT) fail(`format must be "${FORMAT}", got ${JSON.stringify(json.format)}`);
  for (const field of ["step", "updates", "skipped", "tokensSeen"]) {
    if (!isCount(json[field])) {
      fail(`${field} must be a non-negative integer, got ${JSON.stringify(json[field])}`);
    }
  }
  if (!isAmount(json.usedSeconds)) {
    fail(`usedSeconds must be a non-negative number, got ${JSON.stringify(json.usedSeconds)}`);
  }
  const data = json.data as Record<string, unknown> | undefined;
  if (typeof data !== "object" || data === null || !isCount(data.epoch) || !isCount(data.index)) {
    fail(`data must be {"epoch": n, "index": n}, got ${JSON.stringify(json.data)}`);
  }
  const dataset = json.dataset as Record<string, unknown> | undefined;
  if (
    typeof dataset !== "object" || dataset === null || !isCount(dataset.sequences) ||
    typeof dataset.vocabHash !== "string" || !/^[0-9a-f]{16}$/.test(dataset.vocabHash)
  ) {
    fail(
      `dataset must be {"sequences": n, "vocabHash": "<16 hex digits>"}, got ${JSON.stringify(json.dataset)}`,
    );
  }
  const files = json.files as Record<string, { bytes?: unknown; sha256?: unknown }> | undefined;
  for (const name of [MODEL_FILE, OPTIMIZER_FILE]) {
    const entry = files?.[name];
    if (
      !entry || !isCount(entry.bytes) || typeof entry.sha256 !== "string" ||
      !/^[0-9a-f]{64}$/.test(entry.sha256)
    ) {
      fail(`files.${name} must be {"bytes": n, "sha256": "<64 hex digits>"}`);
    }
  }
  const lossScale = json.lossScale as Record<string, unknown> | undefined;
  if (
    lossScale !== undefined &&
    (typeof lossScale !== "object" || lossScale === null || !isAmount(lossScale.scale) ||
      !(lossScale.scale as number > 0) || !isCount(lossScale.goodSteps))
  ) {
    fail(`lossScale must be {"scale": x > 0, "goodSteps": n}, got ${JSON.stringify(json.lossScale)}`);
  }
  let config: ModelConfig;
  try {
    config = validateConfig(json.config as ModelConfig, "config");
  } catch (e) {
    fail((e as Error).message);
  }
  return {
    step: json.step as number,
    updates: json.updates as number,
    skipped: json.skipped as number,
    data: { epoch: data!.epoch as number, index: data!.index as number },
    dataset: { sequences: dataset!.sequences as number, vocabHash: dataset!.vocabHash as string },
    usedSeconds: json.usedSeconds as number,
    tokensSeen: json.tokensSeen as number,
    config: config!,
    options: optionsFromJson(json.options, `${file}: options`),
    ...(lossScale && {
      lossScale: { scale: lossScale.scale as number, goodSteps: lossScale.goodSteps as number },
    }),
    files: files as Record<string, { bytes: number; sha256: string }>,
  };
}

/** A checkpoint's state, and a reader of its other files that checks each against the state's size and hash. */
async function openCheckpointFiles(read: (name: string) => Promise<Uint8Array>, dir: string) {
  const stateFile = `${dir}/${STATE_FILE}`;
  const { files, ...state } = decodeState(await read(STATE_FILE), stateFile);
  const verified = async (name: string) => {
    const file = `${dir}/${name}`;
    const bytes = await read(name) as Uint8Array<ArrayBuffer>;
    const expected = files[name];
    if (bytes.length !== expected.bytes) {
      throw new RunFileError(
        `${file}: ${bytes.length} bytes, ${STATE_FILE} says ${expected.bytes} (truncated?)`,
      );
    }
    if (await sha256(bytes) !== expected.sha256) {
      throw new RunFileError(`${file}: SHA-256 does not match ${STATE_FILE} (file corrupt)`);
    }
    return { bytes, file };
  };
  const model = await verified(MODEL_FILE);
  const checkpoint = decodeCheckpoint(model.bytes, { file: model.file });
  if (JSON.stringify(toPeerConfig(checkpoint.config)) !== JSON.stringify(toPeerConfig(state.config))) {
    throw new RunFileError(`${model.file}: its config differs from the one in ${STATE_FILE}`);
  }
  // Checkpoints written before the digest existed have none to compare.
  const digest = checkpoint.metadata[STATE_DIGEST];
  if (digest !== undefined && digest !== await stateDigest(state)) {
    throw new RunFileError(
      `${stateFile}: edited since the checkpoint was written (${MODEL_FILE} records a digest of it); ` +
        `restore it, or resume from another checkpoint`,
    );
  }
  return { state, params: checkpoint.params, verified };
}

/**
 * Checks and decodes a checkpoint's state and model, leaving out its optimizer moments (finetuning starts
 * from the weights alone). `read(name)` gives a file's bytes; `dir` names the folder in errors.
 */
export async function decodeModelFiles(
  read: (name: string) => Promise<Uint8Array>,
  dir: string,
): Promise<{ state: TrainState; params: Float32Array }> {
  const { state, params } = await openCheckpointFiles(read, dir);
  return { state, params };
}

/**
 * Checks and decodes a checkpoint's files. `read(name)` gives a file's bytes; `dir` names the
 * folder in errors.
 */
export async function decodeCheckpointFiles(
  read: (name: string) => Promise<Uint8Array>,
  dir: string,
): Promise<{ state: TrainState; weights: Weights }> {
  const { state, params, verified } = await openCheckpointFiles(read, dir);
  const optimizer = await verified(OPTIMIZER_FILE);
  const names = parameterNames(state.config);
  const { tensors } = decodeSafetensors(optimizer.bytes, {
    file: optimizer.file,
    accept: (name) => /^[mv]\./.test(name) && names.has(name.slice(2)),
  });
  const moment = (prefix: string) => {
    const named = Object.fromEntries(
      Object.entries(tensors).filter(([name]) => name.startsWith(prefix)).map((
        [name, t],
      ) => [name.slice(prefix.length), t]),
    );
    return paramsFromTensors(state.config, named, { file: `${optimizer.file} (${prefix}*)` });
  };
  return { state, weights: { params, m: moment("m."), v: moment("v.") } };
}

async function listNames(dir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) if (entry.isDirectory) names.push(entry.name);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      throw new RunFileError(`cannot read ${dir}: ${(e as Error).message}`);
    }
  }
  return names;
}

/** The newest complete checkpoint folder of a run, or undefined if it has none. */
export async function newestCheckpoint(runDir: string): Promise<string | undefined> {
  const steps = (await listNames(`${runDir}/checkpoints`)).map(checkpointStep).filter((s) => s !== undefined);
  return steps.length === 0 ? undefined : `${runDir}/checkpoints/${checkpointName(Math.max(...steps))}`;
}

/**
 * Writes a checkpoint of the run in `runDir` and deletes the ones beyond the newest `keep` (0 =
 * keep all). Returns the checkpoint's folder.
 */
export async function writeCheckpoint(
  runDir: string,
  state: TrainState,
  weights: Weights,
  keep: number,
): Promise<string> {
  const root = `${runDir}/checkpoints`;
  const dir = `${root}/${checkpointName(state.step)}`;
  const partial = dir + PARTIAL;
  const files = await encodeCheckpointFiles(state, weights);
  try {
    await Deno.remove(partial, { recursive: true }).catch(() => {});
    await Deno.mkdir(partial, { recursive: true });
    for (const [name, bytes] of files) await Deno.writeFile(`${partial}/${name}`, bytes);
    // A checkpoint of the same step (Ctrl-C right after a periodic one) is replaced.
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.rename(partial, dir);
  } catch (e) {
    throw new RunFileError(`cannot write checkpoint ${dir}: ${(e as Error).message}`);
  }
  for (const name of checkpointsToRemove(await listNames(root), keep)) {
    await Deno.remove(`${root}/${name}`, { recursive: true });
  }
  return dir;
}

/** A checkpoint read back, with the folders it came from. */
export interface LoadedCheckpoint {
  /** Where training stood. */
  state: TrainState;
  /** The parameters and AdamW moments. */
  weights: Weights;
  /** The checkpoint folder. */
  dir: string;
  /** The run folder that holds it. */
  runDir: string;
}

/**
 * Reads the checkpoint `--resume` names: a run folder (its newest checkpoint) or a checkpoint
 * folder. Continuing a run from a checkpoint that is not its newest would mix two histories in one
 * folder, so that needs `branch` (the caller writes to another folder).
 */
export async function readCheckpoint(path: string, options: { branch: boolean }): Promise<LoadedCheckpoint> {
  const { dir, runDir, newest } = await locateCheckpoint(path, "--resume");
  const stepOf = (folder: string) => checkpointStep(folder.slice(folder.lastIndexOf("/") + 1)) ?? -1;
  if (newest !== undefined && stepOf(newest) > stepOf(dir) && !options.branch) {
    throw new RunFileError(
      `--resume ${path}: ${runDir} has a newer checkpoint, ${newest}; ` +
        `give --out <new folder> to continue from this one there`,
    );
  }
  return { ...(await readCheckpointFolder(dir)), dir, runDir };
}

/** Where a checkpoint path leads: the checkpoint folder, its run folder and the run's newest checkpoint. */
export interface CheckpointLocation {
  dir: string;
  runDir: string;
  newest?: string;
}

/**
 * Resolves `path`, a run folder (its newest checkpoint) or a checkpoint folder; the error when there is
 * no checkpoint names the command-line `option` that gave the path.
 */
export async function locateCheckpoint(path: string, option: string): Promise<CheckpointLocation> {
  const trimmed = path.replace(/\/+$/, "") || "/";
  const isCheckpoint = await Deno.stat(`${trimmed}/${STATE_FILE}`).then(() => true, () => false);
  const runDir = isCheckpoint ? trimmed.split("/").slice(0, -2).join("/") || "." : trimmed;
  const newest = await newestCheckpoint(runDir);
  const dir = isCheckpoint ? trimmed : newest;
  if (!dir) {
    throw new RunFileError(
      `${option} ${path}: no checkpoint there (expected ${trimmed}/checkpoints/step-*/${STATE_FILE})`,
    );
  }
  return { dir, runDir, newest };
}

/** Reads and verifies the checkpoint in folder `dir`; a failure is a one-line error naming the file. */
export async function readCheckpointFolder(dir: string): Promise<{ state: TrainState; weights: Weights }> {
  return await decodeCheckpointFiles(folderReader(dir), dir);
}

/** The state and parameters of the checkpoint in `dir`, without its optimizer file (which may be absent). */
export async function readModelFolder(dir: string): Promise<{ state: TrainState; params: Float32Array }> {
  return await decodeModelFiles(folderReader(dir), dir);
}

function folderReader(dir: string): (name: string) => Promise<Uint8Array> {
  return async (name) => {
    try {
      return await Deno.readFile(`${dir}/${name}`);
    } catch (e) {
      throw new RunFileError(`cannot read ${dir}/${name}: ${(e as Error).message}`);
    }
  };
}

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

/** summary.json: what a finished (or stopped) run achieved. */
export interface RunSummary {
  preset: string;
  config: ModelConfig;
  /** How activations and the products' weight copy were stored (`--precision`). */
  precision: StorageType;
  /** Why the run ended. */
  stopped: "budget" | "interrupted" | "non-finite";
  steps: number;
  skipped: number;
  tokensSeen: number;
  /** Epochs begun: 1 while the first pass over the data is not complete. */
  epochs: number;
  /** Loss of the last metrics record. */
  finalLoss: number;
  /** Tokens per second of this process's training (a resumed run's earlier part not counted). */
  tokensPerSecond: number;
  usedSeconds: number;
  budget: string;
  /** Peak bytes of GPU buffers allocated by the run (WebGPU reports no device-wide figure). */
  peakMemoryBytes: number;
}

/** Writes `<runDir>/summary.json` atomically. */
export async function writeSummary(runDir: string, summary: RunSummary): Promise<void> {
  await writeFileAtomic(
    `${runDir}/summary.json`,
    new TextEncoder().encode(JSON.stringify(summary, null, 2) + "\n"),
  );
}
