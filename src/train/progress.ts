/**
 * Progress of a training run on stderr. On a terminal: one live line, redrawn in place a few times
 * a second, with messages (new epoch, checkpoint saved, skipped step) printed above it. Otherwise
 * (a log file, CI): one plain line per metrics record, and the messages.
 */
import { formatCount } from "./plot.ts";

/** What the progress line shows. */
export interface ProgressSnapshot {
  /** Optimizer steps taken. */
  step: number;
  /** Training throughput since the last record. */
  tokensPerSecond: number;
  /** Latest loss read back from the GPU; undefined before the first. */
  loss?: number;
  /** Learning rate of the latest step. */
  lr: number;
  /** Sequences in the latest optimizer step. */
  batch: number;
  /** Seconds of the budget used. */
  usedSeconds: number;
  /** The part of the budget used, in [0, 1]. */
  fraction: number;
  /** The budget as the user gave it, e.g. "24h" or "500steps". */
  budget: string;
  /** Estimated seconds left (Infinity when unknown). */
  remainingSeconds: number;
}

/** Seconds as h:mm:ss, or m:ss under an hour; "?" when unknown. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const total = Math.max(0, Math.round(seconds));
  const [h, m, s] = [Math.floor(total / 3600), Math.floor(total / 60) % 60, total % 60];
  const two = (n: number) => String(n).padStart(2, "0");
  return h > 0 ? `${h}:${two(m)}:${two(s)}` : `${m}:${two(s)}`;
}

/** The fields of a snapshot, in display order. */
function fields(s: ProgressSnapshot): string[] {
  return [
    `step ${s.step}`,
    `${formatCount(s.tokensPerSecond)} tok/s`,
    `loss ${s.loss === undefined ? "-" : s.loss.toFixed(3)}`,
    `lr ${s.lr.toExponential(2)}`,
    `batch ${s.batch}`,
    `${formatDuration(s.usedSeconds)} of ${s.budget} (${Math.floor(s.fraction * 100)}%)`,
    `ETA ${formatDuration(s.remainingSeconds)}`,
  ];
}

/** Passes over a dataset, to one decimal below 10. */
function formatPasses(passes: number): string {
  return passes < 10 ? passes.toFixed(1) : passes.toFixed(0);
}

/**
 * The log line for the start of `epoch` (counted from 0) once `fraction` of the budget is used, with the passes
 * over the dataset the whole budget makes (how often it repeats the data): `passes` where it is known ahead (a
 * budget of steps), else projected from the pace so far (a time budget, whose tokens a second hardly change as
 * the batch ramps up).
 */
export function epochMessage(epoch: number, fraction: number, passes?: number): string {
  const line = `epoch ${epoch + 1} begins: every sequence of the dataset has been used once more`;
  const projected = passes === undefined;
  if (projected && !(fraction > 0 && fraction < 1)) return line;
  return `${line} (${Math.floor(fraction * 100)}% of the budget used; ${projected ? "at this pace " : ""}` +
    `the budget makes ${formatPasses(passes ?? epoch / fraction)} passes over it)`;
}

/** What a finished run reports at its end (the JSON summary has more). */
export interface RunEnd {
  stopped: "budget" | "interrupted" | "non-finite";
  steps: number;
  /** Tokens and budget seconds of the whole run, earlier processes of a resumed one included. */
  tokensSeen: number;
  usedSeconds: number;
  budget: string;
  finalLoss: number;
  /** Tokens in the dataset: the line gives the passes over it. */
  dataTokens: number;
}

/**
 * The end of a run in words, for the terminal: why it stopped, how far it got (tokens, passes over the data,
 * time, and their rate, all of the whole run), where its files are.
 */
export function formatRunEnd(end: RunEnd, out: string): string {
  const why = {
    budget: "the budget is used",
    interrupted: "interrupted",
    "non-finite": "stopped: gradients not finite",
  }[end.stopped];
  const loss = Number.isFinite(end.finalLoss) ? end.finalLoss.toFixed(3) : "not finite";
  const passes = formatPasses(end.tokensSeen / end.dataTokens);
  const rate = end.usedSeconds > 0 ? ` (${formatCount(end.tokensSeen / end.usedSeconds)} tok/s)` : "";
  return `${why}: ${end.steps} steps, ${
    formatCount(end.tokensSeen)
  } tokens (${passes} passes over the data) in ${
    formatDuration(end.usedSeconds)
  } of ${end.budget}${rate}, final loss ${loss}; ` +
    `${out}/: checkpoints/, metrics.jsonl, loss.svg, summary.json`;
}

