/**
 * Reading a corpus: the documents of its files (listed by corpus_files.ts) as one stream of
 * document pieces, plain text and JSON Lines alike, with counters for progress displays.
 *
 * Memory stays bounded whatever the file or line size: files are read 64 KiB at a time (see decode.ts),
 * and a JSON line's text is decoded as it streams past (see jsonl_parser.ts).
 *
 * @module
 */
import type { CorpusFile } from "./corpus_files.ts";
import { fileText } from "./decode.ts";
import { JsonlParser } from "./jsonl_parser.ts";
import { type DocumentParser, type TextChunk, TextParser } from "./text_parser.ts";

/** Counters a reader updates as it goes; progress displays read them while the stream runs. */
export interface ReadStats {
  /** Bytes on disk of all the files to read. */
  bytesTotal: number;
  /** Bytes on disk read so far. */
  bytesRead: number;
  /** Bytes of (decompressed) text decoded so far. */
  textBytes: number;
  /** Files opened so far. */
  files: number;
  /** Documents read so far (those `skipDocuments` left out not counted). */
  documents: number;
  /** Documents left out by `skipDocuments`. */
  skippedDocuments: number;
  /** Invalid UTF-8 sequences, each replaced by U+FFFD. */
  invalidUtf8: number;
  /** JSON lines skipped as malformed, or without a string text field. */
  malformedLines: number;
}

/** Zeroed counters. */
export function newReadStats(): ReadStats {
  return {
    bytesTotal: 0,
    bytesRead: 0,
    textBytes: 0,
    files: 0,
    documents: 0,
    skippedDocuments: 0,
    invalidUtf8: 0,
    malformedLines: 0,
  };
}

export interface ReadCorpusOptions {
  /** `.txt` files hold several documents separated by blank lines (default: a file is a document). */
  paragraphs?: boolean;
  /** The JSON Lines field that holds a document's text (default `text`). */
  field?: string;
  /** A malformed JSON line stops the read with a `DataError` instead of being skipped. */
  strict?: boolean;
  /** Stop after this many bytes of decompressed text (the document being read is cut there). */
  limitBytes?: number;
  /**
   * Leave out the corpus's first n documents, across its files in order (read, not yielded): the part a
   * held-out set took, e.g. with `limitBytes` (whose cut document is then left out whole). Default 0.
   */
  skipDocuments?: number;
  /** Receives one line per skipped JSON line (default: none). */
  onWarning?: (message: string) => void;
  /** Counters to update (default: fresh ones, reachable through the returned object). */
  stats?: ReadStats;
}

/**
 * Streams the documents of `files` in order. Invalid UTF-8 is replaced and counted; a malformed JSON
 * line is reported through `onWarning` and skipped (or, with `strict`, fails the read). A file that
 * cannot be read, is not valid gzip, or holds binary data fails the read with a `DataError` naming it.
 */
export function readCorpus(
  files: readonly CorpusFile[],
  options: ReadCorpusOptions = {},
): { readable: ReadableStream<TextChunk>; stats: ReadStats } {
  const stats = options.stats ?? newReadStats();
  stats.bytesTotal = files.reduce((sum, f) => sum + f.size, 0);
  return { readable: ReadableStream.from(corpusChunks(files, options, stats)), stats };
}

async function* corpusChunks(
  files: readonly CorpusFile[],
  options: ReadCorpusOptions,
  stats: ReadStats,
): AsyncGenerator<TextChunk> {
  const limit = options.limitBytes ?? Infinity;
  const skip = options.skipDocuments ?? 0;
  // Documents ended so far, left out or not: the one being read is left out while this is below `skip`.
  let ended = 0;
  for (const file of files) {
    if (stats.textBytes >= limit) return;
    const parser: DocumentParser = file.format === "jsonl"
      ? new JsonlParser({
        name: file.path,
        field: options.field,
        strict: options.strict,
        onMalformed: (message) => {
          stats.malformedLines++;
          options.onWarning?.(message);
        },
      })
      : new TextParser({ paragraphs: options.paragraphs });
    let open = false;
    const count = function* (chunks: Iterable<TextChunk>) {
      for (const chunk of chunks) {
        const kept = ended >= skip;
        if (chunk.end) {
          ended++;
          if (kept) stats.documents++;
          else stats.skippedDocuments++;
        }
        if (!kept) continue;
        open = !chunk.end;
        yield chunk;
      }
    };
    for await (const text of fileText(file, stats)) {
      yield* count(parser.push(text));
      if (stats.textBytes >= limit) {
        if (open) yield* count([{ text: "", end: true }]);
        return;
      }
    }
    yield* count(parser.finish());
    stats.files++;
  }
}
