/**
 * Corpus readers: plain text and JSON Lines files, either of them gzip-compressed, from files,
 * directories and several paths at once, as one stream of document pieces.
 *
 * Memory stays bounded whatever the file or line size: files are read 64 KiB at a time, and a JSON
 * line's text is decoded as it streams past rather than parsed whole (a line is held back only until
 * it is known to be valid JSON, and at most {@linkcode JsonlParserOptions.maxHeldChars} characters of
 * it).
 *
 * @module
 */
import { DataError, describe } from "./errors.ts";

/** A piece of a document's text. Documents arrive one after another; `end` marks a document's last piece. */
export interface TextChunk {
  text: string;
  end: boolean;
}

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

/** Counters a reader updates as it goes; progress displays read them while the stream runs. */
export interface ReadStats {
  /** Bytes on disk of all the files to read, and of those read so far. */
  bytesTotal: number;
  /** Bytes on disk read so far. */
  bytesRead: number;
  /** Bytes of (decompressed) text decoded so far. */
  textBytes: number;
  /** Files opened so far. */
  files: number;
  /** Documents read so far. */
  documents: number;
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
  /** Receives one line per skipped JSON line (default: none). */
  onWarning?: (message: string) => void;
  /** Counters to update (default: fresh ones, reachable through the returned object). */
  stats?: ReadStats;
}

const CORPUS_NAME = /\.(txt|jsonl|ndjson)(\.gz)?$/i;
const FORMATS = "expected .txt, .jsonl or .ndjson, optionally gzip-compressed as .gz";
/** Characters per emitted piece: large enough to amortize per-chunk work, small enough to pipeline. */
const PIECE_CHARS = 1 << 16;
const READ_BYTES = 1 << 16;

function classify(path: string): { format: CorpusFormat; gzip: boolean } | null {
  const match = CORPUS_NAME.exec(path);
  if (!match) return null;
  return { format: match[1].toLowerCase() === "txt" ? "txt" : "jsonl", gzip: match[2] !== undefined };
}

/**
 * The corpus files named by `paths`: files as given (their extension must name a format) and, under
 * directories, every corpus file in name order, recursively (hidden entries and other files skipped).
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
        if (chunk.end) stats.documents++;
        open = !chunk.end;
        yield chunk;
      }
    };
    for await (const text of decodedText(file, stats)) {
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

/** Turns decoded text into document pieces; `finish` ends the file. */
export interface DocumentParser {
  push(text: string): Iterable<TextChunk>;
  finish(): Iterable<TextChunk>;
}

