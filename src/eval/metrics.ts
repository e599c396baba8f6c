/**
 * GLUE's metrics, as GLUE (and scikit-learn / SciPy, which its scripts call) define them, plus the
 * median over seeds and the GLUE average of the Cramming recipe. Scores are fractions (accuracy 0.9,
 * correlations in [-1, 1]); the report turns them into percentages.
 *
 * @module
 */

/** The metrics GLUE reports. */
export type MetricName = "matthews" | "f1" | "accuracy" | "pearson" | "spearman";

/** Each metric of a dev set by name. */
export type Scores = Partial<Record<MetricName, number>>;

/** Fraction of predictions equal to their label. */
export function accuracy(predictions: ArrayLike<number>, labels: ArrayLike<number>): number {
  checkPaired("accuracy", predictions, labels);
  let correct = 0;
  for (let i = 0; i < labels.length; i++) if (predictions[i] === labels[i]) correct++;
  return correct / labels.length;
}

/** F1 of the positive class (label 1), as scikit-learn's binary default: 0 when it has no true positive. */
export function f1(predictions: ArrayLike<number>, labels: ArrayLike<number>): number {
  checkPaired("f1", predictions, labels);
  let tp = 0, fp = 0, fn = 0;
  for (let i = 0; i < labels.length; i++) {
    if (predictions[i] === 1 && labels[i] === 1) tp++;
    else if (predictions[i] === 1) fp++;
    else if (labels[i] === 1) fn++;
  }
  return tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
}

/**
 * Matthews correlation in scikit-learn's multiclass form (equal to (TP TN - FP FN) / sqrt(...) for two
 * classes); 0 when either side predicts a single class, where the formula divides by zero.
 */
export function matthewsCorrelation(predictions: ArrayLike<number>, labels: ArrayLike<number>): number {
  checkPaired("matthewsCorrelation", predictions, labels);
  const n = labels.length;
  const predicted = new Map<number, number>();
  const actual = new Map<number, number>();
  let correct = 0;
  for (let i = 0; i < n; i++) {
    predicted.set(predictions[i], (predicted.get(predictions[i]) ?? 0) + 1);
    actual.set(labels[i], (actual.get(labels[i]) ?? 0) + 1);
    if (predictions[i] === labels[i]) correct++;
  }
  let crossed = 0; // sum over classes of predicted count * actual count
  for (const [label, count] of predicted) crossed += count * (actual.get(label) ?? 0);
  let predictedSquares = 0, actualSquares = 0;
  for (const count of predicted.values()) predictedSquares += count * count;
  for (const count of actual.values()) actualSquares += count * count;
  const denominator = Math.sqrt((n * n - predictedSquares) * (n * n - actualSquares));
  return denominator === 0 ? 0 : (correct * n - crossed) / denominator;
}

/** Pearson's correlation coefficient; NaN when either side is constant. */
export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number {
  checkPaired("pearson", x, y);
  const n = x.length;
  let meanX = 0, meanY = 0;
  for (let i = 0; i < n; i++) {
    meanX += x[i] / n;
    meanY += y[i] / n;
  }
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (x[i] - meanX) * (y[i] - meanY);
    sxx += (x[i] - meanX) ** 2;
    syy += (y[i] - meanY) ** 2;
  }
  return sxy / Math.sqrt(sxx * syy);
}

/** Spearman's rank correlation: Pearson's of the ranks, tied values sharing their average rank. */
export function spearman(x: ArrayLike<number>, y: ArrayLike<number>): number {
  checkPaired("spearman", x, y);
  return pearson(averageRanks(x), averageRanks(y));
}

/** 1-based ranks; a run of equal values gets the mean of the ranks it spans (SciPy's "average"). */
export function averageRanks(values: ArrayLike<number>): Float64Array {
  const order = Array.from({ length: values.length }, (_, i) => i).sort((i, j) => values[i] - values[j]);
  const ranks = new Float64Array(values.length);
  for (let start = 0; start < order.length;) {
    let end = start + 1;
    while (end < order.length && values[order[end]] === values[order[start]]) end++;
    const rank = (start + 1 + end) / 2; // mean of ranks start+1 .. end
    for (let i = start; i < end; i++) ranks[order[i]] = rank;
    start = end;
  }
  return ranks;
}

/** Computes `metrics` of predicted labels (or regression values) against the true ones. */
export function computeScores(
  metrics: readonly MetricName[],
  predictions: ArrayLike<number>,
  labels: ArrayLike<number>,
): Scores {
  const scores: Scores = {};
  for (const metric of metrics) scores[metric] = METRICS[metric](predictions, labels);
  return scores;
}

const METRICS: Record<MetricName, (p: ArrayLike<number>, l: ArrayLike<number>) => number> = {
  matthews: matthewsCorrelation,
  f1,
  accuracy,
  pearson,
  spearman,
};

/**
 * Predictions from row-major logits [rows, outputs]: the argmax (first on ties) for a classifier, the
 * value itself for a regression head (one output).
 */
export function predictionsFromLogits(logits: ArrayLike<number>, outputs: number): Float64Array {
  if (outputs < 1 || logits.length % outputs !== 0) {
    throw new RangeError(`logits: ${logits.length} values do not split into rows of ${outputs}`);
  }
  const rows = logits.length / outputs;
  const predictions = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    if (outputs === 1) {
      predictions[r] = logits[r];
      continue;
    }
    let best = 0;
    for (let c = 1; c < outputs; c++) if (logits[r * outputs + c] > logits[r * outputs + best]) best = c;
    predictions[r] = best;
  }
  return predictions;
}

/** The median; for an even count the mean of the two middle values. */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError("median of no values");
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** A GLUE average and the dev sets it covers. */
export interface GlueAverage {
  average: number;
  covered: string[];
}

/**
 * The GLUE average as the Cramming recipe computes it: the plain mean of one score per dev set, WNLI
 * left out and MNLI's matched and mismatched sets counted as two. `scores` maps dev set names ("MNLI-m",
 * "CoLA", ...) to their main score; only the sets present are averaged, and `covered` lists them.
 */
export function glueAverage(scores: Readonly<Record<string, number>>): GlueAverage {
  const covered = Object.keys(scores).filter((name) => name !== "WNLI");
  if (covered.length === 0) return { average: NaN, covered };
  let sum = 0;
  for (const name of covered) sum += scores[name];
  return { average: sum / covered.length, covered };
}

function checkPaired(what: string, a: ArrayLike<number>, b: ArrayLike<number>): void {
  if (a.length !== b.length) throw new RangeError(`${what}: ${a.length} predictions for ${b.length} labels`);
  if (a.length === 0) throw new RangeError(`${what}: no examples`);
}
