/**
 * Building a tokenized dataset from a raw corpus: train the WordPiece vocabulary on the normalized
 * stream (unless one is given), then normalize, pre-tokenize, encode and pack the corpus into shards.
 * Writes `<out>/vocab.txt`, `<out>/tokenizer.json`, `<out>/shard-NNNNN.bin` and, last,
 * `<out>/manifest.json`, so a folder with a manifest is always a complete dataset. Progress goes to
 * stderr. Used by `deno task tokenize` and by `deno task pretrain` for a raw corpus.
 *
 * @module
 */
import { DataError, describe } from "./errors.ts";
import { normalizeStream } from "./normalize.ts";
import { newPackStats, type PackStats, packStream } from "./pack.ts";
import { preTokenizeStream } from "./pretokenize.ts";
import { type CorpusFile, listCorpusFiles } from "./corpus_files.ts";
import { newReadStats, readCorpus, type ReadStats } from "./read.ts";
import { type Manifest, MAX_SHARD_VOCAB, type ShardInfo, ShardWriter, shardWriterStream } from "./shard.ts";
import { Tokenizer, UNK_ID } from "./tokenizer.ts";
import { countWordsStream, trainWordPiece, WordCounter } from "./trainer.ts";
import { encodeStream, type IdChunk } from "./wordpiece.ts";
import { writeFileAtomic } from "../fs.ts";

/** What {@linkcode buildDataset} reads and writes. */
export interface DatasetOptions {
  /** Corpus files or directories: .txt, .jsonl or .ndjson, optionally .gz. */
  corpus: string[];
  /** Output directory (created if missing). */
  out: string;
  /** Reuse this vocabulary (a directory or vocab.txt) instead of training one. */
  vocab?: string;
  /** Size of a trained vocabulary (default 32768). */
  vocabSize?: number;
  /** Never merge a pair seen fewer times when training (default 2). */
  minFrequency?: number;
  /** Tokens per packed sequence (default 128). */
  seqLen?: number;
  /** Drop documents with at most this many characters per token (default 0: keep all). */
  minCharsPerToken?: number;
  /** `.txt` files hold several documents separated by blank lines. */
  paragraphs?: boolean;
  /** The JSON Lines field holding the text (default `text`). */
  field?: string;
  /** Fail on a malformed JSON line instead of skipping it. */
  strict?: boolean;
  /** Read at most this many bytes of decompressed text. */
  limitBytes?: number;
  /** Leave out the corpus's first n documents, e.g. those a held-out set took (default 0). */
  skipDocuments?: number;
  /** Sequences per shard (default: as many as fill 64 MiB, 262144 at length 128). */
  shardSequences?: number;
  /** Replace a dataset already in `out`. */
  overwrite?: boolean;
}

/** What a dataset's options default to (`deno task tokenize` shows these). */
export const DATASET_DEFAULTS = {
  vocabSize: 32768,
  minFrequency: 2,
  seqLen: 128,
  minCharsPerToken: 0,
  skipDocuments: 0,
  paragraphs: false,
  field: "text",
  strict: false,
  overwrite: false,
};

type ResolvedOptions =
  & Required<Omit<DatasetOptions, "vocab" | "limitBytes" | "shardSequences">>
  & Pick<DatasetOptions, "vocab" | "limitBytes" | "shardSequences">;

/** What `buildDataset` read and wrote. */
export interface DatasetSummary {
  /** The corpus files read, in order. */
  files: CorpusFile[];
  /** The tokenizer the shards were encoded with. */
  tokenizer: Tokenizer;
  /** The vocabulary was trained (not loaded from `vocab`). */
  trained: boolean;
  /** What the reader counted: bytes, documents, invalid UTF-8. */
  read: ReadStats;
  /** What the packer counted: documents, tokens, sequences. */
  pack: PackStats;
  /** Tokens encoded, and how many of them are [UNK]. */
  tokens: number;
  /** Of `tokens`, how many are `[UNK]`. */
  unknown: number;
  /** The shards written, as the manifest lists them. */
  shards: ShardInfo[];
}

