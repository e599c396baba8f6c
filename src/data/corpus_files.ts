/**
 * Finding a corpus's files: plain text and JSON Lines, either gzip-compressed, from files, directories
 * and several paths at once.
 *
 * @module
 */
import { DataError, describe } from "./errors.ts";

/** `txt`: a file is one document (or blank-line-separated documents); `jsonl`: one JSON object a line. */
export type CorpusFormat = "txt" | "jsonl";

/** A corpus file found by {@linkcode listCorpusFiles}. */
export interface CorpusFile {
  /** The file's path, as listed. */
  path: string;
  /** How its documents are laid out: plain text or JSON Lines. */
  format: CorpusFormat;
  /** Whether it is gzip-compressed (`.gz`). */
  gzip: boolean;
  /** Size on disk in bytes (compressed size for `.gz`). */
  size: number;
}

const CORPUS_NAME = /\.(txt|jsonl|ndjson)(\.gz)?$/i;
const FORMATS = "expected .txt, .jsonl or .ndjson, optionally gzip-compressed as .gz";

function classify(path: string): { format: CorpusFormat; gzip: boolean } | null {
  const match = CORPUS_NAME.exec(path);
  if (!match) return null;
  return { format: match[1].toLowerCase() === "txt" ? "txt" : "jsonl", gzip: match[2] !== undefined };
}

/**
 * The corpus files named by `paths`: files as given (their extension must name a format) and, under
 * directories, every corpus file in name order, recursively (hidden entries and other files skipped).
 * A directory holding a tokenized dataset (manifest.json) is an error: its vocab.txt is not text to learn.
 */
export async function listCorpusFiles(paths: readonly string[]): Promise<CorpusFile[]> {
  if (paths.length === 0) throw new DataError("no corpus given: pass one or more files or directories");
  const files: CorpusFile[] = [];
  const add = (path: string, size: number, explicit: boolean) => {
    const kind = classify(path);
    if (kind) files.push({ path, size, ...kind });
    else if (explicit) throw new DataError(`corpus file ${path}: unknown format (${FORMATS})`);
  };
  const walk = async (dir: string) => {
    const entries: Deno.DirEntry[] = [];
    try {
      for await (const entry of Deno.readDir(dir)) if (!entry.name.startsWith(".")) entries.push(entry);
    } catch (e) {
      throw new DataError(`cannot read corpus directory ${dir}: ${describe(e)}`);
    }
    if (entries.some((entry) => entry.isFile && entry.name === "manifest.json")) {
      throw new DataError(
        `corpus directory ${dir} holds a tokenized dataset (manifest.json), not raw text; ` +
          `pretrain takes it as a --corpus of its own`,
      );
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const path = `${dir}/${entry.name}`;
      const info = await statPath(path);
      if (info.isDirectory) await walk(path);
      else if (info.isFile) add(path, info.size, false);
    }
  };
  for (const path of paths) {
    const info = await statPath(path);
    if (info.isDirectory) await walk(path.replace(/\/+$/, "") || "/");
    else add(path, info.size, true);
  }
  if (files.length === 0) throw new DataError(`no corpus files in ${paths.join(", ")} (${FORMATS})`);
  return files;
}

async function statPath(path: string): Promise<Deno.FileInfo> {
  try {
    return await Deno.stat(path);
  } catch (e) {
    throw new DataError(`corpus path ${path}: ${describe(e)}`);
  }
}
