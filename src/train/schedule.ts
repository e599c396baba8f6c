/**
 * The two schedules of a cramming run, both functions of the fraction of the budget used (0 at the
 * first step, 1 when the budget is spent), so that they stretch to whatever budget is given.
 *
 * Learning rate: a one-cycle triangle. It starts at `start` times the peak, rises linearly to the
 * peak at `peakAt` of the budget, then falls linearly to zero at the end of the budget:
 *
 *     lr
 *   peak |              /\
 *        |           /     \
 *        |        /           \
 * start*peak  /                  \
 *        |                          \
 *      0 +--------------+-------------+--> fraction of budget
 *        0            peakAt          1
 *
 * The defaults (peak 1e-3, start 0.25, peakAt 0.75) are the final recipe of the Cramming authors'
 * code ("budget-triangle2": lr = peak * min(0.25 + f, 4 * (1 - f))); start 0 and peakAt 0.5 give
 * the symmetric one-cycle triangle.
 *
 * Batch size: the number of micro-batches accumulated into one optimizer step grows linearly from 1
 * at the start to the target (target batch / micro-batch) at `ramp` of the budget and stays there
 * (the authors' code reaches its target batch at 60% of the budget).
 */

/** The one-cycle learning-rate triangle. */
export interface LearningRateSchedule {
  /** The highest learning rate, reached at `peakAt`. */
  peak: number;
  /** The learning rate at the first step, as a fraction of `peak`, in [0, 1]. */
  start: number;
  /** The fraction of the budget at which the peak is reached, in [0, 1). */
  peakAt: number;
}

/** The learning rate after `fraction` of the budget (clamped to [0, 1]). */
export function learningRate(schedule: LearningRateSchedule, fraction: number): number {
  const f = Math.min(1, Math.max(0, fraction));
  const { peak, start, peakAt } = schedule;
  if (f < peakAt) return peak * (start + (1 - start) * f / peakAt);
  return peak * (1 - f) / (1 - peakAt);
}

/** The batch-size ramp, in micro-batches per optimizer step. */
export interface BatchRamp {
  /** Micro-batches per optimizer step at the full batch: target batch / micro-batch. */
  target: number;
  /** The fraction of the budget at which the full batch is reached, in [0, 1]; 0 = no ramp. */
  ramp: number;
}

/** Micro-batches to accumulate into the optimizer step that starts after `fraction` of the budget. */
export function microBatchesPerStep(schedule: BatchRamp, fraction: number): number {
  const { target, ramp } = schedule;
  if (fraction >= ramp) return target;
  return 1 + Math.floor((target - 1) * Math.max(0, fraction) / ramp);
}

/** Micro-batches that a budget of `steps` optimizer steps reads in all, its ramp included. */
export function microBatchesInSteps(schedule: BatchRamp, steps: number): number {
  let sum = 0;
  for (let step = 0; step < steps; step++) sum += microBatchesPerStep(schedule, step / steps);
  return sum;
}
