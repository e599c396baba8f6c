/**
 * The float64 reference of the optimizer step: global-norm gradient clipping and AdamW, exactly as
 * torch.nn.utils.clip_grad_norm_ and torch.optim.AdamW compute them, and torch.amp.GradScaler's
 * dynamic loss scale.
 *
 * @module
 */
import type { LossScaleState } from "../model/loss_scale.ts";

/** The L2 norm over all elements of all gradient tensors. */
export function globalNorm(grads: ArrayLike<number>[]): number {
  let sum = 0;
  for (const g of grads) {
    for (let i = 0; i < g.length; i++) sum += g[i] * g[i];
  }
  return Math.sqrt(sum);
}

/** The factor gradients are multiplied by: min(1, maxNorm / (norm + 1e-6)), as clip_grad_norm_. */
export function clipFactor(norm: number, maxNorm: number): number {
  return Math.min(1, maxNorm / (norm + 1e-6));
}

/** Hyperparameters of one AdamW step; `step` counts from 1 (bias correction). */
export interface AdamwOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  step: number;
}

/**
 * One AdamW step in place: decoupled decay param *= 1 - lr wd, then the moments, then
 * param -= lr * mhat / (sqrt(vhat) + eps) with bias-corrected mhat and vhat.
 */
export function adamwStep(
  param: Float64Array,
  grad: ArrayLike<number>,
  m: Float64Array,
  v: Float64Array,
  options: AdamwOptions,
): void {
  const { lr, beta1, beta2, eps, weightDecay, step } = options;
  if (!(Number.isInteger(step) && step >= 1)) {
    throw new RangeError(`adamwStep: step must be >= 1, got ${step}`);
  }
  const n = param.length;
  if (grad.length !== n || m.length !== n || v.length !== n) {
    throw new RangeError(
      `adamwStep: param, grad, m, v lengths differ (${n}, ${grad.length}, ${m.length}, ${v.length})`,
    );
  }
  const correction1 = 1 - beta1 ** step;
  const correction2 = 1 - beta2 ** step;
  for (let i = 0; i < n; i++) {
    const g = grad[i];
    param[i] *= 1 - lr * weightDecay;
    m[i] = beta1 * m[i] + (1 - beta1) * g;
    v[i] = beta2 * v[i] + (1 - beta2) * g * g;
    param[i] -= lr * (m[i] / correction1) / (Math.sqrt(v[i] / correction2) + eps);
  }
}

/**
 * torch.amp.GradScaler's update after a step with the default factors: a non-finite step halves the
 * scale; `growthInterval` finite steps in a row double it, unless that overflows f32 (the scale stays).
 * Either change restarts the count of good steps.
 */
export function updateLossScale(
  state: LossScaleState,
  finite: boolean,
  growthInterval: number,
): LossScaleState {
  if (!finite) return { scale: state.scale * 0.5, goodSteps: 0 };
  const goodSteps = state.goodSteps + 1;
  if (goodSteps < growthInterval) return { scale: state.scale, goodSteps };
  const grown = Math.fround(state.scale * 2);
  return { scale: Number.isFinite(grown) ? grown : state.scale, goodSteps: 0 };
}
