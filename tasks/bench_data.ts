/**
 * `deno task bench:data`: the corpus pipeline's speed, side by side with Hugging Face `tokenizers`.
 *
 * 1. Trains the vocabulary on the corpus (word counting streamed from the file, then merges) and
 *    reports its time and the process's peak resident memory at that point.
 * 2. Loads the corpus's documents into memory, then times normalize + pre-tokenize + encode of every
 *    document with our `Tokenizer.encode`, with our streaming stages, and with the Rust `tokenizers`
 *    library (npm `tokenizers`, a native addon) built from our `tokenizer.json`, single-threaded
 *    (`RAYON_NUM_THREADS=1`): one `encode` call at a time, checking that its ids equal ours document by
 *    document, and `encodeBatch` over 32 documents at a time. Our speed is compared with the faster.
 *
 * Prints one JSON object a line. Needs `-A` (the native addon and /proc).
 *
 * @module
 */
import { type OptionTable, parseCommandLine, runTask, usageText } from "../src/args.ts";
import { text } from "../src/arg_values.ts";
import { VOCAB_SIZE_OPTION } from "../src/data/options.ts";
import { normalizeStream } from "../src/data/normalize.ts";
import { preTokenizeStream } from "../src/data/pretokenize.ts";
import { listCorpusFiles } from "../src/data/corpus_files.ts";
import { readCorpus } from "../src/data/read.ts";
import type { TextChunk } from "../src/data/text_parser.ts";
import { Tokenizer } from "../src/data/tokenizer.ts";
import { countWordsStream, trainWordPiece, WordCounter } from "../src/data/trainer.ts";
import { encodeStream } from "../src/data/wordpiece.ts";

const DEFAULT_CORPUS = new URL("../../shared/data/corpus/gutenberg-00.jsonl.gz", import.meta.url).pathname;
const PEER = "npm:tokenizers@0.23.2";

/** The process's peak resident memory in MB (Linux's VmHWM), or the current one elsewhere. */
function peakRssMb(): number {
  try {
    const kb = /VmHWM:\s+(\d+)\s+kB/.exec(Deno.readTextFileSync("/proc/self/status"))?.[1];
    if (kb) return Number(kb) / 1024;
  } catch {
    // Not Linux: fall through to the current figure.
  }
  return Deno.memoryUsage().rss / 2 ** 20;
}

function seconds(since: number): number {
  return (performance.now() - since) / 1000;
}

function report(record: Record<string, unknown>) {
  const round = (
    v: unknown,
  ) => (typeof v === "number" && !Number.isInteger(v) ? Number(v.toPrecision(4)) : v);
  console.log(JSON.stringify(Object.fromEntries(Object.entries(record).map(([k, v]) => [k, round(v)]))));
}

const TABLE = {
  corpus: {
    value: "<path>",
    default: DEFAULT_CORPUS,
    shown: "shared/data/corpus/gutenberg-00.jsonl.gz beside the repository",
    help: "The corpus file or directory to train on and encode.",
    parse: text,
  },
  vocabSize: VOCAB_SIZE_OPTION,
} as const satisfies OptionTable;

const USAGE = `Usage: deno task bench:data [options]

Times vocabulary training and encoding of a corpus, and encoding with Hugging Face tokenizers (Rust).`;

