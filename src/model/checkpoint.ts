/**
 * Model checkpoints and parity batches as safetensors files that torch_peer.py reads. A checkpoint holds
 * every parameter as float32 under its peer name and shape, with `__metadata__.config` the peer's JSON
 * config; a batch holds `input_ids` and `labels` as int32 [B, T], labels -100 where nothing is predicted.
 *
 * Encoding and decoding work on bytes in memory; `save*` and `load*` are the thin file layer.
 *
 * @module
 */
import { fromPeerConfig, type ModelConfig, toPeerConfig } from "./config.ts";
import { paramLayout } from "./params.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  readSafetensorsHeader,
  readTensors,
  type Tensor,
} from "./safetensors.ts";
import { writeFileAtomic } from "../fs.ts";

/** The label of a position with no prediction, as PyTorch's cross_entropy ignore_index. */
export const IGNORE_LABEL = -100;

/** The flat parameter vector as named tensors in checkpoint order (views into `params`, without the padding). */
export function checkpointTensors(config: ModelConfig, params: Float32Array): Record<string, Tensor> {
  const layout = paramLayout(config);
  if (params.length !== layout.totalSize) {
    throw new RangeError(
      `parameters: expected ${layout.totalSize} elements for this config, got ${params.length}`,
    );
  }
  const tensors: Record<string, Tensor> = {};
  for (const t of layout.tensors) {
    tensors[t.name] = { dtype: "F32", shape: t.shape, data: params.subarray(t.offset, t.offset + t.size) };
  }
  return tensors;
}

/**
 * The flat parameter vector from named tensors, which must be exactly the config's parameters with their
 * shapes and dtype F32; errors start with `file` and name the tensor.
 */
export function paramsFromTensors(
  config: ModelConfig,
  tensors: Record<string, Tensor>,
  options: { file: string },
): Float32Array {
  const layout = paramLayout(config);
  const expected = new Set(layout.tensors.map((t) => t.name));
  const unexpected = Object.keys(tensors).filter((name) => !expected.has(name));
  if (unexpected.length > 0) {
    throw new RangeError(`${options.file}: unexpected tensor ${unexpected[0]} for this config`);
  }
  const params = new Float32Array(layout.totalSize);
  for (const t of layout.tensors) {
    const tensor = tensors[t.name];
    if (!tensor) throw new RangeError(`${options.file}: tensor ${t.name} is missing`);
    if (tensor.dtype !== "F32") {
      throw new RangeError(`${options.file}: tensor ${t.name} must be F32, got ${tensor.dtype}`);
    }
    if (tensor.shape.join() !== t.shape.join()) {
      throw new RangeError(
        `${options.file}: tensor ${t.name} has shape [${tensor.shape}], expected [${t.shape}]`,
      );
    }
    params.set(tensor.data, t.offset);
  }
  return params;
}

/** A checkpoint file's bytes; `metadata` adds string entries next to `config`. */
export function encodeCheckpoint(
  config: ModelConfig,
  params: Float32Array,
  metadata: Record<string, string> = {},
): Uint8Array {
  return encodeSafetensors(checkpointTensors(config, params), {
    ...metadata,
    config: JSON.stringify(toPeerConfig(config)),
  });
}

/** A decoded checkpoint: its config, flat parameters and all metadata entries. */
export interface Checkpoint {
  /** The model's shape, from `__metadata__.config`. */
  config: ModelConfig;
  /** The parameters, flat, in the config's {@linkcode paramLayout}. */
  params: Float32Array;
  /** Every `__metadata__` entry, `config` included. */
  metadata: Record<string, string>;
}

/**
 * Decodes a checkpoint file's bytes; errors are one line starting with `file`. The config is read and
 * bounded, and every tensor name checked against it, before anything is allocated for the tensors.
 */
export function decodeCheckpoint(bytes: Uint8Array, options: { file: string }): Checkpoint {
  const header = readSafetensorsHeader(bytes, options);
  const { metadata } = header;
  if (metadata.config === undefined) throw new RangeError(`${options.file}: __metadata__.config is missing`);
  const config = fromPeerConfig(metadata.config, options.file);
  const names = parameterNames(config);
  const tensors = readTensors(bytes, header, { ...options, accept: (name) => names.has(name) });
  return { config, params: paramsFromTensors(config, tensors, options), metadata };
}

/** The tensor names of `config`'s parameters. */
export function parameterNames(config: ModelConfig): Set<string> {
  return new Set(paramLayout(config).tensors.map((t) => t.name));
}

/** Token ids and MLM labels of B sequences of T tokens, row-major [B, T]. */
export interface Batch {
  batch: number;
  seq: number;
  ids: Int32Array;
  /** The target token id, or {@linkcode IGNORE_LABEL} where nothing is predicted. */
  labels: Int32Array;
}

/** A batch file's bytes: `input_ids` and `labels`, int32 [B, T]. */
export function encodeBatch({ batch, seq, ids, labels }: Batch): Uint8Array {
  return encodeSafetensors({
    input_ids: { dtype: "I32", shape: [batch, seq], data: ids },
    labels: { dtype: "I32", shape: [batch, seq], data: labels },
  });
}

/** Decodes a batch file's bytes; errors are one line starting with `file`. */
export function decodeBatch(bytes: Uint8Array, options: { file: string }): Batch {
  const accept = (name: string) => name === "input_ids" || name === "labels";
  const { tensors } = decodeSafetensors(bytes, { ...options, accept });
  const ids = tensors.input_ids;
  const labels = tensors.labels;
  if (!ids || !labels) throw new RangeError(`${options.file}: a batch needs tensors input_ids and labels`);
  if (ids.dtype !== "I32" || labels.dtype !== "I32") {
    throw new RangeError(`${options.file}: input_ids and labels must be I32`);
  }
  if (ids.shape.length !== 2 || ids.shape.join() !== labels.shape.join()) {
    throw new RangeError(
      `${options.file}: input_ids [${ids.shape}] and labels [${labels.shape}] must both be [batch, seq]`,
    );
  }
  return { batch: ids.shape[0], seq: ids.shape[1], ids: ids.data, labels: labels.data };
}

/** Writes a checkpoint file atomically. */
export async function saveCheckpoint(
  path: string,
  config: ModelConfig,
  params: Float32Array,
  metadata: Record<string, string> = {},
): Promise<void> {
  await writeFileAtomic(path, encodeCheckpoint(config, params, metadata));
}

/** Reads a checkpoint file. */
export async function loadCheckpoint(path: string): Promise<Checkpoint> {
  return decodeCheckpoint(await readFile(path), { file: path });
}

/** Writes a batch file atomically. */
export async function saveBatch(path: string, batch: Batch): Promise<void> {
  await writeFileAtomic(path, encodeBatch(batch));
}

/** Reads a batch file. */
export async function loadBatch(path: string): Promise<Batch> {
  return decodeBatch(await readFile(path), { file: path });
}

async function readFile(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as Error).message}`);
  }
}
