// Moves recurrent state between a node's state pool and a run's working state. The pool holds one
// slot per session, laid out as the session's own state for the node (every direction's h, then
// every direction's c); the working state is [h ping | h pong | c], each batch-major. Gather
// (`to_pool == 0`) fills h ping and c from the slots of the batch's sessions before a direction's
// first step; scatter (`to_pool == 1`) writes the final h (at `state_h`) and c back after its last.
// One invocation per (unit, batch entry): no barriers, no reduction.

struct SlotParams {
    batch: u32,
    out: u32,
    hidden: u32,
    slot_len: u32,
    // Where this direction's h and c start inside a slot.
    slot_h: u32,
    slot_c: u32,
    // Where h and c start in the working state.
    state_h: u32,
    state_c: u32,
    has_c: u32,
    to_pool: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: SlotParams;
@group(0) @binding(1) var<storage, read> slots: array<u32>;
@group(0) @binding(2) var<storage, read_write> pool: array<f32>;
@group(0) @binding(3) var<storage, read_write> state: array<f32>;

fn move_value(q: u32, s: u32) {
    if (p.to_pool == 1u) {
        pool[q] = state[s];
    } else {
        state[s] = pool[q];
    }
}

@compute @workgroup_size(64)
fn state_slots(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    let b = gid.y;
    if (b >= p.batch) {
        return;
    }
    let base = slots[b] * p.slot_len;
    if (i < p.out) {
        move_value(base + p.slot_h + i, p.state_h + b * p.out + i);
    }
    if (p.has_c == 1u && i < p.hidden) {
        move_value(base + p.slot_c + i, p.state_c + b * p.hidden + i);
    }
}
