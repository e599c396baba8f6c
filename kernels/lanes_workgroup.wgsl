// Reductions over the lanes of a row in workgroup memory: the loader adds this file after the prelude to
// a family that calls lanes_reduce on a device without subgroups (lanes_subgroups.wgsl is the other
// variant, with the same function). The family declares `override LANES` and `override WG`.

var<workgroup> lanes_slots: array<vec2<f32>, WG>;

// Reduces a pair over each row's lanes: LANES consecutive invocations (the family's `override LANES`, a power
// of two), .x by max when `op_max` else by sum, .y by sum, by a fixed tree; every lane of the row gets the
// result. Call from uniform control flow (it has barriers).
fn lanes_reduce(lid: u32, v: vec2<f32>, op_max: bool) -> vec2<f32> {
  lanes_slots[lid] = v;
  workgroupBarrier();
  for (var stride = LANES / 2u; stride > 0u; stride /= 2u) {
    if (lid % LANES < stride) {
      let a = lanes_slots[lid];
      let b = lanes_slots[lid + stride];
      lanes_slots[lid] = vec2<f32>(select(a.x + b.x, max(a.x, b.x), op_max), a.y + b.y);
    }
    workgroupBarrier();
  }
  let total = lanes_slots[lid - lid % LANES];
  workgroupBarrier();
  return total;
}