/** The decoded text of one file, in pieces; checks for binary data and wraps I/O errors. */
async function* decodedText(file: CorpusFile, stats: ReadStats): AsyncGenerator<string> {
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

function* pieces(text: string): Generator<string> {
  for (let i = 0; i < text.length; i += PIECE_CHARS) yield text.slice(i, i + PIECE_CHARS);
}

async function* fileBytes(path: string, stats: ReadStats): AsyncGenerator<Uint8Array<ArrayBuffer>> {
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

/**
 * A streaming UTF-8 decoder that replaces invalid sequences with U+FFFD (as `TextDecoder` does) and
 * counts them: replacements in the output minus the encoded U+FFFD (EF BF BD) already in the input.
 */
export class Utf8Decoder {
  #decoder = new TextDecoder("utf-8");
  #replacements = 0;
  #encoded = 0;
  /** The last two input bytes, so that EF BF BD split across chunks is still seen. */
  #tail = new Uint8Array(2);
  #tailLength = 0;

  /** Invalid sequences met so far. */
  get invalid(): number {
    return this.#replacements - this.#encoded;
  }

  decode(bytes: Uint8Array): string {
    this.#countEncoded(bytes);
    return this.#count(this.#decoder.decode(bytes, { stream: true }));
  }

  /** The text held back for an incomplete final sequence (a truncated one counts as invalid). */
  finish(): string {
    return this.#count(this.#decoder.decode());
  }

  #count(text: string): string {
    for (let i = text.indexOf("\uFFFD"); i >= 0; i = text.indexOf("\uFFFD", i + 1)) this.#replacements++;
    return text;
  }

  #countEncoded(bytes: Uint8Array) {
    const n = bytes.length;
    const at = (i: number) => (i >= 0 ? bytes[i] : this.#tail[this.#tailLength + i]);
    for (let i = Math.max(-this.#tailLength, -2); i < n - 2; i++) {
      if (i >= 0) {
        i = bytes.indexOf(0xEF, i);
        if (i < 0 || i >= n - 2) break;
      }
      if (at(i) === 0xEF && at(i + 1) === 0xBF && at(i + 2) === 0xBD) this.#encoded++;
    }
    const keep = Math.min(2, n);
    if (keep === 2) this.#tail.set(bytes.subarray(n - 2));
    else if (keep === 1) this.#tail.set([this.#tail[1], bytes[n - 1]]);
    this.#tailLength = Math.min(2, this.#tailLength + n);
  }
}

export interface TextParserOptions {
  /** Documents are separated by blank lines (lines of spaces, tabs and CRs count as blank). */
  paragraphs?: boolean;
}

/** Plain text: the whole file is one document, or blank-line-separated paragraphs are. */
export class TextParser implements DocumentParser {
  readonly #paragraphs: boolean;
  /** A document is open: pieces of it went out and its end did not. */
  #open = false;
  /** The document so far has a character other than whitespace. */
  #content = false;
  /** Only spaces, tabs and CRs since the last newline. */
  #afterNewline = false;

  constructor(options: TextParserOptions = {}) {
    this.#paragraphs = options.paragraphs ?? false;
  }

  *push(text: string): Generator<TextChunk> {
    if (text.length === 0) return;
    let start = 0;
    if (this.#paragraphs) {
      for (let i = 0; i < text.length; i++) {
        const c = text.charCodeAt(i);
        if (c === 10) {
          if (this.#afterNewline && this.#content) {
            yield { text: text.slice(start, i + 1), end: true };
            start = i + 1;
            this.#content = false;
            this.#open = false;
          }
          this.#afterNewline = true;
        } else if (c !== 32 && c !== 9 && c !== 13) {
          this.#afterNewline = false;
          this.#content = true;
        }
      }
    }
    if (start < text.length) {
      this.#open = true;
      yield { text: start === 0 ? text : text.slice(start), end: false };
    }
  }

  *finish(): Generator<TextChunk> {
    if (this.#open) yield { text: "", end: true };
    this.#open = this.#content = this.#afterNewline = false;
  }
}

export interface JsonlParserOptions {
  /** The file's name, for messages. */
  name: string;
  /** The field holding the text (default `text`). */
  field?: string;
  /** Throw a `DataError` on a malformed line instead of skipping it. */
  strict?: boolean;
  /** Receives `file:line: why` for each skipped line. */
  onMalformed?: (message: string) => void;
  /**
   * Characters of a line's text held until the line is known to be valid (default 2^22). A longer
   * text is passed on as it streams; if its line then turns out malformed, the document is ended
   * where it was cut and the warning says so.
   */
  maxHeldChars?: number;
}

const enum Json {
  LineStart,
  KeyOrClose,
  KeyStart,
  Key,
  Colon,
  Value,
  Text,
  Other,
  CommaOrClose,
  AfterObject,
  Skip,
}

const enum Other {
  Primitive,
  String,
  Container,
}

const MAX_KEY_CHARS = 1024;
const MAX_OTHER_CHARS = 1 << 20;

/**
 * JSON Lines, one object a line, its text field decoded as it streams past. Other fields are checked
 * with `JSON.parse` (each at most 1 MiB). A line that is not a JSON object, has no string text field,
 * or goes on after its object is malformed. A second text field in a line is ignored.
 */
export class JsonlParser implements DocumentParser {
  readonly #name: string;
  readonly #field: string;
  readonly #strict: boolean;
  readonly #onMalformed: (message: string) => void;
  readonly #maxHeld: number;
  #state = Json.LineStart;
  /** 1-based number of the line being read. */
  #line = 1;
  #key = "";
  /** Raw JSON of the key or non-text value being scanned. */
  #raw: string[] = [];
  #rawChars = 0;
  #other = Other.Primitive;
  #otherStarted = false;
  #inString = false;
  #depth = 0;
  /** Escape sequence in progress inside a string: `\`, `\u`, `\u0`... (empty when none). */
  #escape = "";
  #hasText = false;
  /** This line's decoded text, held until the line is known to be valid. */
  #held: string[] = [];
  #heldChars = 0;
  /** Characters of this line's text already passed on (it outgrew `maxHeldChars`). */
  #passed = 0;

  constructor(options: JsonlParserOptions) {
    this.#name = options.name;
    this.#field = options.field ?? "text";
    this.#strict = options.strict ?? false;
    this.#onMalformed = options.onMalformed ?? (() => {});
    this.#maxHeld = options.maxHeldChars ?? 1 << 22;
  }

  *push(text: string): Generator<TextChunk> {
    const n = text.length;
    let i = 0;
    while (i < n) {
      const state = this.#state;
      if (state === Json.Text) {
        i = yield* this.#scanText(text, i);
        continue;
      }
      if (state === Json.Key) {
        i = yield* this.#scanKey(text, i);
        continue;
      }
      if (state === Json.Other) {
        i = yield* this.#scanOther(text, i);
        continue;
      }
      if (state === Json.Skip) {
        const newline = text.indexOf("\n", i);
        if (newline < 0) return;
        this.#line++;
        this.#state = Json.LineStart;
        i = newline + 1;
        continue;
      }
      const c = text.charCodeAt(i++);
      if (c === 32 || c === 9 || c === 13) continue;
      if (c === 10) {
        if (state === Json.AfterObject) yield* this.#endLine();
        else if (state !== Json.LineStart) {
          yield* this.#malformed("the line ends inside the object", true);
          continue;
        }
        this.#line++;
        continue;
      }
      switch (state) {
        case Json.LineStart:
          if (c === 0x7B) this.#startObject();
          else yield* this.#malformed(`expected '{', found ${show(c)}`);
          break;
        case Json.KeyOrClose:
        case Json.KeyStart:
          if (c === 0x22) this.#startRaw(Json.Key);
          else if (c === 0x7D && state === Json.KeyOrClose) this.#state = Json.AfterObject;
          else yield* this.#malformed(`expected a field name, found ${show(c)}`);
          break;
        case Json.Colon:
          if (c === 0x3A) this.#state = Json.Value;
          else yield* this.#malformed(`expected ':' after "${this.#key}", found ${show(c)}`);
          break;
        case Json.Value:
          if (c === 0x22 && this.#key === this.#field && !this.#hasText) {
            this.#state = Json.Text;
            this.#escape = "";
          } else {
            this.#startRaw(Json.Other);
            i--;
          }
          break;
        case Json.CommaOrClose:
          if (c === 0x2C) this.#state = Json.KeyStart;
          else if (c === 0x7D) this.#state = Json.AfterObject;
          else yield* this.#malformed(`expected ',' or '}', found ${show(c)}`);
          break;
        case Json.AfterObject:
          yield* this.#malformed(`${show(c)} after the closing '}'`);
          break;
      }
    }
  }

  *finish(): Generator<TextChunk> {
    if (this.#state === Json.AfterObject) yield* this.#endLine();
    else if (this.#state !== Json.LineStart && this.#state !== Json.Skip) {
      yield* this.#malformed("the file ends inside the line");
    }
    this.#state = Json.LineStart;
    this.#line = 1;
  }

  #startObject() {
    this.#state = Json.KeyOrClose;
    this.#hasText = false;
    this.#held = [];
    this.#heldChars = 0;
    this.#passed = 0;
  }

  #startRaw(state: Json.Key | Json.Other) {
    this.#state = state;
    this.#raw = [];
    this.#rawChars = 0;
    this.#otherStarted = false;
    this.#inString = false;
    this.#depth = 0;
    this.#escape = "";
  }

  /** Scans a field name up to its closing quote; returns the next index. */
  *#scanKey(text: string, i: number): Generator<TextChunk, number> {
    const n = text.length;
    const start = i;
    for (; i < n; i++) {
      const c = text.charCodeAt(i);
      if (this.#escape) this.#escape = "";
      else if (c === 0x5C) this.#escape = "\\";
      else if (c === 0x22) break;
      else if (c === 10) {
        yield* this.#malformed("the line ends inside a field name", true);
        return i + 1;
      }
    }
    this.#raw.push(text.slice(start, i));
    this.#rawChars += i - start;
    if (this.#rawChars > MAX_KEY_CHARS) {
      yield* this.#malformed(`a field name longer than ${MAX_KEY_CHARS} characters`);
      return i;
    }
    if (i === n) return n;
    try {
      this.#key = JSON.parse(`"${this.#raw.join("")}"`);
      this.#state = Json.Colon;
    } catch (e) {
      yield* this.#malformed(`bad field name (${describe(e)})`);
    }
    return i + 1;
  }

  /** Decodes the text field up to its closing quote, holding the text or passing it on. */
  *#scanText(text: string, i: number): Generator<TextChunk, number> {
    const n = text.length;
    let start = i;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (this.#escape) {
        this.#escape += text[i++];
        const decoded = decodeEscape(this.#escape);
        if (decoded === null) {
          yield* this.#malformed(`bad escape ${JSON.stringify(this.#escape)} in "${this.#field}"`, c === 10);
          return i;
        }
        if (decoded !== "") {
          yield* this.#hold(decoded);
          this.#escape = "";
        }
        start = i;
      } else if (c === 0x5C || c === 0x22 || c < 0x20) {
        if (i > start) yield* this.#hold(text.slice(start, i));
        i++;
        if (c === 0x22) {
          this.#hasText = true;
          this.#state = Json.CommaOrClose;
          return i;
        }
        if (c < 0x20) {
          const why = c === 10 ? "the line ends inside" : `raw control character ${show(c)} in`;
          yield* this.#malformed(`${why} "${this.#field}"`, c === 10);
          return i;
        }
        this.#escape = "\\";
        start = i;
      } else i++;
    }
    if (i > start) yield* this.#hold(text.slice(start, i));
    return n;
  }

  *#hold(piece: string): Generator<TextChunk> {
    this.#held.push(piece);
    this.#heldChars += piece.length;
    if (this.#heldChars >= this.#maxHeld) {
      const text = this.#held.join("");
      this.#held = [];
      this.#heldChars = 0;
      this.#passed += text.length;
      for (const piece of pieces(text)) yield { text: piece, end: false };
    }
  }

  /** Scans a value other than the text; returns the next index (a number's delimiter is not consumed). */
  *#scanOther(text: string, i: number): Generator<TextChunk, number> {
    const n = text.length;
    if (!this.#otherStarted) {
      this.#otherStarted = true;
      const c = text.charCodeAt(i);
      this.#other = c === 0x22 ? Other.String : c === 0x7B || c === 0x5B ? Other.Container : Other.Primitive;
    }
    const start = i;
    let end = -1;
    for (; i < n && end < 0; i++) {
      const c = text.charCodeAt(i);
      if (this.#other === Other.Primitive) {
        if (isDelimiter(c)) end = i;
        continue;
      }
      if (c === 10) {
        yield* this.#malformed(`the line ends inside the value of "${this.#key}"`, true);
        return i + 1;
      }
      if (this.#inString) {
        if (this.#escape) this.#escape = "";
        else if (c === 0x5C) this.#escape = "\\";
        else if (c === 0x22) {
          this.#inString = false;
          if (this.#depth === 0) end = i + 1;
        }
      } else if (c === 0x22) this.#inString = true;
      else if (c === 0x7B || c === 0x5B) this.#depth++;
      else if ((c === 0x7D || c === 0x5D) && --this.#depth === 0) end = i + 1;
    }
    const stop = end >= 0 ? end : n;
    this.#raw.push(text.slice(start, stop));
    this.#rawChars += stop - start;
    if (this.#rawChars > MAX_OTHER_CHARS) {
      yield* this.#malformed(`the value of "${this.#key}" is longer than ${MAX_OTHER_CHARS} characters`);
      return stop;
    }
    if (end < 0) return n;
    let value: unknown;
    try {
      value = JSON.parse(this.#raw.join(""));
    } catch (e) {
      yield* this.#malformed(`bad value of "${this.#key}" (${describe(e)})`);
      return end;
    }
    this.#raw = [];
    if (this.#key === this.#field && !this.#hasText) {
      yield* this.#malformed(`"${this.#field}" is ${value === null ? "null" : typeof value}, not a string`);
    } else this.#state = Json.CommaOrClose;
    return end;
  }

  /** A complete, valid line: its text is one document. */
  *#endLine(): Generator<TextChunk> {
    this.#state = Json.LineStart;
    if (!this.#hasText) {
      this.#report(`no string field "${this.#field}"`);
      return;
    }
    const text = this.#held.join("");
    this.#held = [];
    this.#heldChars = 0;
    if (text.length === 0) yield { text: "", end: true };
    for (let i = 0; i < text.length; i += PIECE_CHARS) {
      yield { text: text.slice(i, i + PIECE_CHARS), end: i + PIECE_CHARS >= text.length };
    }
  }

  /** Reports the line and skips the rest of it (`atNewline`: the line already ended). */
  *#malformed(why: string, atNewline = false): Generator<TextChunk> {
    this.#report(why);
    this.#held = [];
    this.#heldChars = 0;
    this.#raw = [];
    this.#escape = "";
    if (this.#passed > 0) {
      this.#passed = 0;
      yield { text: "", end: true };
    }
    if (atNewline) {
      this.#line++;
      this.#state = Json.LineStart;
    } else this.#state = Json.Skip;
  }

  #report(why: string) {
    const message = `${this.#name}:${this.#line}: malformed JSON line (${why})`;
    if (this.#strict) throw new DataError(message);
    const cut = this.#passed > 0
      ? `; its first ${this.#passed} characters of text were already used and the document ends there`
      : "";
    this.#onMalformed(`${message}; line skipped${cut}`);
  }
}

/** The character of a complete JSON escape (`\n`, `\u00e9`...), "" while incomplete, null if invalid. */
function decodeEscape(escape: string): string | null {
  if (escape.length === 2) {
    const simple = SIMPLE_ESCAPES[escape[1]];
    return simple === undefined ? null : simple;
  }
  const c = escape.charCodeAt(escape.length - 1);
  const hex = (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
  if (!hex) return null;
  return escape.length === 6 ? String.fromCharCode(parseInt(escape.slice(2), 16)) : "";
}

const SIMPLE_ESCAPES: Record<string, string> = {
  '"': '"',
  "\\": "\\",
  "/": "/",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
  u: "",
};

function isDelimiter(c: number): boolean {
  return c === 0x2C || c === 0x7D || c === 0x5D || c === 32 || c === 9 || c === 13 || c === 10;
}

function show(c: number): string {
  return c >= 0x21 && c <= 0x7E
    ? `'${String.fromCharCode(c)}'`
    : `U+${c.toString(16).toUpperCase().padStart(4, "0")}`;
}
