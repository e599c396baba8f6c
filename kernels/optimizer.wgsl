// The optimizer step, all on the GPU: the gradients' global L2 norm and clip factor, AdamW, and the
// zeroing of the gradients before an accumulation.
//
// Parameters, gradients and the AdamW moments are flat f32 buffers of one layout (src/model/params.ts),
// read as vec4. Reductions use fixed trees and fixed sequences, never atomics: bit-identical every run.
// With a loss scale the gradients carry it: the norm step divides it out of the norm and of the clip
// factor it leaves for AdamW, and may adjust it (grad_norm_finish_scaled).
// Elementwise kernels take one vec4 per invocation on a grid that is 2-D when one dimension's 65535
// workgroups are not enough (the flat workgroup id is wid.y * nwg.x + wid.x).

// Invocations per workgroup; a power of two (tree reduction).
override WG: u32 = 256;
// vec4s per chunk of the weight-decay table: tensors start on 64-element boundaries, so a 64-element
// chunk belongs to one tensor.
override DECAY_CHUNK4: u32 = 16;

// What the norm step leaves for AdamW and for the host, which reads it every N steps.
struct Stats {
  // The global L2 norm of the gradients (of the unscaled gradients, with a loss scale).
  norm: f32,
  // What AdamW multiplies the stored gradients by: clip_factor, divided by the loss scale they carry.
  clip: f32,
  // 1 when the norm is NaN or infinite: AdamW leaves params and moments untouched this step.
  nonfinite: u32,
  // Steps skipped so far.
  skipped: u32,
  // min(1, max_norm / (norm + 1e-6)) as torch.nn.utils.clip_grad_norm_; 0 when the step is skipped.
  clip_factor: f32,
  // The loss scale the next step's gradients carry (after this step's update); 1 without loss scaling.
  loss_scale: f32,
}

// grad_norm_finish_scaled adjusts the loss scale as torch.amp.GradScaler: halved on a non-finite norm,
// doubled after GROWTH_INTERVAL finite steps in a row (factors of 2 scale the gradients exactly).
override DYNAMIC_SCALE: bool = false;
override GROWTH_INTERVAL: u32 = 2000;

struct NormShape {
  // vec4s of gradients.
  length4: u32,
  // Workgroups of grad_sum_squares = number of partial sums.
  partials: u32,
  max_norm: f32,
}

@group(0) @binding(0) var<uniform> norm_shape: NormShape;

// grad_sum_squares, stage 1 of the norm: each of a fixed number of workgroups sums the squares of a
// fixed, strided share of the gradients into partials[workgroup].
@group(0) @binding(1) var<storage, read> sq_grads: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> sq_partials: array<f32>;

@compute @workgroup_size(WG)
fn grad_sum_squares(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  var s = 0.0;
  for (var i = wid.x * WG + lid; i < norm_shape.length4; i += norm_shape.partials * WG) {
    let g = sq_grads[i];
    s += dot(g, g);
  }
  let total = workgroup_sum(s, lid);
  if (lid == 0u) {
    sq_partials[wid.x] = total;
  }
}

// grad_norm_finish, stage 2, one workgroup: norm, clip factor, the non-finite flag and the skip count.
@group(0) @binding(1) var<storage, read> fin_partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> fin_stats: Stats;
// grad_norm_finish_scaled: the loss scale the gradients carry, divided out (and adjusted when dynamic).
@group(0) @binding(3) var<storage, read_write> fin_loss_scale: LossScale;

// The sum of the partial sums (workgroup_sum: the loader adds a variant of it).
fn sum_of_squares(lid: u32) -> f32 {
  var s = 0.0;
  for (var i = lid; i < norm_shape.partials; i += WG) {
    s += fin_partials[i];
  }
  return workgroup_sum(s, lid);
}

// NaN and infinity are the f32s with all exponent bits set; tested on the bits because WGSL lets
// compilers assume float comparisons never see them.
fn is_nonfinite(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u;
}

// The clip factor of a global norm; 0 when the step is skipped.
fn clip_factor(norm: f32, nonfinite: bool) -> f32 {
  return select(min(1.0, norm_shape.max_norm / (norm + 1e-6)), 0.0, nonfinite);
}

// `clip` is what AdamW applies to the stored gradients, `factor` the clip factor of the unscaled ones.
fn write_stats(norm: f32, clip: f32, factor: f32, nonfinite: bool, loss_scale: f32) {
  fin_stats.norm = norm;
  fin_stats.clip = clip;
  fin_stats.nonfinite = u32(nonfinite);
  fin_stats.skipped += u32(nonfinite);
  fin_stats.clip_factor = factor;
  fin_stats.loss_scale = loss_scale;
}

