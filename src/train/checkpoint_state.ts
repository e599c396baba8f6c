/**
 * A checkpoint's state.json: where training stands (everything but the tensors), decoded and checked
 * field by field, and the digest of it that the model file records.
 *
 * @module
 */
import { type ModelConfig, validateConfig } from "../model/config.ts";
import type { DataPosition } from "./batches.ts";
import { optionsFromJson, type PretrainOptions } from "./options.ts";
import type { LossScaleState } from "../model/loss_scale.ts";
import { RunFileError } from "./run_dir.ts";

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

/** The files of a checkpoint folder. */
export const MODEL_FILE = "model.safetensors";
export const OPTIMIZER_FILE = "optimizer.safetensors";
export const STATE_FILE = "state.json";
/** state.json's format field. */
export const FORMAT = "cram-checkpoint/1";

/** The SHA-256 of `bytes` in hex. */
export async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The model file's metadata key of {@linkcode stateDigest}. */
export const STATE_DIGEST = "state_sha256";

/**
 * SHA-256 of `state` as state.json holds it: through the file's own decoding (which keeps only the fields
 * of a TrainState and normalizes the options), written as JSON with its keys sorted at every level. A state
 * and its decoded copy have the same digest.
 */
export async function stateDigest(state: TrainState): Promise<string> {
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
