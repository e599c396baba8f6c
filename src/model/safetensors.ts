/**
 * The safetensors format, in memory: an 8-byte little-endian header length, a JSON header mapping each
 * tensor name to its dtype, shape and byte range in the data that follows (plus an optional `__metadata__`
 * string map), padded with spaces to a multiple of 8 bytes, then the raw little-endian data.
 *
 * @module
 */

/** The element types this project stores: f32 parameters and i32 token ids and labels. */
export type Dtype = "F32" | "I32";

/** One named tensor. */
export type Tensor =
  | { dtype: "F32"; shape: number[]; data: Float32Array }
  | { dtype: "I32"; shape: number[]; data: Int32Array };

/** Encodes `tensors` (in insertion order) and `metadata` as a safetensors file. */
export function encodeSafetensors(
  tensors: Record<string, Tensor>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let dataSize = 0;
  for (const [name, tensor] of Object.entries(tensors)) {
    const elements = tensor.shape.reduce((a, b) => a * b, 1);
    if (elements !== tensor.data.length) {
      throw new RangeError(
        `tensor ${name}: shape [${tensor.shape}] needs ${elements} elements, got ${tensor.data.length}`,
      );
    }
    header[name] = {
      dtype: tensor.dtype,
      shape: tensor.shape,
      data_offsets: [dataSize, dataSize + tensor.data.byteLength],
    };
    dataSize += tensor.data.byteLength;
  }
  let headerBytes = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(headerBytes.length / 8) * 8;
  if (padded !== headerBytes.length) {
    const spaces = new Uint8Array(padded).fill(0x20);
    spaces.set(headerBytes);
    headerBytes = spaces;
  }
  const out = new Uint8Array(8 + headerBytes.length + dataSize);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let position = 8 + headerBytes.length;
  for (const tensor of Object.values(tensors)) {
    out.set(new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength), position);
    position += tensor.data.byteLength;
  }
  return out;
}

/** The tensors and metadata of a safetensors file. */
export interface Safetensors {
  tensors: Record<string, Tensor>;
  metadata: Record<string, string>;
}

/** One tensor's entry in a safetensors header: its dtype, shape and byte range in the data. */
export interface TensorEntry {
  dtype: Dtype;
  shape: number[];
  begin: number;
  end: number;
}

/** A safetensors header, checked: its tensors' entries in file order, its metadata, and where data starts. */
export interface SafetensorsHeader {
  entries: Map<string, TensorEntry>;
  metadata: Record<string, string>;
  dataStart: number;
}

/**
 * Reads and checks a safetensors file's header, copying no tensor. Errors are one line starting with
 * `file`: truncation, a header that is not JSON, an unknown dtype, a bad shape, data offsets out of range,
 * not matching the shape, or overlapping another tensor's (which would let a small file decode to many
 * copies of the same bytes).
 */
export function readSafetensorsHeader(bytes: Uint8Array, options: { file: string }): SafetensorsHeader {
  const { file } = options;
  const fail = (message: string): never => {
    throw new RangeError(`${file}: ${message}`);
  };
  if (bytes.length < 8) fail(`truncated: ${bytes.length} bytes, shorter than the 8-byte header length`);
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLength > BigInt(bytes.length - 8)) {
    fail(`truncated: header length ${headerLength} exceeds the ${bytes.length - 8} bytes after it`);
  }
  const dataStart = 8 + Number(headerLength);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, dataStart)));
  } catch (e) {
    fail(`header is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    fail("header must be a JSON object");
  }
  const dataSize = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries = new Map<string, TensorEntry>();
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
        fail("__metadata__ must be an object");
      }
      for (const [key, value] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof value !== "string") fail(`__metadata__.${key} must be a string`);
        metadata[key] = value as string;
      }
      continue;
    }
    const { dtype, shape, data_offsets: offsets } = (entry ?? {}) as Record<string, unknown>;
    if (dtype !== "F32" && dtype !== "I32") {
      fail(`tensor ${name}: unsupported dtype ${JSON.stringify(dtype)}`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`tensor ${name}: shape must be a list of non-negative integers`);
    }
    if (
      !Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(Number.isSafeInteger) ||
      offsets[0] < 0 || offsets[0] > offsets[1]
    ) {
      fail(`tensor ${name}: data_offsets must be [begin, end] with 0 <= begin <= end`);
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataSize) fail(`tensor ${name}: data_offsets end ${end} is past the ${dataSize} data bytes`);
    const elements = (shape as number[]).reduce((a, b) => a * b, 1);
    if (end - begin !== elements * 4) {
      fail(
        `tensor ${name}: shape [${shape}] of ${dtype} needs ${elements * 4} bytes, data_offsets give ${
          end - begin
        }`,
      );
    }
    entries.set(name, { dtype: dtype as Dtype, shape: shape as number[], begin, end });
  }
  // No two tensors share a byte: the tensors together are at most the file's size.
  const ranges = [...entries].filter(([, e]) => e.end > e.begin).sort(([, a], [, b]) => a.begin - b.begin);
  for (let i = 1; i < ranges.length; i++) {
    const [[before, a], [name, b]] = [ranges[i - 1], ranges[i]];
    if (b.begin < a.end) {
      fail(
        `tensor ${name}: data_offsets [${b.begin}, ${b.end}] overlap tensor ${before}'s [${a.begin}, ${a.end}]`,
      );
    }
  }
  return { entries, metadata, dataStart };
}

/**
 * Decodes a safetensors file, copying each tensor into its own typed array. Errors are those of
 * {@linkcode readSafetensorsHeader}, and, when `accept` is given, a tensor whose name it refuses: checked
 * for every name before any tensor is copied.
 */
export function decodeSafetensors(
  bytes: Uint8Array,
  options: { file: string; accept?: (name: string) => boolean },
): Safetensors {
  const header = readSafetensorsHeader(bytes, options);
  return { tensors: readTensors(bytes, header, options), metadata: header.metadata };
}

/**
 * The tensors of a file whose `header` {@linkcode readSafetensorsHeader} has read, each copied into its own
 * typed array; when `accept` is given, every name is checked with it before any tensor is copied.
 */
export function readTensors(
  bytes: Uint8Array,
  header: SafetensorsHeader,
  options: { file: string; accept?: (name: string) => boolean },
): Record<string, Tensor> {
  const { entries, dataStart } = header;
  if (options.accept) {
    for (const name of entries.keys()) {
      if (!options.accept(name)) throw new RangeError(`${options.file}: unexpected tensor ${name}`);
    }
  }
  const tensors: Record<string, Tensor> = {};
  for (const [name, { dtype, shape, begin, end }] of entries) {
    // A copy starting at offset 0 of its own buffer, so the typed array is aligned whatever the offsets.
    const raw = bytes.slice(dataStart + begin, dataStart + end).buffer;
    tensors[name] = dtype === "F32"
      ? { dtype, shape, data: new Float32Array(raw) }
      : { dtype: "I32", shape, data: new Int32Array(raw) };
  }
  return tensors;
}
