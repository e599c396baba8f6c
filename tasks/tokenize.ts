/**
 * `deno task tokenize`: turns a raw corpus into packed token shards, training the WordPiece vocabulary
 * first unless `--vocab` gives one.
 *
 * Writes `<out>/vocab.txt`, `<out>/tokenizer.json`, `<out>/shard-00000.bin`... and, last,
 * `<out>/manifest.json`. Progress goes to stderr, the summary to stdout.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { DataError, describe } from "../src/data/errors.ts";
import { normalizeStream } from "../src/data/normalize.ts";
import { newPackStats, packStream } from "../src/data/pack.ts";
import { preTokenizeStream } from "../src/data/pretokenize.ts";
import {
  type CorpusFile,
  listCorpusFiles,
  newReadStats,
  readCorpus,
  type ReadStats,
} from "../src/data/read.ts";
import { type Manifest, MAX_SHARD_VOCAB, ShardWriter, shardWriterStream } from "../src/data/shard.ts";
import { Tokenizer, UNK_ID } from "../src/data/tokenizer.ts";
import { countWordsStream, trainWordPiece, WordCounter } from "../src/data/trainer.ts";
import { encodeStream, type IdChunk } from "../src/data/wordpiece.ts";
import { writeFileAtomic } from "../src/fs.ts";

const HELP = `Usage: deno task tokenize --corpus <path>... --out <dir> [options]

Reads a corpus, trains a WordPiece vocabulary on it (unless --vocab is given), and writes the
corpus as packed sequences of token ids: <out>/vocab.txt, <out>/tokenizer.json,
<out>/shard-NNNNN.bin and, last, <out>/manifest.json.

Options:
  --corpus <path>             corpus file or directory, repeatable: .txt, .jsonl or .ndjson files,
                              optionally gzip-compressed (.gz); directories are read recursively
  --out <dir>                 output directory (created if missing)
  --vocab <dir|vocab.txt>     reuse this vocabulary instead of training one
  --vocab-size <n>            size of the trained vocabulary (default 32768, at most 65536)
  --min-frequency <n>         never merge a pair seen fewer times when training (default 2)
  --seq-len <n>               tokens per packed sequence (default 128)
  --min-chars-per-token <x>   drop documents with at most x characters per token (default 0:
                              keep all; the recipe's filter is 4)
  --paragraphs                .txt files hold several documents separated by blank lines
  --field <name>              the JSON Lines field holding the text (default text)
  --strict                    fail on a malformed JSON line instead of skipping it
  --limit-bytes <n>           read at most n bytes of (decompressed) text, for quick runs
  --shard-sequences <n>       sequences per shard (default 262144: 64 MiB at length 128)
  --overwrite                 replace a dataset already in --out
  -h, --help                  show this help`;

interface Options {
  corpus: string[];
  out: string;
  vocab?: string;
  vocabSize: number;
  minFrequency: number;
  seqLen: number;
  minCharsPerToken: number;
  paragraphs: boolean;
  field: string;
  strict: boolean;
  limitBytes?: number;
  shardSequences: number;
  overwrite: boolean;
}

function parseOptions(args: string[]): Options | null {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        corpus: { type: "string", multiple: true },
        out: { type: "string" },
        vocab: { type: "string" },
        "vocab-size": { type: "string", default: "32768" },
        "min-frequency": { type: "string", default: "2" },
        "seq-len": { type: "string", default: "128" },
        "min-chars-per-token": { type: "string", default: "0" },
        paragraphs: { type: "boolean", default: false },
        field: { type: "string", default: "text" },
        strict: { type: "boolean", default: false },
        "limit-bytes": { type: "string" },
        "shard-sequences": { type: "string", default: "262144" },
        overwrite: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (e) {
    throw new DataError(`${describe(e)} (see --help)`);
  }
  const v = parsed.values;
  if (v.help) return null;
  if (!v.corpus?.length) throw new DataError("--corpus is required (see --help)");
  if (!v.out) throw new DataError("--out is required (see --help)");
  const integer = (name: string, text: string, min: number, max = Number.MAX_SAFE_INTEGER) => {
    const n = Number(text);
    if (!/^\d+$/.test(text) || n < min || n > max) {
      throw new DataError(
        `--${name}: expected an integer from ${min} to ${max}, got ${JSON.stringify(text)}`,
      );
    }
    return n;
  };
  const minChars = Number(v["min-chars-per-token"]);
  if (!(minChars >= 0) || v["min-chars-per-token"].trim() === "") {
    throw new DataError(
      `--min-chars-per-token: expected a number >= 0, got ${JSON.stringify(v["min-chars-per-token"])}`,
    );
  }
  return {
    corpus: v.corpus,
    out: v.out.replace(/\/+$/, "") || "/",
    vocab: v.vocab,
    vocabSize: integer("vocab-size", v["vocab-size"], 1, MAX_SHARD_VOCAB),
    minFrequency: integer("min-frequency", v["min-frequency"], 1),
    seqLen: integer("seq-len", v["seq-len"], 1, 1 << 20),
    minCharsPerToken: minChars,
    paragraphs: v.paragraphs,
    field: v.field,
    strict: v.strict,
    limitBytes: v["limit-bytes"] === undefined ? undefined : integer("limit-bytes", v["limit-bytes"], 1),
    shardSequences: integer("shard-sequences", v["shard-sequences"], 1),
    overwrite: v.overwrite,
  };
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
      `${this.#label}: ${(fraction * 100).toFixed(0)}% of ${mb(s.bytesTotal)} read, ${
        mb(s.textBytes)
      } of text ` +
      `at ${(s.textBytes / 1e6 / Math.max(seconds, 1e-3)).toFixed(1)} MB/s, ${s.documents} documents${eta}` +
      (final ? ` (${duration(seconds)})` : "");
    const text = this.#tty ? `\r${line}\x1b[K${final ? "\n" : ""}` : `${line}\n`;
    Deno.stderr.writeSync(new TextEncoder().encode(text));
  }
}

function mb(bytes: number): string {
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

async function prepareOut(options: Options) {
  try {
    await Deno.mkdir(options.out, { recursive: true });
    const existing: string[] = [];
    for await (const entry of Deno.readDir(options.out)) {
      if (entry.name === "manifest.json" || /^shard-\d+\.bin$/.test(entry.name)) existing.push(entry.name);
    }
    if (existing.length === 0) return;
    if (!options.overwrite) {
      throw new DataError(
        `--out ${options.out} already holds a dataset (${
          existing.sort()[0]
        }, ...): pass --overwrite to replace it`,
      );
    }
    // The manifest goes first: a directory without one never passes for a complete dataset.
    for (const name of existing.sort().reverse()) await Deno.remove(`${options.out}/${name}`);
  } catch (e) {
    if (e instanceof DataError) throw e;
    throw new DataError(`--out ${options.out}: ${describe(e)}`);
  }
}

async function trainVocabulary(files: CorpusFile[], options: Options): Promise<Tokenizer> {
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

function readOptions(options: Options, stats: ReadStats, onWarning: (message: string) => void) {
  return {
    paragraphs: options.paragraphs,
    field: options.field,
    strict: options.strict,
    limitBytes: options.limitBytes,
    stats,
    onWarning,
  };
}

async function main(args: string[]) {
  const options = parseOptions(args);
  if (!options) {
    console.log(HELP);
    return;
  }
  const files = await listCorpusFiles(options.corpus);
  const loaded = options.vocab === undefined ? undefined : await Tokenizer.load(options.vocab);
  if (loaded && loaded.size > MAX_SHARD_VOCAB) {
    throw new DataError(
      `--vocab ${options.vocab}: ${loaded.size} tokens, shards hold at most ${MAX_SHARD_VOCAB}`,
    );
  }
  await prepareOut(options);
  const tokenizer = loaded ?? await trainVocabulary(files, options);
  await tokenizer.save(options.out);

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
  const writer = new ShardWriter(options.out, meta, { sequencesPerShard: options.shardSequences });
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
    const shards = await writer.close();
    const manifest: Manifest = {
      format: "cram-shards",
      version: 1,
      ...meta,
      sequences: packStats.sequences,
      shards,
      corpus: files.map((f) => f.path),
      minCharsPerToken: options.minCharsPerToken,
      documents: packStats.documents,
      tokens: packStats.tokens,
    };
    await writeFileAtomic(
      `${options.out}/manifest.json`,
      new TextEncoder().encode(JSON.stringify(manifest, null, 2) + "\n"),
    );
  } catch (e) {
    await writer.abort();
    throw e;
  } finally {
    progress.done();
  }

  const p = packStats;
  const kept = p.documents - p.emptyDocuments - p.droppedDocuments;
  const percent = (n: number, of: number) => `${(of > 0 ? (100 * n) / of : 0).toFixed(3)}%`;
  const filter = options.minCharsPerToken > 0
    ? `, ${p.droppedDocuments} dropped (<= ${options.minCharsPerToken} chars/token, ${p.droppedTokens} tokens)`
    : "";
  console.log(
    [
      `documents  ${p.documents} read, ${kept} kept${filter}, ${p.emptyDocuments} empty`,
      `tokens     ${counts.tokens} encoded, ${percent(counts.unknown, counts.tokens)} [UNK]; ` +
      `${p.sequences} sequences of ${options.seqLen} (${p.leftoverTokens} tokens left over)`,
      `text       ${mb(stats.textBytes)}, ${stats.invalidUtf8} invalid UTF-8 sequences replaced, ` +
      `${stats.malformedLines} malformed JSON lines skipped`,
      `vocabulary ${tokenizer.size} tokens, hash ${tokenizer.hash}${
        loaded ? ` (from ${options.vocab})` : " (trained)"
      }`,
      `shards     ${writer.shards.length} in ${options.out}: ${writer.shards.map((s) => s.file).join(", ")}`,
    ].join("\n"),
  );
}

if (import.meta.main) {
  try {
    await main(Deno.args);
  } catch (e) {
    console.error(`error: ${e instanceof DataError ? e.message : describe(e)}`);
    Deno.exit(1);
  }
}