/** A plain progress line. */
export function formatLine(s: ProgressSnapshot): string {
  return fields(s).join("  ");
}

/**
 * The live line: a bar of the budget used, then the fields, within `columns - 1` characters (the line must
 * never wrap). Where it does not fit, the least telling fields go first (batch, learning rate, tokens/s),
 * then the bar shrinks: the time used and the ETA stay to the last.
 */
export function formatBar(s: ProgressSnapshot, columns: number): string {
  const all = fields(s);
  const dropOrder = [4, 3, 1]; // batch, lr, tok/s
  for (const width of [20, 10, 0]) {
    for (let dropped = 0; dropped <= dropOrder.length; dropped++) {
      const gone = new Set(dropOrder.slice(0, dropped));
      const text = all.filter((_, i) => !gone.has(i)).join(" | ");
      const filled = Math.round(Math.min(1, Math.max(0, s.fraction)) * width);
      const line = width > 0 ? `[${"#".repeat(filled)}${".".repeat(width - filled)}] ${text}` : text;
      if (line.length < columns) return line;
    }
  }
  const line = all.filter((_, i) => !dropOrder.includes(i)).join(" | ");
  return line.slice(0, Math.max(0, columns - 1));
}

export interface ProgressOptions {
  /** Draw a live line (default: whether stderr is a terminal). */
  terminal?: boolean;
  /** Where text goes (default: stderr). */
  write?: (text: string) => void;
  /** Terminal width (default: the console's, 100 if unknown). */
  columns?: () => number;
  /** Clock in milliseconds (default: performance.now). */
  now?: () => number;
  /** Least time between redraws of the live line (default 250 ms). */
  intervalMs?: number;
}

const CLEAR_LINE = "\r\x1b[2K";

/** Shows a run's progress. */
export class Progress {
  readonly terminal: boolean;
  readonly #write: (text: string) => void;
  readonly #columns: () => number;
  readonly #now: () => number;
  readonly #intervalMs: number;
  #drawnAt = -Infinity;
  /** The live line on screen, redrawn after a message. */
  #bar = "";

  constructor(options: ProgressOptions = {}) {
    this.terminal = options.terminal ?? Deno.stderr.isTerminal();
    const encoder = new TextEncoder();
    this.#write = options.write ?? ((text) => {
      const bytes = encoder.encode(text);
      for (let written = 0; written < bytes.length;) {
        written += Deno.stderr.writeSync(bytes.subarray(written));
      }
    });
    this.#columns = options.columns ?? (() => {
      try {
        return Deno.consoleSize().columns || 100; // 0 from a pseudo-terminal without a size
      } catch {
        return 100;
      }
    });
    this.#now = options.now ?? (() => performance.now());
    this.#intervalMs = options.intervalMs ?? 250;
  }

  /** After every step: redraws the live line if it is due (nothing when not on a terminal). */
  update(snapshot: ProgressSnapshot): void {
    if (!this.terminal || this.#now() - this.#drawnAt < this.#intervalMs) return;
    this.#draw(snapshot);
  }

  /** At every metrics record: a plain line, or a redraw of the live line. */
  record(snapshot: ProgressSnapshot): void {
    if (this.terminal) this.#draw(snapshot);
    else this.#write(formatLine(snapshot) + "\n");
  }

  /** A message line (above the live line on a terminal). */
  message(text: string): void {
    if (this.terminal) this.#write(`${CLEAR_LINE}${text}\n${this.#bar}`);
    else this.#write(text + "\n");
  }

  /** Ends the live line so that what follows starts on a new line. */
  finish(): void {
    if (this.terminal && this.#bar !== "") this.#write("\n");
    this.#bar = "";
  }

  #draw(snapshot: ProgressSnapshot): void {
    this.#bar = formatBar(snapshot, this.#columns());
    this.#write(CLEAR_LINE + this.#bar);
    this.#drawnAt = this.#now();
  }
}
