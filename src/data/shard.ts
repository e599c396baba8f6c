/**
 * Binary shards of packed sequences, and a reader that serves sequences from a set of them.
 *
 * A shard is a 64-byte header, all fields little-endian, then the payload:
 *
 * | offset | bytes | field |
 * | --- | --- | --- |
 * | 0 | 8 | magic `CRAMSHRD` |
 * | 8 | 4 | format version (1) |
 * | 12 | 4 | header size in bytes (64) |
 * | 16 | 4 | vocabulary size |
 * | 20 | 4 | sequence length |
 * | 24 | 8 | vocabulary hash: FNV-1a 64 of `vocab.txt`'s bytes |
 * | 32 | 8 | sequence count |
 * | 40 | 4 | CRC-32 (IEEE, as zlib) of the payload |
 * | 44 | 20 | zero |
 * | 64 | 2 × count × length | token ids, `uint16` little-endian, sequence after sequence |
 *
 * A shard is written to a temporary name and renamed when complete; `manifest.json`, written last,
 * lists the shards of a dataset.
 *
 * @module
 */
import { writeFileAtomic } from "../fs.ts";
import { DataError, describe } from "./errors.ts";

export const SHARD_MAGIC = "CRAMSHRD";
export const SHARD_VERSION = 1;
export const SHARD_HEADER_BYTES = 64;
/** Token ids are stored as uint16. */
export const MAX_SHARD_VOCAB = 65536;

/** What every shard of a dataset shares. */
export interface ShardMeta {
  /** Tokens in the vocabulary the ids refer to. */
  vocabSize: number;
  /** 16 hex digits. */
  vocabHash: string;
  /** Tokens per sequence. */
  seqLen: number;
}

/** A parsed shard header. */
export interface ShardHeader extends ShardMeta {
  version: number;
  sequences: number;
  crc32: number;
}

if (new Uint8Array(Uint16Array.of(1).buffer)[0] !== 1) {
  throw new DataError("shards are little-endian and this machine is big-endian");
}

const CRC_TABLE = (() => {
  const table = new Int32Array(256 * 8);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    for (let k = 1; k < 8; k++) {
      table[k * 256 + n] = (table[(k - 1) * 256 + n] >>> 8) ^ table[table[(k - 1) * 256 + n] & 0xff];
    }
  }
  return table;
})();

/** CRC-32 (IEEE 802.3, as zlib's `crc32`) of `bytes`, continuing from `crc`. */
export function crc32(bytes: Uint8Array, crc = 0): number {
  const t = CRC_TABLE;
  let c = ~crc;
  let i = 0;
  const n = bytes.length;
  // Slicing-by-8: eight table lookups per eight bytes.
  for (; i + 8 <= n; i += 8) {
    const a = (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24)) ^ c;
    const b = bytes[i + 4] | (bytes[i + 5] << 8) | (bytes[i + 6] << 16) | (bytes[i + 7] << 24);
    c = t[1792 + (a & 0xff)] ^ t[1536 + ((a >>> 8) & 0xff)] ^ t[1280 + ((a >>> 16) & 0xff)] ^
      t[1024 + (a >>> 24)] ^
      t[768 + (b & 0xff)] ^ t[512 + ((b >>> 8) & 0xff)] ^ t[256 + ((b >>> 16) & 0xff)] ^ t[b >>> 24];
  }
  for (; i < n; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

function checkMeta(meta: ShardMeta) {
  if (!Number.isInteger(meta.vocabSize) || meta.vocabSize < 1 || meta.vocabSize > MAX_SHARD_VOCAB) {
    throw new DataError(
      `vocabulary size ${meta.vocabSize}: shards hold uint16 ids, at most ${MAX_SHARD_VOCAB}`,
    );
  }
  if (!/^[0-9a-f]{16}$/.test(meta.vocabHash)) {
    throw new DataError(`vocabulary hash ${meta.vocabHash}: expected 16 hex digits`);
  }
  if (!Number.isInteger(meta.seqLen) || meta.seqLen < 1) {
    throw new DataError(`sequence length ${meta.seqLen}: expected >= 1`);
  }
}

/** A shard's bytes: header and `ids` (a whole number of sequences). */
export function encodeShard(ids: Uint16Array, meta: ShardMeta): Uint8Array {
  checkMeta(meta);
  if (ids.length % meta.seqLen !== 0) {
    throw new DataError(`${ids.length} ids are not a whole number of ${meta.seqLen}-token sequences`);
  }
  const bytes = new Uint8Array(SHARD_HEADER_BYTES + ids.length * 2);
  const payload = new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength);
  bytes.set(payload, SHARD_HEADER_BYTES);
  const view = new DataView(bytes.buffer);
  bytes.set(new TextEncoder().encode(SHARD_MAGIC), 0);
  view.setUint32(8, SHARD_VERSION, true);
  view.setUint32(12, SHARD_HEADER_BYTES, true);
  view.setUint32(16, meta.vocabSize, true);
  view.setUint32(20, meta.seqLen, true);
  view.setUint32(24, parseInt(meta.vocabHash.slice(8), 16), true);
  view.setUint32(28, parseInt(meta.vocabHash.slice(0, 8), 16), true);
  view.setBigUint64(32, BigInt(ids.length / meta.seqLen), true);
  view.setUint32(40, crc32(payload), true);
  return bytes;
}

