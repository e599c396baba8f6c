// Reductions over the lanes of a row with subgroup shuffles: the loader adds this file after the prelude
// to a family that calls lanes_reduce on a device with subgroups (lanes_workgroup.wgsl is the variant
// without). The family declares `override LANES`.

// Reduces a pair over each row's lanes: LANES consecutive invocations (the family's `override LANES`, a power
// of two no larger than the smallest subgroup, which the wrapper ensures), .x by max when `op_max` else by
// sum, .y by sum; every lane of the row gets the result. A butterfly of shuffles within the subgroup, no
// barrier; each level adds a pair in either order, so every lane gets the same bits. Call from uniform
// control flow.
fn lanes_reduce(lid: u32, v: vec2<f32>, op_max: bool) -> vec2<f32> {
  var r = v;
  for (var stride = LANES / 2u; stride > 0u; stride /= 2u) {
    let o = subgroupShuffleXor(r, stride);
    r = vec2<f32>(select(r.x + o.x, max(r.x, o.x), op_max), r.y + o.y);
  }
  return r;
}
