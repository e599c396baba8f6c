/**
 * `deno task tokenize`: turns a raw corpus into packed token shards, training the WordPiece vocabulary
 * first unless `--vocab` gives one.
 *
 * Writes `<out>/vocab.txt`, `<out>/tokenizer.json`, `<out>/shard-00000.bin`... and, last,
 * `<out>/manifest.json`. Progress goes to stderr, the summary to stdout.
 *
 * @module
 */
import { runTask } from "../src/args.ts";
import { buildDataset, megabytes } from "../src/data/dataset.ts";
import { parseTokenizeOptions, tokenizeHelpText } from "../src/data/options.ts";

async function main(args: string[]) {
  const options = parseTokenizeOptions(args);
  if (!options) {
    console.log(tokenizeHelpText());
    return;
  }
  const { tokenizer, trained, read: stats, pack: p, tokens, unknown, shards } = await buildDataset(options);
  const kept = p.documents - p.emptyDocuments - p.droppedDocuments;
  const percent = (n: number, of: number) => `${(of > 0 ? (100 * n) / of : 0).toFixed(3)}%`;
  const filter = options.minCharsPerToken > 0
    ? `, ${p.droppedDocuments} dropped (<= ${options.minCharsPerToken} chars/token, ${p.droppedTokens} tokens)`
    : "";
  console.log(
    [
      `documents  ${p.documents} read, ${kept} kept${filter}, ${p.emptyDocuments} empty` +
      (stats.skippedDocuments > 0 ? `; the first ${stats.skippedDocuments} left out (--skip-documents)` : ""),
      `tokens     ${tokens} encoded, ${percent(unknown, tokens)} [UNK]; ` +
      `${p.sequences} sequences of ${options.seqLen} (${p.leftoverTokens} tokens left over)`,
      `text       ${megabytes(stats.textBytes)}, ${stats.invalidUtf8} invalid UTF-8 sequences replaced, ` +
      `${stats.malformedLines} malformed JSON lines skipped`,
      `vocabulary ${tokenizer.size} tokens, hash ${tokenizer.hash}${
        trained ? " (trained)" : ` (from ${options.vocab})`
      }`,
      `shards     ${shards.length} in ${options.out}: ${shards.map((s) => s.file).join(", ")}`,
    ].join("\n"),
  );
}

if (import.meta.main) await runTask(() => main(Deno.args));
