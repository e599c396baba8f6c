/**
 * A model of the GPU's queue on the host clock, for a host that must not wait on work still queued.
 *
 * Dawn's Node binding resolves a map or an `onSubmittedWorkDone` made while its work is queued only when
 * its polling loop comes round, which under Deno is late and irregular: on an H100, crammed steps of 121
 * ms GPU time each (timestamp queries), each awaited as soon as it was submitted, were seen done 7 to 1206
 * ms after they ended, while a wait made after the work had ended resolved within 0.1 ms. So the trainer
 * waits only for steps this model says are done: each step starts when it is submitted or when the one
 * before it ends, and takes the GPU time of the step last measured.
 *
 * @module
 */

/** The modeled queue. */
export interface QueueModel {
  /** Host time (ms) at which each step still in flight should end, oldest first. */
  ends: number[];
  /** GPU time of one step (ms); 0 until one has been measured. */
  stepMs: number;
  /** Host time the last step was seen done (for the estimate without GPU timestamps). */
  lastSeen?: number;
}

/** Waits start this long after a modeled end: a share of a step, plus a millisecond. */
export const PACING_MARGIN = { share: 0.15, ms: 1 };

/** A model of an empty queue. */
export function emptyQueue(): QueueModel {
  return { ends: [], stepMs: 0 };
}

/** Records a step submitted at host time `now`. */
export function submitted(q: QueueModel, now: number): void {
  q.ends.push(Math.max(now, q.ends.at(-1) ?? now) + q.stepMs);
}

/**
 * The host time after which the oldest step in flight (or all of them) should be done, margin included:
 * a wait made then should find the work finished.
 */
export function settleTime(q: QueueModel, which: "oldest" | "all"): number {
  if (q.ends.length === 0) throw new RangeError("no step in flight");
  const end = which === "oldest" ? q.ends[0] : q.ends.at(-1)!;
  return end + PACING_MARGIN.share * q.stepMs + PACING_MARGIN.ms;
}

/** A wait that took longer than this found its step still queued. */
export const LATE_WAIT_MS = 2;

/** How the oldest step in flight was seen done. */
export interface StepSeen {
  /** Host time the wait for it resolved. */
  now: number;
  /** How long that wait took. */
  waitedMs: number;
  /** Its GPU time, from timestamps; without them the spacing of completions stands in. */
  gpuMs?: number;
}

/**
 * Records that the oldest step in flight was seen done. A wait that was late (the step was still
 * queued when it began) says the step ended no earlier than the model said: the steps after it are
 * moved to end no earlier than that time plus their GPU time.
 */
export function finished(q: QueueModel, seen: StepSeen): void {
  if (q.ends.length === 0) throw new RangeError("no step in flight");
  q.ends.shift();
  if (seen.gpuMs !== undefined) {
    q.stepMs = seen.gpuMs;
  } else if (q.lastSeen !== undefined && q.ends.length > 0) {
    const spacing = seen.now - q.lastSeen;
    q.stepMs = q.stepMs > 0 ? 0.8 * q.stepMs + 0.2 * spacing : spacing;
  }
  q.lastSeen = seen.now;
  if (seen.waitedMs > LATE_WAIT_MS) {
    q.ends.forEach((end, i) => (q.ends[i] = Math.max(end, seen.now + (i + 1) * q.stepMs)));
  }
}

/**
 * Records that every step was seen done, after which the GPU may sit idle (the host reads, evaluates or
 * starts another run): the spacing from the last completion to the next is not a step's time.
 */
export function drained(q: QueueModel): void {
  if (q.ends.length > 0) throw new RangeError(`${q.ends.length} step(s) still in flight`);
  q.lastSeen = undefined;
}