/** Builds the dataset described by `options` (see the module comment). */
export async function buildDataset(dataset: DatasetOptions): Promise<DatasetSummary> {
  const options: ResolvedOptions = {
    ...DATASET_DEFAULTS,
    ...dataset,
    out: dataset.out.replace(/\/+$/, "") || "/",
  };
  const files = await listCorpusFiles(options.corpus);
  const loaded = options.vocab === undefined ? undefined : await Tokenizer.load(options.vocab);
  if (loaded && loaded.size > MAX_SHARD_VOCAB) {
    throw new DataError(
      `--vocab ${options.vocab}: ${loaded.size} tokens, shards hold at most ${MAX_SHARD_VOCAB}`,
    );
  }
  // A dataset already in --out (replaced only with `overwrite`) stays until the new one is complete: the new
  // one is built in a hidden folder inside --out and moved into place at the end.
  const existing = await existingDataset(options);
  const dir = existing.length > 0 ? `${options.out}/.building-${Deno.pid}` : options.out;
  try {
    const summary = await buildInto(dir, files, loaded, options);
    if (dir !== options.out) await replaceDataset(options.out, dir, existing);
    return summary;
  } finally {
    if (dir !== options.out) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Builds the dataset of `files` into the folder `dir`: vocabulary (unless `loaded`), shards, manifest last. */
async function buildInto(
  dir: string,
  files: CorpusFile[],
  loaded: Tokenizer | undefined,
  options: ResolvedOptions,
): Promise<DatasetSummary> {
  await makeDir(dir);
  const tokenizer = loaded ?? await trainVocabulary(files, options);

  const stats = newReadStats();
  const packStats = newPackStats();
  const counts = { tokens: 0, unknown: 0 };
  const countUnknown = new TransformStream<IdChunk, IdChunk>({
    transform(chunk, controller) {
      counts.tokens += chunk.ids.length;
      for (const id of chunk.ids) if (id === UNK_ID) counts.unknown++;
      controller.enqueue(chunk);
    },
  });
  const meta = { vocabSize: tokenizer.size, vocabHash: tokenizer.hash, seqLen: options.seqLen };
  let shards: ShardInfo[] = [];
  const writer = new ShardWriter(dir, meta, { sequencesPerShard: options.shardSequences });
  const { readable } = readCorpus(files, readOptions(options, stats, warnings()));
  const progress = new Progress("tokenizing", stats);
  try {
    await readable
      .pipeThrough(normalizeStream())
      .pipeThrough(preTokenizeStream())
      .pipeThrough(encodeStream(tokenizer.wordPiece))
      .pipeThrough(countUnknown)
      .pipeThrough(
        packStream({ seqLen: options.seqLen, minCharsPerToken: options.minCharsPerToken }, packStats),
      )
      .pipeTo(shardWriterStream(writer));
    if (packStats.sequences === 0) {
      const filter = packStats.droppedDocuments > 0
        ? `; --min-chars-per-token ${options.minCharsPerToken} dropped ${packStats.droppedDocuments} of them`
        : "";
      throw new DataError(
        `no ${options.seqLen}-token sequence came out of ${packStats.documents} documents ` +
          `(${packStats.tokens + packStats.leftoverTokens} tokens kept${filter})`,
      );
    }
    shards = await writer.close();
    await tokenizer.save(dir);
    const manifest: Manifest = {
      format: "cram-shards",
      version: 1,
      ...meta,
      sequences: packStats.sequences,
      shards,
      corpus: files.map((f) => f.path),
      minCharsPerToken: options.minCharsPerToken,
      skipDocuments: options.skipDocuments,
      documents: packStats.documents,
      tokens: packStats.tokens,
    };
    await writeFileAtomic(
      `${dir}/manifest.json`,
      new TextEncoder().encode(JSON.stringify(manifest, null, 2) + "\n"),
    );
  } catch (e) {
    await writer.abort();
    throw e;
  } finally {
    progress.done();
  }
  return { files, tokenizer, trained: !loaded, read: stats, pack: packStats, ...counts, shards };
}

/** Progress on stderr: a live line on a terminal, a plain line every 10 s otherwise. */
class Progress {
  readonly #stats: ReadStats;
  readonly #label: string;
  readonly #tty = Deno.stderr.isTerminal();
  readonly #start = performance.now();
  readonly #timer: ReturnType<typeof setInterval>;

  constructor(label: string, stats: ReadStats) {
    this.#label = label;
    this.#stats = stats;
    this.#timer = setInterval(() => this.#print(false), this.#tty ? 250 : 10_000);
  }

  done(): number {
    clearInterval(this.#timer);
    this.#print(true);
    return (performance.now() - this.#start) / 1000;
  }

  #print(final: boolean) {
    const s = this.#stats;
    const seconds = (performance.now() - this.#start) / 1000;
    const fraction = s.bytesTotal > 0 ? s.bytesRead / s.bytesTotal : 0;
    const eta = fraction > 0 && !final ? `, ETA ${duration(seconds * (1 / fraction - 1))}` : "";
    const line =
      `${this.#label}: ${(fraction * 100).toFixed(0)}% of ${megabytes(s.bytesTotal)} read, ${
        megabytes(s.textBytes)
      } of text ` +
      `at ${(s.textBytes / 1e6 / Math.max(seconds, 1e-3)).toFixed(1)} MB/s, ${s.documents} documents${eta}` +
      (final ? ` (${duration(seconds)})` : "");
    const text = this.#tty ? `\r${line}\x1b[K${final ? "\n" : ""}` : `${line}\n`;
    Deno.stderr.writeSync(new TextEncoder().encode(text));
  }
}

/** Bytes as megabytes with one decimal, e.g. "12.3 MB". */
export function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

function duration(seconds: number): string {
  const s = Math.round(seconds);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
}

function warnings(): (message: string) => void {
  let shown = 0;
  return (message) => {
    if (++shown <= 20) console.error(`warning: ${message}`);
    else if (shown === 21) console.error("warning: more malformed lines; the summary counts them all");
  };
}

/** The dataset files already in `options.out` (none if it is new); a `DataError` unless `overwrite`. */
async function existingDataset(options: ResolvedOptions): Promise<string[]> {
  const existing: string[] = [];
  try {
    for await (const entry of Deno.readDir(options.out)) {
      if (entry.name === "manifest.json" || /^shard-\d+\.bin$/.test(entry.name)) existing.push(entry.name);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw new DataError(`--out ${options.out}: ${describe(e)}`);
  }
  if (existing.length > 0 && !options.overwrite) {
    throw new DataError(
      `--out ${options.out} already holds a dataset (${
        existing.sort()[0]
      }, ...): pass --overwrite to replace it`,
    );
  }
  return existing;
}

async function makeDir(dir: string): Promise<void> {
  try {
    await Deno.mkdir(dir, { recursive: true });
  } catch (e) {
    throw new DataError(`--out ${dir}: ${describe(e)}`);
  }
}

/**
 * Moves the complete dataset in `built` over the one in `out` (whose dataset files are `existing`). The
 * old manifest goes first, so that `out` never passes for a complete dataset while its shards are mixed,
 * and the new manifest comes last.
 */
async function replaceDataset(out: string, built: string, existing: string[]): Promise<void> {
  try {
    const names: string[] = [];
    for await (const entry of Deno.readDir(built)) names.push(entry.name);
    if (existing.includes("manifest.json")) await Deno.remove(`${out}/manifest.json`);
    for (const name of existing) {
      if (name !== "manifest.json" && !names.includes(name)) await Deno.remove(`${out}/${name}`);
    }
    for (const name of names.filter((n) => n !== "manifest.json")) {
      await Deno.rename(`${built}/${name}`, `${out}/${name}`);
    }
    await Deno.rename(`${built}/manifest.json`, `${out}/manifest.json`);
  } catch (e) {
    throw new DataError(`--out ${out}: replacing the dataset: ${describe(e)}`);
  }
}

async function trainVocabulary(files: CorpusFile[], options: ResolvedOptions): Promise<Tokenizer> {
  const stats = newReadStats();
  const counter = new WordCounter();
  const { readable } = readCorpus(files, readOptions(options, stats, () => {}));
  const progress = new Progress("counting words", stats);
  try {
    await readable.pipeThrough(normalizeStream()).pipeThrough(preTokenizeStream()).pipeTo(
      countWordsStream(counter),
    );
  } finally {
    progress.done();
  }
  if (counter.counts.size === 0) throw new DataError(`corpus ${options.corpus.join(", ")} holds no words`);
  const start = performance.now();
  const vocab = trainWordPiece(counter.counts, {
    vocabSize: options.vocabSize,
    minFrequency: options.minFrequency,
  });
  const pruned = counter.pruned > 0 ? `, ${counter.pruned} rare words pruned from the count` : "";
  console.error(
    `trained ${vocab.length} tokens from ${counter.counts.size} distinct words in ` +
      `${duration((performance.now() - start) / 1000)}${pruned}`,
  );
  return new Tokenizer(vocab);
}

function readOptions(options: ResolvedOptions, stats: ReadStats, onWarning: (message: string) => void) {
  return {
    paragraphs: options.paragraphs,
    field: options.field,
    strict: options.strict,
    limitBytes: options.limitBytes,
    skipDocuments: options.skipDocuments,
    stats,
    onWarning,
  };
}
