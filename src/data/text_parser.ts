/**
 * Documents as a stream of text pieces, the parser interface that turns a file's decoded text into them,
 * and the plain-text parser.
 *
 * @module
 */

/** A piece of a document's text. Documents arrive one after another; `end` marks a document's last piece. */
export interface TextChunk {
  text: string;
  end: boolean;
}

/** Characters per emitted piece: large enough to amortize per-chunk work, small enough to pipeline. */
export const PIECE_CHARS = 1 << 16;

/** `text` cut into pieces of at most {@linkcode PIECE_CHARS} characters. */
export function* pieces(text: string): Generator<string> {
  for (let i = 0; i < text.length; i += PIECE_CHARS) yield text.slice(i, i + PIECE_CHARS);
}

/** Turns decoded text into document pieces; `finish` ends the file. */
export interface DocumentParser {
  push(text: string): Iterable<TextChunk>;
  finish(): Iterable<TextChunk>;
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
