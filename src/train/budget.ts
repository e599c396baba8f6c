/**
 * The training budget: wall-clock time (the cramming setting) or a number of optimizer steps (for
 * runs that must be exactly reproducible, such as the resume test, since a wall-clock schedule
 * depends on how fast each step happened to run).
 *
 * What counts: the wall-clock time from the first training step of a process to its last,
 * checkpoint writes and logging included. What does not: everything before the first step
 * (tokenizer training, tokenizing, GPU setup, compiling kernels, loading a checkpoint) and the time
 * between a stop and its resume. A resumed run adds its time to the time saved in the checkpoint.
 */

/** A budget of wall-clock seconds or of optimizer steps. */
export type BudgetSpec = { seconds: number } | { steps: number };

const UNITS: Record<string, number> = { d: 86400, h: 3600, m: 60, s: 1 };
const DURATION = /^(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$/;

/**
 * Parses a budget: a duration such as "90s", "10m", "1.5h", "24h" or "1h30m", or a step count such
 * as "500steps". Returns undefined when `text` is neither (the caller names the option).
 */
export function parseBudget(text: string): BudgetSpec | undefined {
  const trimmed = text.trim().toLowerCase();
  const steps = /^(\d+)\s*steps?$/.exec(trimmed);
  if (steps) return { steps: Number(steps[1]) };
  const parts = DURATION.exec(trimmed);
  if (!parts || trimmed === "") return undefined;
  const [, d, h, m, s] = parts;
  const seconds = Number(d ?? 0) * UNITS.d + Number(h ?? 0) * UNITS.h + Number(m ?? 0) * UNITS.m +
    Number(s ?? 0) * UNITS.s;
  return { seconds };
}

/** Writes a budget back in the form `parseBudget` reads, e.g. "1h30m" or "500steps". */
export function formatBudget(spec: BudgetSpec): string {
  if ("steps" in spec) return `${spec.steps}steps`;
  let rest = spec.seconds;
  let text = "";
  for (const [unit, size] of Object.entries(UNITS)) {
    const whole = unit === "s" ? rest : Math.floor(rest / size);
    if (whole > 0) text += `${+whole.toFixed(3)}${unit}`;
    rest -= whole * size;
  }
  return text || "0s";
}

/** What earlier processes of a run used, and the clock. */
export interface BudgetOptions {
  /** Seconds already used by earlier processes of this run (from the checkpoint). */
  usedSeconds?: number;
  /** Optimizer steps already taken by earlier processes of this run. */
  steps?: number;
  /** The clock in seconds; `performance.now() / 1000` unless a test supplies its own. */
  clock?: () => number;
}

/** Accounts for the budget of one run across processes. */
export class Budget {
  /** The budget as given: seconds or optimizer steps. */
  readonly spec: BudgetSpec;
  readonly #usedBefore: number;
  readonly #clock: () => number;
  #startedAt: number | undefined;
  #steps: number;

  /** A budget of `spec`, continuing from what `options` say earlier processes used. */
  constructor(spec: BudgetSpec, options: BudgetOptions = {}) {
    this.spec = spec;
    this.#usedBefore = options.usedSeconds ?? 0;
    this.#steps = options.steps ?? 0;
    this.#clock = options.clock ?? (() => performance.now() / 1000);
  }

  /** Starts the clock: call right before the first training step of this process. */
  start(): void {
    this.#startedAt ??= this.#clock();
  }

  /** Counts one optimizer step (taken or skipped). */
  step(): void {
    this.#steps++;
  }

  /** Optimizer steps counted so far, earlier processes included. */
  get steps(): number {
    return this.#steps;
  }

  /** Seconds used so far, earlier processes included. */
  get usedSeconds(): number {
    return this.#usedBefore + (this.#startedAt === undefined ? 0 : this.#clock() - this.#startedAt);
  }

  /** The part of the budget used so far, in [0, 1]: what the schedules are functions of. */
  get fraction(): number {
    const used = "steps" in this.spec ? this.#steps / this.spec.steps : this.usedSeconds / this.spec.seconds;
    return Math.min(1, Math.max(0, used));
  }

  /** True once the whole budget is used. */
  get done(): boolean {
    return this.fraction >= 1;
  }

  /**
   * Estimated seconds until the budget is used: exact for a time budget, extrapolated from the
   * time per step so far for a step budget (Infinity before the first step).
   */
  get remainingSeconds(): number {
    if ("seconds" in this.spec) return Math.max(0, this.spec.seconds - this.usedSeconds);
    const fraction = this.fraction;
    if (fraction >= 1) return 0;
    return fraction === 0 ? Infinity : this.usedSeconds * (1 - fraction) / fraction;
  }
}
