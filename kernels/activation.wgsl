// GELU (exact, erf-based) and GELU-GLU, forward and backward.
//
// Elementwise and memory-bound: each invocation handles one vec4 (4 consecutive floats). The grid is 2-D
// when one dimension's 65535 workgroups are not enough (flatGrid in src/model/layers/plan.ts): the flat
// workgroup id is wid.y * nwg.x + wid.x. Math is f32; each float binding is stored as its own alias
// (f32 unless the wrapper sets it to f16), converted to f32 on load and rounded on store.

override WG: u32 = 256;

struct Shape {
  // gelu: vec4s in x. glu: vec4s in the output (rows * inner / 8).
  count: u32,
  // glu only: vec4s per half row (inner / 8); the value half of a row comes first, then the gate half.
  half4: u32,
}

const FRAC_1_SQRT_2: f32 = 0.7071067811865476;
const FRAC_1_SQRT_2PI: f32 = 0.3989422804014327;

// Standard normal CDF, Phi(x) = erfc(-x / sqrt 2) / 2. WGSL has no erf: erfc(z) for z >= 0 is the
// Chebyshev fit of Numerical Recipes' erfcc, t exp(-z^2 + P(t)) with t = 1 / (1 + z / 2), whose relative
// error is below 1.2e-7 for every z (Numerical Recipes' bound). Taking Phi(x) = erfc(|x| / sqrt 2) / 2 for x < 0 keeps full
// relative accuracy in the left tail, where 1 + erf(x / sqrt 2) would cancel to 0.
fn normal_cdf(x: vec4<f32>) -> vec4<f32> {
  let z = abs(x) * FRAC_1_SQRT_2;
  let t = 1.0 / (1.0 + 0.5 * z);
  var p = vec4<f32>(0.17087277);
  p = p * t - 0.82215223;
  p = p * t + 1.48851587;
  p = p * t - 1.13520398;
  p = p * t + 0.27886807;
  p = p * t - 0.18628806;
  p = p * t + 0.09678418;
  p = p * t + 0.37409196;
  p = p * t + 1.00002368;
  p = p * t - 1.26551223;
  let half_erfc = 0.5 * t * exp(p - z * z);
  return select(1.0 - half_erfc, half_erfc, x < vec4<f32>(0.0));
}

// Standard normal density phi(x).
fn normal_pdf(x: vec4<f32>) -> vec4<f32> {
  return FRAC_1_SQRT_2PI * exp(-0.5 * x * x);
}

fn gelu(x: vec4<f32>) -> vec4<f32> {
  return x * normal_cdf(x);
}

// d gelu / dx = Phi(x) + x phi(x), given cdf = Phi(x).
fn gelu_grad(x: vec4<f32>, cdf: vec4<f32>) -> vec4<f32> {
  return cdf + x * normal_pdf(x);
}

@group(0) @binding(0) var<uniform> shape: Shape;

// gelu_forward: y = gelu(x).
alias FWD_X_T = f32;
alias FWD_Y_T = f32;

@group(0) @binding(1) var<storage, read> fwd_x: array<vec4<FWD_X_T>>;
@group(0) @binding(2) var<storage, read_write> fwd_y: array<vec4<FWD_Y_T>>;

@compute @workgroup_size(WG)
fn gelu_forward(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = flat_index(wid, nwg, lid, WG);
  if (i < shape.count) {
    fwd_y[i] = vec4<FWD_Y_T>(gelu(vec4<f32>(fwd_x[i])));
  }
}

// gelu_backward: dx = dy * gelu'(x).
alias BWD_DY_T = f32;
alias BWD_X_T = f32;
alias BWD_DX_T = f32;

@group(0) @binding(1) var<storage, read> bwd_dy: array<vec4<BWD_DY_T>>;
@group(0) @binding(2) var<storage, read> bwd_x: array<vec4<BWD_X_T>>;
@group(0) @binding(3) var<storage, read_write> bwd_dx: array<vec4<BWD_DX_T>>;

@compute @workgroup_size(WG)
fn gelu_backward(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = flat_index(wid, nwg, lid, WG);
  if (i < shape.count) {
    let x = vec4<f32>(bwd_x[i]);
    bwd_dx[i] = vec4<BWD_DX_T>(vec4<f32>(bwd_dy[i]) * gelu_grad(x, normal_cdf(x)));
  }
}

// Index of the value vec4 in h for output vec4 `o`; the gate vec4 is half4 further on.
fn glu_value_index(o: u32) -> u32 {
  let row = o / shape.half4;
  return o + row * shape.half4;
}

// glu_forward: out = value * gelu(gate).
alias GLU_H_T = f32;
alias GLU_OUT_T = f32;

@group(0) @binding(1) var<storage, read> glu_h: array<vec4<GLU_H_T>>;
@group(0) @binding(2) var<storage, read_write> glu_out: array<vec4<GLU_OUT_T>>;

@compute @workgroup_size(WG)
fn glu_forward(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let o = flat_index(wid, nwg, lid, WG);
  if (o < shape.count) {
    let v = glu_value_index(o);
    glu_out[o] = vec4<GLU_OUT_T>(vec4<f32>(glu_h[v]) * gelu(vec4<f32>(glu_h[v + shape.half4])));
  }
}

// glu_backward: dvalue = dout * gelu(gate), dgate = dout * value * gelu'(gate).
alias GLU_DOUT_T = f32;
alias GLU_BWD_H_T = f32;
alias GLU_DH_T = f32;

@group(0) @binding(1) var<storage, read> glu_dout: array<vec4<GLU_DOUT_T>>;
@group(0) @binding(2) var<storage, read> glu_bwd_h: array<vec4<GLU_BWD_H_T>>;
@group(0) @binding(3) var<storage, read_write> glu_dh: array<vec4<GLU_DH_T>>;

@compute @workgroup_size(WG)
fn glu_backward(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let o = flat_index(wid, nwg, lid, WG);
  if (o < shape.count) {
    let v = glu_value_index(o);
    let value = vec4<f32>(glu_bwd_h[v]);
    let gate = vec4<f32>(glu_bwd_h[v + shape.half4]);
    let dout = vec4<f32>(glu_dout[o]);
    let cdf = normal_cdf(gate);
    glu_dh[v] = vec4<GLU_DH_T>(dout * gate * cdf);
    glu_dh[v + shape.half4] = vec4<GLU_DH_T>(dout * value * gelu_grad(gate, cdf));
  }
}
