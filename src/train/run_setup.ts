/**
 * What a pretraining run checks before it trains. Where its dataset comes from, decided before the run
 * folder is created, so that a wrong `--corpus` is a one-line error that leaves nothing behind: tokenized
 * folders given as the corpus, the run's own `data/` tokenized by an earlier start, or raw corpus files to
 * tokenize into it. That a fresh run gets an unused folder, and that no two processes train in
 * one folder at once.
 *
 * @module
 */
import { listCorpusFiles } from "../data/corpus_files.ts";
import { readManifests } from "../data/shard.ts";
import { sampleCorpus } from "../data/sample.ts";
import { exists } from "../fs.ts";
import { UsageError } from "../args.ts";

/** The dataset of a run, as {@linkcode planRunData} finds it. */
export type RunData =
  /** Tokenized folders (manifest.json and shards) given as the corpus: one dataset, theirs in this order. */
  | { kind: "dataset"; dirs: string[] }
  /** The run folder's own `data/`, complete from an earlier start (a resume does not tokenize again). */
  | { kind: "tokenized"; dir: string }
  /** Raw corpus files (checked to exist and to have a known format) to tokenize into `dir`. */
  | { kind: "raw"; dir: string; corpus: string[] };

/** Whether `path` is a tokenized dataset: a folder holding manifest.json. A file is not. */
export async function isDatasetFolder(path: string): Promise<boolean> {
  try {
    if (!(await Deno.stat(path)).isDirectory) return false;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
  return await exists(`${path.replace(/\/+$/, "")}/manifest.json`);
}

/**
 * Finds the dataset of a run from `corpus` (the paths given; none means the sample corpus that comes with
 * the install), `dir` being where the run keeps a dataset it tokenizes (`<run folder>/data`). Raw paths are
 * listed now, so that a missing or unreadable path, or a file of unknown format, fails before anything is
 * written (a `DataError` naming it). `reuse: false` (an overwriting run) tokenizes again whatever `dir` holds.
 * Tokenized folders must share a vocabulary, and cannot be mixed with raw text (it would need theirs).
 */
export async function planRunData(
  corpus: readonly string[],
  dir: string,
  options: { reuse?: boolean } = {},
): Promise<RunData> {
  const tokenized: string[] = [];
  for (const path of corpus) if (await isDatasetFolder(path)) tokenized.push(path);
  if (tokenized.length > 0 && tokenized.length === corpus.length) {
    await readManifests(corpus); // folders of two vocabularies fail here, before the run folder exists
    return { kind: "dataset", dirs: [...corpus] };
  }
  if (tokenized.length > 0) {
    const raw = corpus.find((path) => !tokenized.includes(path));
    throw new UsageError(
      `--corpus ${tokenized[0]}: a tokenized folder cannot be trained with raw text (--corpus ${raw}); ` +
        `tokenize the text with --vocab ${tokenized[0]} and give both folders, or give only raw text`,
    );
  }
  if ((options.reuse ?? true) && await exists(`${dir}/manifest.json`)) return { kind: "tokenized", dir };
  const paths = corpus.length > 0 ? [...corpus] : [await sampleCorpus()];
  await listCorpusFiles(paths);
  return { kind: "raw", dir, corpus: paths };
}

/**
 * Throws unless `out` can take a fresh run: missing, or an empty folder. A fresh run into a used folder
 * would append to its metrics and mix its checkpoints with the old run's.
 */
export async function checkFreshRunFolder(out: string): Promise<void> {
  let entries = 0;
  try {
    for await (const _ of Deno.readDir(out)) entries++;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    if (e instanceof Deno.errors.NotADirectory) {
      throw new UsageError(`--out ${out}: is a file, not a folder`);
    }
    throw e;
  }
  if (entries > 0) {
    throw new UsageError(
      `--out ${out}: the folder is not empty (an earlier run?); continue that run with --resume ${out}, ` +
        `replace it with --overwrite, or give another --out`,
    );
  }
}

/** How long {@linkcode lockRunFolder} waits for another process's lock before it gives up. */
const LOCK_WAIT_MS = 300;

/**
 * Takes the run folder's lock (`<out>/.lock`, an OS file lock, released when the process ends however
 * it ends) for as long as the returned file stays open; throws an `UsageError` if another process holds
 * it. The folder must exist.
 */
export async function lockRunFolder(out: string): Promise<Deno.FsFile> {
  const path = `${out}/.lock`;
  const file = await Deno.open(path, { read: true, write: true, create: true });
  const locked = await Promise.race([
    file.lock(true).then(() => true),
    new Promise<false>((resolve) => setTimeout(() => resolve(false), LOCK_WAIT_MS)),
  ]);
  if (!locked) {
    const holder = new TextDecoder().decode(await Deno.readFile(path)).trim();
    file.close();
    throw new UsageError(
      `${out}: another process (${
        holder || "pid unknown"
      }) is training in this folder; wait for it to end, ` +
        `or stop it (Ctrl-C saves a checkpoint)`,
    );
  }
  await file.truncate(0);
  await file.write(new TextEncoder().encode(`pid ${Deno.pid}\n`));
  return file;
}

/** What a run writes besides its dataset and tokenizer, which an overwriting run removes before it trains. */
const RUN_OUTPUTS = ["checkpoints", "metrics.jsonl", "summary.json", "loss.svg"];

/** Removes the earlier run's checkpoints, metrics, summary and loss curve from `out` (for --overwrite). */
export async function clearRunOutputs(out: string): Promise<void> {
  for (const name of RUN_OUTPUTS) {
    await Deno.remove(`${out}/${name}`, { recursive: true }).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
  }
}