@compute @workgroup_size(WG)
fn grad_norm_finish(@builtin(local_invocation_index) lid: u32) {
  let total = sum_of_squares(lid);
  if (lid == 0u) {
    let norm = sqrt(total);
    let nonfinite = is_nonfinite(norm);
    let factor = clip_factor(norm, nonfinite);
    write_stats(norm, factor, factor, nonfinite, 1.0);
  }
}

@compute @workgroup_size(WG)
fn grad_norm_finish_scaled(@builtin(local_invocation_index) lid: u32) {
  let total = sum_of_squares(lid);
  if (lid == 0u) {
    let scale = fin_loss_scale.scale;
    // Tested after the division: a scale that underflowed to 0 skips the step too.
    let norm = sqrt(total) / scale;
    let nonfinite = is_nonfinite(norm);
    let factor = clip_factor(norm, nonfinite);
    var next = scale;
    if (DYNAMIC_SCALE) {
      next = update_loss_scale(scale, nonfinite);
    }
    write_stats(norm, factor / scale, factor, nonfinite, next);
  }
}

// GradScaler's update (torch._amp_update_scale_): on a non-finite step the scale halves; otherwise one
// more good step, and at GROWTH_INTERVAL of them the scale doubles unless that overflows. Either change
// restarts the count. Returns the new scale.
fn update_loss_scale(scale: f32, nonfinite: bool) -> f32 {
  var next = scale;
  var good = fin_loss_scale.good_steps + 1u;
  if (nonfinite) {
    next = scale * 0.5;
    good = 0u;
  } else if (good >= GROWTH_INTERVAL) {
    let grown = scale * 2.0;
    next = select(grown, scale, is_nonfinite(grown));
    good = 0u;
  }
  fin_loss_scale.scale = next;
  fin_loss_scale.good_steps = good;
  return next;
}

struct AdamwConfig {
  length4: u32,
  beta1: f32,
  // 1 - beta1 rounded once from the exact value, as torch passes it: 1 - f32(0.98) would be 1e-6 off.
  one_minus_beta1: f32,
  beta2: f32,
  one_minus_beta2: f32,
  eps: f32,
  weight_decay: f32,
}

// Written by the host before each submit (queue.writeBuffer), never baked in at plan time.
struct AdamwStep {
  lr: f32,
  // Counts from 1; sets the bias corrections 1 - beta^step.
  step: u32,
}

// adamw: torch.optim.AdamW on clipped gradients:
//   g = grad * clip; param *= 1 - lr * wd (decayed tensors only);
//   m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2;
//   param -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps).
@group(0) @binding(0) var<uniform> adamw_config: AdamwConfig;
@group(0) @binding(1) var<uniform> adamw_step: AdamwStep;
@group(0) @binding(2) var<storage, read> adamw_stats: Stats;
// One flag per 64-element chunk: 1 where weight decay applies.
@group(0) @binding(3) var<storage, read> adamw_decay: array<u32>;
@group(0) @binding(4) var<storage, read> adamw_grads: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> adamw_params: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> adamw_m: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> adamw_v: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn adamw(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = flat_index(wid, nwg, lid, WG);
  if (i >= adamw_config.length4 || adamw_stats.nonfinite != 0u) {
    return;
  }
  let c = adamw_config;
  let lr = adamw_step.lr;
  let t = f32(adamw_step.step);
  let step_size = lr / (1.0 - pow(c.beta1, t));
  let correction2_sqrt = sqrt(1.0 - pow(c.beta2, t));
  let g = adamw_grads[i] * adamw_stats.clip;
  let decay = select(1.0, 1.0 - lr * c.weight_decay, adamw_decay[i / DECAY_CHUNK4] != 0u);
  let m = c.beta1 * adamw_m[i] + c.one_minus_beta1 * g;
  let v = c.beta2 * adamw_v[i] + c.one_minus_beta2 * g * g;
  adamw_m[i] = m;
  adamw_v[i] = v;
  adamw_params[i] = adamw_params[i] * decay - step_size * m / (sqrt(v) / correction2_sqrt + c.eps);
}

struct FillShape {
  length4: u32,
}

@group(0) @binding(0) var<uniform> fill_shape: FillShape;
@group(0) @binding(1) var<storage, read_write> fill_buffer: array<vec4<f32>>;

// zero_buffer: buffer = 0 (gradients at the start of an accumulation).
@compute @workgroup_size(WG)
fn zero_buffer(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = flat_index(wid, nwg, lid, WG);
  if (i < fill_shape.length4) {
    fill_buffer[i] = vec4<f32>(0.0);
  }
}
