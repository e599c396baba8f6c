// The optimizer step, all on the GPU: the gradients' global L2 norm and clip factor, AdamW, and the
// zeroing of the gradients before an accumulation.
//
// Parameters, gradients and the AdamW moments are flat f32 buffers of one layout (src/model/params.ts),
// read as vec4. Reductions use fixed trees and fixed sequences, never atomics: bit-identical every run.
// Elementwise kernels take one vec4 per invocation on a grid that is 2-D when one dimension's 65535
// workgroups are not enough (the flat workgroup id is wid.y * nwg.x + wid.x).

// Invocations per workgroup; a power of two (tree reduction).
override WG: u32 = 256;
// vec4s per chunk of the weight-decay table: tensors start on 64-element boundaries, so a 64-element
// chunk belongs to one tensor.
override DECAY_CHUNK4: u32 = 16;

// What the norm step leaves for AdamW and for the host, which reads it every N steps.
struct Stats {
  // The global L2 norm of the gradients.
  norm: f32,
  // min(1, max_norm / (norm + 1e-6)) as torch.nn.utils.clip_grad_norm_; 0 when the step is skipped.
  clip: f32,
  // 1 when the norm is NaN or infinite: AdamW leaves params and moments untouched this step.
  nonfinite: u32,
  // Steps skipped so far.
  skipped: u32,
}

fn flat_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.y * nwg.x + wid.x) * WG + lid;
}

var<workgroup> partial: array<f32, WG>;

// The sum of `v` over the workgroup by a fixed tree, valid in invocation 0.
fn workgroup_sum(v: f32, lid: u32) -> f32 {
  partial[lid] = v;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      partial[lid] += partial[lid + stride];
    }
    workgroupBarrier();
  }
  return partial[0];
}

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

@compute @workgroup_size(WG)
fn grad_norm_finish(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  for (var i = lid; i < norm_shape.partials; i += WG) {
    s += fin_partials[i];
  }
  let total = workgroup_sum(s, lid);
  if (lid == 0u) {
    let norm = sqrt(total);
    // NaN and infinity are the f32s with all exponent bits set; tested on the bits because WGSL lets
    // compilers assume float comparisons never see them.
    let nonfinite = (bitcast<u32>(norm) & 0x7f800000u) == 0x7f800000u;
    fin_stats.norm = norm;
    fin_stats.clip = select(min(1.0, norm_shape.max_norm / (norm + 1e-6)), 0.0, nonfinite);
    fin_stats.nonfinite = u32(nonfinite);
    fin_stats.skipped += u32(nonfinite);
  }
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
  let i = flat_index(wid, nwg, lid);
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
  let i = flat_index(wid, nwg, lid);
  if (i < fill_shape.length4) {
    fill_buffer[i] = vec4<f32>(0.0);
  }
}