async function main() {
  const { values, help } = parseCommandLine(TABLE, Deno.args);
  if (help) {
    console.log(usageText(USAGE, TABLE));
    return;
  }
  const files = await listCorpusFiles([values.corpus]);
  const { vocabSize } = values;

  const start = performance.now();
  const counter = new WordCounter();
  const { readable, stats } = readCorpus(files);
  await readable.pipeThrough(normalizeStream()).pipeThrough(preTokenizeStream()).pipeTo(
    countWordsStream(counter),
  );
  const counted = seconds(start);
  const mergeStart = performance.now();
  const tokenizer = new Tokenizer(trainWordPiece(counter.counts, { vocabSize }));
  report({
    stage: "train",
    corpus: values.corpus,
    text_mb: stats.textBytes / 1e6,
    words: counter.total,
    distinct_words: counter.counts.size,
    vocab_size: tokenizer.size,
    count_s: counted,
    merge_s: seconds(mergeStart),
    total_s: seconds(start),
    peak_rss_mb: peakRssMb(),
  });

  const documents: string[] = [];
  let current: string[] = [];
  for await (const chunk of readCorpus(files).readable) {
    current.push(chunk.text);
    if (chunk.end) [documents[documents.length], current] = [current.join(""), []];
  }
  const mb = documents.reduce((n, d) => n + new TextEncoder().encode(d).length, 0) / 1e6;

  let begin = performance.now();
  const ours = documents.map((d) => tokenizer.encode(d));
  let elapsed = seconds(begin);
  const tokens = ours.reduce((n, ids) => n + ids.length, 0);
  const ourRate = mb / elapsed;
  report({
    stage: "encode",
    impl: "cram Tokenizer.encode",
    documents: documents.length,
    text_mb: mb,
    tokens,
    seconds: elapsed,
    mb_per_s: ourRate,
    tokens_per_s: tokens / elapsed,
  });

  begin = performance.now();
  let streamed = 0;
  const chunks = documents.flatMap((d): TextChunk[] => {
    const pieces = [];
    for (let i = 0; i < d.length; i += 65536) {
      pieces.push({ text: d.slice(i, i + 65536), end: i + 65536 >= d.length });
    }
    return pieces;
  });
  await ReadableStream.from(chunks)
    .pipeThrough(normalizeStream())
    .pipeThrough(preTokenizeStream())
    .pipeThrough(encodeStream(tokenizer.wordPiece))
    .pipeTo(new WritableStream({ write: (c) => void (streamed += c.ids.length) }));
  elapsed = seconds(begin);
  report({
    stage: "encode",
    impl: "cram streaming stages",
    tokens: streamed,
    seconds: elapsed,
    mb_per_s: mb / elapsed,
    tokens_per_s: streamed / elapsed,
  });

  Deno.env.set("RAYON_NUM_THREADS", "1");
  const peer = await import("tokenizers");
  const rust = peer.Tokenizer.fromString(tokenizer.tokenizerJson());
  begin = performance.now();
  let peerTokens = 0;
  let identical = 0;
  for (let i = 0; i < documents.length; i++) {
    const ids = (await rust.encode(documents[i], null, { addSpecialTokens: false })).getIds();
    peerTokens += ids.length;
    if (ids.length === ours[i].length && ids.every((id: number, j: number) => id === ours[i][j])) identical++;
  }
  elapsed = seconds(begin);
  const perCallRate = mb / elapsed;
  report({
    stage: "encode",
    impl: `Hugging Face tokenizers (Rust, ${PEER}), one encode call at a time, RAYON_NUM_THREADS=1`,
    tokens: peerTokens,
    seconds: elapsed,
    mb_per_s: perCallRate,
    tokens_per_s: peerTokens / elapsed,
    documents_with_identical_ids: `${identical}/${documents.length}`,
  });

  begin = performance.now();
  peerTokens = 0;
  for (let i = 0; i < documents.length; i += 32) {
    const batch = await rust.encodeBatch(documents.slice(i, i + 32), { addSpecialTokens: false });
    for (const encoding of batch) peerTokens += encoding.getIds().length;
  }
  elapsed = seconds(begin);
  const batchRate = mb / elapsed;
  report({
    stage: "encode",
    impl: `Hugging Face tokenizers (Rust, ${PEER}), encodeBatch of 32 documents, RAYON_NUM_THREADS=1`,
    tokens: peerTokens,
    seconds: elapsed,
    mb_per_s: batchRate,
    tokens_per_s: peerTokens / elapsed,
  });
  report({
    stage: "summary",
    encode_speed_vs_faster_peer_figure: ourRate / Math.max(perCallRate, batchRate),
    target: ">= 0.5",
    peak_rss_mb: peakRssMb(),
  });
}

if (import.meta.main) await runTask(main);
