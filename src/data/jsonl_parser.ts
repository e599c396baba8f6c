/**
 * JSON Lines as documents: a state machine that decodes a line's text field as it streams past rather
 * than parsing the line whole, so memory stays bounded whatever the line's length (a line is held back
 * only until it is known to be valid JSON, and at most {@linkcode JsonlParserOptions.maxHeldChars}
 * characters of it).
 *
 * @module
 */
import { DataError, describe } from "./errors.ts";
import { type DocumentParser, PIECE_CHARS, pieces, type TextChunk } from "./text_parser.ts";

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
