/**
 * Checkpoints of a run: `<run>/checkpoints/step-N/` with model.safetensors, optimizer.safetensors and
 * state.json (see run_dir.ts). Encoding and decoding the files in memory, writing one atomically with
 * retention, finding the newest, and reading one back verified against state.json's sizes and hashes.
 *
 * @module
 */
import { toPeerConfig } from "../model/config.ts";
import {
  checkpointTensors,
  decodeCheckpoint,
  encodeCheckpoint,
  parameterNames,
  paramsFromTensors,
} from "../model/checkpoint.ts";
import { decodeSafetensors, encodeSafetensors, type Tensor } from "../model/safetensors.ts";
import {
  decodeState,
  FORMAT,
  MODEL_FILE,
  OPTIMIZER_FILE,
  sha256,
  STATE_DIGEST,
  STATE_FILE,
  stateDigest,
  type TrainState,
  type Weights,
} from "./checkpoint_state.ts";
import { RunFileError } from "./run_dir.ts";

/** The suffix of a checkpoint folder being written. */
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