/** Parses and checks a shard header; `fileSize`, when known, must match the header's payload. */
export function parseShardHeader(bytes: Uint8Array, name: string, fileSize?: number): ShardHeader {
  if (bytes.length < SHARD_HEADER_BYTES) {
    throw new DataError(
      `shard ${name}: truncated (${bytes.length} bytes, shorter than the ${SHARD_HEADER_BYTES}-byte header)`,
    );
  }
  if (new TextDecoder().decode(bytes.subarray(0, 8)) !== SHARD_MAGIC) {
    throw new DataError(`shard ${name}: not a cram shard (the file does not start with ${SHARD_MAGIC})`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, SHARD_HEADER_BYTES);
  const version = view.getUint32(8, true);
  if (version !== SHARD_VERSION) {
    throw new DataError(`shard ${name}: format version ${version}, expected ${SHARD_VERSION}`);
  }
  const headerBytes = view.getUint32(12, true);
  if (headerBytes !== SHARD_HEADER_BYTES) {
    throw new DataError(`shard ${name}: header size ${headerBytes}, expected ${SHARD_HEADER_BYTES}`);
  }
  const hex = (n: number) => n.toString(16).padStart(8, "0");
  const header: ShardHeader = {
    version,
    vocabSize: view.getUint32(16, true),
    seqLen: view.getUint32(20, true),
    vocabHash: hex(view.getUint32(28, true)) + hex(view.getUint32(24, true)),
    sequences: Number(view.getBigUint64(32, true)),
    crc32: view.getUint32(40, true),
  };
  try {
    checkMeta(header);
  } catch (e) {
    throw new DataError(`shard ${name}: ${describe(e)}`);
  }
  const expected = SHARD_HEADER_BYTES + header.sequences * header.seqLen * 2;
  if (fileSize !== undefined && fileSize !== expected) {
    throw new DataError(
      `shard ${name}: ${fileSize} bytes, but its header promises ${expected} (${header.sequences} sequences of ${header.seqLen}): ${
        fileSize < expected ? "truncated" : "trailing data"
      }`,
    );
  }
  return header;
}

/** Parses a whole shard held in memory, checking its size and checksum. */
export function decodeShard(bytes: Uint8Array, name: string): { header: ShardHeader; ids: Uint16Array } {
  const header = parseShardHeader(bytes, name, bytes.length);
  const payload = bytes.slice(SHARD_HEADER_BYTES);
  const crc = crc32(payload);
  if (crc !== header.crc32) throw new DataError(`shard ${name}: checksum mismatch (corrupt payload)`);
  return { header, ids: new Uint16Array(payload.buffer) };
}

/** A written shard, as listed in the manifest. */
export interface ShardInfo {
  /** File name inside the dataset directory. */
  file: string;
  /** Sequences in the shard. */
  sequences: number;
  /** CRC-32 of the payload, 8 hex digits. */
  crc32: string;
}

export interface ShardWriterOptions {
  /** Sequences per shard (default: as many as fill 64 MiB, 262,144 of 128 tokens). */
  sequencesPerShard?: number;
}

/** Token ids in a default shard: 64 MiB of payload. */
const SHARD_TOKENS = 1 << 25;

/** Writes sequences into `dir/shard-00000.bin`, `shard-00001.bin`, ..., each complete before it appears. */
export class ShardWriter {
  readonly dir: string;
  readonly meta: ShardMeta;
  readonly shards: ShardInfo[] = [];
  readonly #buffer: Uint16Array;
  #filled = 0;

  constructor(dir: string, meta: ShardMeta, options: ShardWriterOptions = {}) {
    checkMeta(meta);
    const perShard = options.sequencesPerShard ?? Math.max(1, Math.floor(SHARD_TOKENS / meta.seqLen));
    if (!Number.isInteger(perShard) || perShard < 1) {
      throw new DataError(`sequences per shard ${perShard}: expected a positive integer`);
    }
    this.dir = dir;
    this.meta = meta;
    this.#buffer = new Uint16Array(perShard * meta.seqLen);
  }

  /** Adds whole sequences, writing each shard as it fills. */
  async write(sequences: Uint16Array): Promise<void> {
    let at = 0;
    while (at < sequences.length) {
      const n = Math.min(sequences.length - at, this.#buffer.length - this.#filled);
      this.#buffer.set(sequences.subarray(at, at + n), this.#filled);
      this.#filled += n;
      at += n;
      if (this.#filled === this.#buffer.length) await this.#flush();
    }
  }

  /** Writes the last, partly filled shard; returns every shard written. */
  async close(): Promise<ShardInfo[]> {
    if (this.#filled > 0) await this.#flush();
    return this.shards;
  }

  /** Removes the shards written so far (a failed run leaves no partial dataset). */
  async abort(): Promise<void> {
    for (const shard of this.shards) await Deno.remove(`${this.dir}/${shard.file}`).catch(() => {});
    this.shards.length = 0;
  }

  async #flush() {
    const file = `shard-${String(this.shards.length).padStart(5, "0")}.bin`;
    const bytes = encodeShard(this.#buffer.subarray(0, this.#filled), this.meta);
    await writeFileAtomic(`${this.dir}/${file}`, bytes);
    const crc = new DataView(bytes.buffer).getUint32(40, true);
    this.shards.push({
      file,
      sequences: this.#filled / this.meta.seqLen,
      crc32: crc.toString(16).padStart(8, "0"),
    });
    this.#filled = 0;
  }
}

/** A sink that writes a stream of sequences with `writer`. */
export function shardWriterStream(writer: ShardWriter): WritableStream<Uint16Array> {
  return new WritableStream({ write: (sequences) => writer.write(sequences) });
}

/** `manifest.json`: what a dataset directory holds. */
export interface Manifest extends ShardMeta {
  /** Always `cram-shards`: marks the file as a dataset's manifest. */
  format: "cram-shards";
  /** The manifest's format version. */
  version: number;
  /** Sequences in all shards together. */
  sequences: number;
  /** The shards in order: the dataset's sequences are theirs, one shard after the other. */
  shards: ShardInfo[];
  /** Anything else the writer recorded (corpus, counts, options). */
  [extra: string]: unknown;
}

/** The dataset's shard paths listed by `dir/manifest.json`, checked for shape. */
export async function readManifest(dir: string): Promise<{ manifest: Manifest; paths: string[] }> {
  const file = `${dir.replace(/\/+$/, "")}/manifest.json`;
  let manifest: Manifest;
  try {
    manifest = JSON.parse(await Deno.readTextFile(file));
  } catch (e) {
    throw new DataError(`manifest ${file}: ${describe(e)}`);
  }
  if (manifest?.format !== "cram-shards" || !Array.isArray(manifest.shards)) {
    throw new DataError(
      `manifest ${file}: not a cram shard manifest (expected "format": "cram-shards" and "shards")`,
    );
  }
  if (manifest.shards.length === 0) throw new DataError(`manifest ${file}: "shards" is empty`);
  manifest.shards.forEach((shard, i) => {
    if (typeof shard?.file !== "string" || shard.file.includes("/")) {
      throw new DataError(`manifest ${file}: shards[${i}].file must be a file name`);
    }
  });
  return { manifest, paths: manifest.shards.map((shard) => `${dir.replace(/\/+$/, "")}/${shard.file}`) };
}

/**
 * The shard paths of several datasets read as one, one folder's after the other. Their manifests must
 * name one vocabulary (a `DataError` naming both folders otherwise).
 */
export async function readManifests(dirs: readonly string[]): Promise<string[]> {
  const paths: string[] = [];
  let first: { dir: string; vocabHash: string } | undefined;
  for (const dir of dirs) {
    const { manifest, paths: own } = await readManifest(dir);
    first ??= { dir, vocabHash: manifest.vocabHash };
    if (manifest.vocabHash !== first.vocabHash) {
      throw new DataError(
        `dataset ${dir}: tokenized with vocabulary ${manifest.vocabHash}, dataset ${first.dir} with ` +
          `${first.vocabHash}; datasets read together need one vocabulary (tokenize with --vocab ${first.dir})`,
      );
    }
    paths.push(...own);
  }
  return paths;
}

/** How {@linkcode openShards} checks the shards it opens. */
export interface OpenShardsOptions {
  /** Read every payload once and check its CRC-32 (default true). */
  verify?: boolean;
  /** Fail unless the shards match (for instance the tokenizer's vocabulary hash and size). */
  expect?: Partial<ShardMeta>;
}

/**
 * Opens `paths` as one sequence of sequences. Headers are checked (magic, version, size against the
 * file's length), the shards must agree with each other and with `expect`, and with `verify` every
 * checksum is checked. Reads go by ranges: memory does not grow with the dataset.
 */
export async function openShards(
  paths: readonly string[],
  options: OpenShardsOptions = {},
): Promise<ShardSet> {
  if (paths.length === 0) throw new DataError("no shards given");
  const files: Deno.FsFile[] = [];
  const headers: ShardHeader[] = [];
  try {
    for (const path of paths) {
      let file: Deno.FsFile;
      try {
        file = await Deno.open(path);
      } catch (e) {
        throw new DataError(`shard ${path}: ${describe(e)}`);
      }
      files.push(file);
      const head = new Uint8Array(SHARD_HEADER_BYTES);
      const n = await readFully(file, head);
      const header = parseShardHeader(head.subarray(0, n), path, (await file.stat()).size);
      const reference = headers.length > 0 ? { ...headers[0], name: paths[0] } : undefined;
      for (const key of ["vocabHash", "vocabSize", "seqLen"] as const) {
        if (reference && header[key] !== reference[key]) {
          throw new DataError(
            `shard ${path}: ${key} ${header[key]} differs from ${reference[key]} in ${reference.name}`,
          );
        }
        const expected = options.expect?.[key];
        if (expected !== undefined && header[key] !== expected) {
          throw new DataError(`shard ${path}: ${key} ${header[key]}, expected ${expected}`);
        }
      }
      headers.push(header);
    }
    const set = new ShardSet(paths, files, headers);
    if (options.verify ?? true) await set.verify();
    return set;
  } catch (e) {
    for (const file of files) file.close();
    throw e;
  }
}

async function readFully(file: Deno.FsFile, into: Uint8Array): Promise<number> {
  let filled = 0;
  while (filled < into.length) {
    const n = await file.read(into.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return filled;
}

/** Sequences served from a set of shards, by global index. */
export class ShardSet implements ShardMeta {
  /** Sequences in all shards together. */
  readonly sequences: number;
  /** Tokens per sequence. */
  readonly seqLen: number;
  /** Tokens in the vocabulary the ids refer to. */
  readonly vocabSize: number;
  readonly vocabHash: string;
  readonly #paths: readonly string[];
  readonly #files: Deno.FsFile[];
  readonly #headers: ShardHeader[];
  /** `#first[i]`: global index of shard i's first sequence. */
  readonly #first: number[] = [];
  /** Reads share file positions, so they run one at a time. */
  #queue: Promise<unknown> = Promise.resolve();

  /** Shards whose headers {@linkcode openShards} has checked, their files open for reading. */
  constructor(paths: readonly string[], files: Deno.FsFile[], headers: ShardHeader[]) {
    this.#paths = paths;
    this.#files = files;
    this.#headers = headers;
    let total = 0;
    for (const header of headers) {
      this.#first.push(total);
      total += header.sequences;
    }
    this.sequences = total;
    ({ seqLen: this.seqLen, vocabSize: this.vocabSize, vocabHash: this.vocabHash } = headers[0]);
  }

  /** Sequences `first` to `first + count - 1`, one after another. */
  read(first: number, count: number): Promise<Uint16Array> {
    if (
      !Number.isInteger(first) || !Number.isInteger(count) || first < 0 || count < 0 ||
      first + count > this.sequences
    ) {
      return Promise.reject(
        new RangeError(`sequences ${first}..${first + count} outside 0..${this.sequences}`),
      );
    }
    const result = this.#queue.then(() => this.#read(first, count));
    this.#queue = result.catch(() => {});
    return result;
  }

  async #read(first: number, count: number): Promise<Uint16Array> {
    const out = new Uint16Array(count * this.seqLen);
    const bytes = new Uint8Array(out.buffer);
    let done = 0;
    while (done < count) {
      const index = first + done;
      let shard = this.#first.length - 1;
      while (this.#first[shard] > index) shard--;
      const offset = index - this.#first[shard];
      const n = Math.min(count - done, this.#headers[shard].sequences - offset);
      const file = this.#files[shard];
      await file.seek(SHARD_HEADER_BYTES + offset * this.seqLen * 2, Deno.SeekMode.Start);
      const want = bytes.subarray(done * this.seqLen * 2, (done + n) * this.seqLen * 2);
      if ((await readFully(file, want)) !== want.length) {
        throw new DataError(`shard ${this.#paths[shard]}: truncated while reading`);
      }
      done += n;
    }
    return out;
  }

  /** Checks every shard's payload against its CRC-32. */
  verify(): Promise<void> {
    const result = this.#queue.then(async () => {
      const block = new Uint8Array(1 << 22);
      for (let s = 0; s < this.#files.length; s++) {
        const file = this.#files[s];
        await file.seek(SHARD_HEADER_BYTES, Deno.SeekMode.Start);
        let crc = 0;
        for (let left = this.#headers[s].sequences * this.seqLen * 2; left > 0;) {
          const n = await readFully(file, block.subarray(0, Math.min(left, block.length)));
          if (n === 0) throw new DataError(`shard ${this.#paths[s]}: truncated while verifying`);
          crc = crc32(block.subarray(0, n), crc);
          left -= n;
        }
        if (crc !== this.#headers[s].crc32) {
          throw new DataError(`shard ${this.#paths[s]}: checksum mismatch (corrupt payload)`);
        }
      }
    });
    this.#queue = result.catch(() => {});
    return result;
  }

  /** Closes the shards' files. */
  close(): void {
    for (const file of this.#files) file.close();
  }
}
