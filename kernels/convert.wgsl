// y = x stored as Y_T, 4 elements per invocation: rounded to f16 for the f16 copy of the f32 master weights
// that the matrix products read, or copied as f32 (the bandwidth reference of `deno task bench --kernels`).
// Y_T is an alias so that the loader can make it f16 and enable f16 for that module (src/gpu/kernels.ts).
// WGSL leaves the rounding of ties, and of values just past f16's largest finite one, to the
// implementation; GPUs' IEEE conversions round to nearest even and overflow to infinity, as
// tests/model/layers/convert_test.ts checks against Float16Array.
//
// The grid is 2-D when one dimension's 65535 workgroups are not enough (flatGrid in
// src/model/layers/plan.ts): the flat workgroup id is wid.y * nwg.x + wid.x.

override WG: u32 = 256;

struct Shape {
  // Elements / 4.
  length4: u32,
}

alias Y_T = f32;

@group(0) @binding(0) var<uniform> shape: Shape;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<Y_T>>;

@compute @workgroup_size(WG)
fn convert(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = flat_index(wid, nwg, lid, WG);
  if (i < shape.length4) {
    y[i] = vec4<Y_T>(x[i]);
  }
}
