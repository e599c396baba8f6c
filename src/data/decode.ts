/**
 * A corpus file's bytes as text: read 64 KiB at a time, gunzipped where it is `.gz`, decoded as UTF-8
 * (invalid sequences replaced and counted), checked for binary data, and cut into pieces.
 *
 * @module
 */
import type { CorpusFile } from "./corpus_files.ts";
import { DataError, describe } from "./errors.ts";
import { pieces } from "./text_parser.ts";
import { Utf8Decoder } from "./utf8.ts";

/** The counters {@linkcode fileText} updates as it reads. */
export interface DecodeStats {
  /** Bytes on disk read so far. */
  bytesRead: number;
  /** Bytes of (decompressed) text decoded so far. */
  textBytes: number;
  /** Invalid UTF-8 sequences, each replaced by U+FFFD. */
  invalidUtf8: number;
}

const READ_BYTES = 1 << 16;

/** The decoded text of one file, in pieces; checks for binary data and wraps I/O errors. */
export async function* fileText(file: CorpusFile, stats: DecodeStats): AsyncGenerator<string> {
  const bytes: AsyncIterable<Uint8Array> = file.gzip
    ? ReadableStream.from(fileBytes(file.path, stats)).pipeThrough(new DecompressionStream("gzip"))
    : fileBytes(file.path, stats);
  const decoder = new Utf8Decoder();
  const countInvalid = () => {
    stats.invalidUtf8 += decoder.invalid - counted;
    counted = decoder.invalid;
  };
  let counted = 0;
  let checked = false;
  try {
    for await (const chunk of bytes) {
      if (!checked) {
        const nul = chunk.subarray(0, 8192).indexOf(0);
        if (nul >= 0) {
          throw new DataError(`${file.path}: binary data (a NUL byte at offset ${nul}), not text`);
        }
        checked = chunk.length > 0;
      }
      stats.textBytes += chunk.length;
      const text = decoder.decode(chunk);
      countInvalid();
      yield* pieces(text);
    }
    const rest = decoder.finish();
    countInvalid();
    yield* pieces(rest);
  } catch (e) {
    if (e instanceof DataError) throw e;
    throw new DataError(
      `${file.path}: ${file.gzip ? "not valid gzip data" : "read failed"} (${describe(e)})`,
    );
  }
}

async function* fileBytes(path: string, stats: DecodeStats): AsyncGenerator<Uint8Array<ArrayBuffer>> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch (e) {
    throw new DataError(`cannot read ${path}: ${describe(e)}`);
  }
  try {
    while (true) {
      const buffer = new Uint8Array(READ_BYTES);
      const n = await file.read(buffer);
      if (n === null) return;
      stats.bytesRead += n;
      yield buffer.subarray(0, n);
    }
  } finally {
    file.close();
  }
}
