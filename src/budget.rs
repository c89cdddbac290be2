//! The memory budget: what a call may allocate, worked out before it allocates anything.
//!
//! In wasm a failed allocation aborts the instance, and every session of every model with it, and
//! wasm memory never shrinks: a call that needs more than the page can spare must be refused
//! before it starts. [`peak`] follows a schedule over the shapes of the call's inputs (the shape
//! rule of each operator, with the values of small constants and of what is computed from them:
//! the `Shape`/`Gather`/`Concat` chains that feed `Reshape` and `Expand`), adds up the bytes of the
//! values alive at each node (a value is freed after its last reader, as the executor does) and
//! returns the largest sum. Where a shape cannot be followed (an operator without a rule here, on
//! values whose data is not known before the call) the walk stops there, and the executor counts
//! the bytes of what it holds as it goes, refusing at the first node that passes the budget.
//!
//! Model weights count against the same budget at load ([`check`]).

use crate::error::{Error, Result};
use crate::graph::{Graph, Op, Schedule};
use crate::ops::{broadcast_shape, elementwise::Math, logic::Logic};
use crate::tensor::{DType, Tensor};

/// The default budget: 256 MiB.
pub const DEFAULT_MAX_MEMORY: usize = 256 << 20;

/// Values of at most this many elements are followed by their data (shape arithmetic).
const SMALL: usize = 1 << 12;

/// Bytes of `n` elements of `dtype`.
pub fn bytes(dtype: DType, n: usize) -> usize {
    n.saturating_mul(match dtype {
        DType::F32 => 4,
        DType::I64 => 8,
    })
}

fn mib(b: usize) -> String {
    format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
}

/// `Err(Error::Resource)` when `what` needs more than `budget` bytes.
pub fn check(what: &str, need: usize, budget: usize) -> Result<()> {
    if need > budget {
        return Err(Error::Resource(format!(
            "{what} needs {} ({need} bytes), over the memory budget of {} (maxMemoryBytes, LoadOptions::max_memory_bytes)",
            mib(need),
            mib(budget)
        )));
    }
    Ok(())
}

/// A vector of `n` copies of `v`, or [`Error::Resource`] where the allocator has no room (where
/// `vec![v; n]` would abort the wasm instance).
pub fn try_vec<T: Clone>(n: usize, v: T, what: &str) -> Result<Vec<T>> {
    let mut out = Vec::new();
    out.try_reserve_exact(n).map_err(|_| {
        Error::Resource(format!("{what}: could not allocate {n} elements of {} bytes", std::mem::size_of::<T>()))
    })?;
    out.resize(n, v);
    Ok(out)
}

/// What the walk of [`peak`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peak {
    /// The most bytes alive at once (inputs, intermediates, outputs; weights not counted).
    pub bytes: usize,
    /// Index in the schedule of the node where it stopped following shapes (`None`: it followed
    /// every node, and `bytes` is the call's peak).
    pub stopped_at: Option<usize>,
}

/// Peaks already worked out, by the fed inputs' types and shapes (the last few).
#[derive(Default)]
pub struct Memo(std::sync::Mutex<Vec<(Key, Peak)>>);

/// The fed inputs' types and shapes.
type Key = Vec<Option<(DType, Vec<usize>)>>;

/// How many input shapes a [`Memo`] keeps.
const MEMO: usize = 4;

impl Memo {
    /// The peak for `fed`, from the memo or made by `walk` (and kept).
    pub fn get_or(&self, fed: &[Option<&Tensor>], walk: impl FnOnce() -> Peak) -> Peak {
        let same = |k: &Key| {
            k.len() == fed.len()
                && k.iter().zip(fed).all(|(a, b)| match (a, b) {
                    (Some((d, s)), Some(t)) => *d == t.dtype() && s.as_slice() == t.shape(),
                    (None, None) => true,
                    _ => false,
                })
        };
        if let Some(p) = self.0.lock().ok().and_then(|m| m.iter().find(|(k, _)| same(k)).map(|(_, p)| *p)) {
            return p;
        }
        let p = walk();
        if let Ok(mut m) = self.0.lock() {
            if m.len() >= MEMO {
                m.remove(0);
            }
            m.push((fed.iter().map(|t| t.map(|t| (t.dtype(), t.shape().to_vec()))).collect(), p));
        }
        p
    }
}

impl Clone for Memo {
    fn clone(&self) -> Self {
        Memo::default()
    }
}

impl PartialEq for Memo {
    /// A cache: any two are alike.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Memo")
    }
}

/// A value as the walk knows it.
#[derive(Clone)]
enum Abs {
    /// Small, with its data.
    Known(Tensor),
    Shape(DType, Vec<usize>),
    Unknown,
}

impl Abs {
    fn of(t: &Tensor) -> Abs {
        if t.len() <= SMALL {
            Abs::Known(t.clone())
        } else {
            Abs::Shape(t.dtype(), t.shape().to_vec())
        }
    }
    fn shape(&self) -> Option<(DType, &[usize])> {
        match self {
            Abs::Known(t) => Some((t.dtype(), t.shape())),
            Abs::Shape(d, s) => Some((*d, s)),
            Abs::Unknown => None,
        }
    }
    fn bytes(&self) -> usize {
        match self.shape() {
            Some((d, s)) => bytes(d, s.iter().try_fold(1usize, |a, &x| a.checked_mul(x)).unwrap_or(usize::MAX)),
            None => 0,
        }
    }
}

/// The peak memory of running `sched` on `inputs` (one per graph input; `None` where not fed).
/// Fed inputs are followed by their shapes only: a call's data never changes what it allocates
/// (the executor would refuse such a call at its node, as for an operator without a rule).
pub fn peak(graph: &Graph, sched: &Schedule, inputs: &[Option<&Tensor>]) -> Peak {
    let mut vals: Vec<Option<Abs>> = vec![None; graph.value_count()];
    let mut live = 0usize;
    for (decl, t) in graph.inputs.iter().zip(inputs) {
        if let Some(t) = t {
            let a = Abs::Shape(t.dtype(), t.shape().to_vec());
            live = live.saturating_add(a.bytes());
            vals[decl.id] = Some(a);
        }
    }
    let mut top = live;
    for (pos, &ni) in sched.nodes.iter().enumerate() {
        let node = &graph.nodes[ni];
        let args: Vec<Option<Abs>> = node
            .inputs
            .iter()
            .map(|v| v.and_then(|v| vals[v].clone().or_else(|| graph.constants[v].as_ref().map(Abs::of))))
            .collect();
        let outs = infer(&node.op, &args);
        if outs.is_empty() || outs.iter().any(|o| matches!(o, Abs::Unknown)) {
            return Peak { bytes: top, stopped_at: Some(pos) };
        }
        // Entries past the node's outputs are its kernel's scratch, held while it runs.
        let transient: usize = outs.iter().skip(node.outputs.len()).map(Abs::bytes).sum();
        let mut added = 0usize;
        for (slot, a) in node.outputs.iter().zip(outs) {
            if let Some(v) = slot {
                added = added.saturating_add(a.bytes());
                vals[*v] = Some(a);
            }
        }
        // An operator that takes over its input's buffer (the executor's in-place case).
        let given = node.inputs.first().copied().flatten().filter(|&v| {
            node.op.reuses_input() && sched.last_use(v) == pos && graph.constants[v].is_none() && vals[v].is_some()
        });
        // Only where the output is the input's size (a broadcast that grows allocates anew).
        let first_out = node.outputs.first().copied().flatten().and_then(|v| vals[v].as_ref()).map_or(0, Abs::bytes);
        let reused = given.and_then(|v| vals[v].as_ref()).map_or(0, Abs::bytes);
        let given = given.filter(|_| reused == first_out);
        let reused = if given.is_some() { reused } else { 0 };
        live = live.saturating_add(added.saturating_sub(reused));
        top = top.max(live.saturating_add(transient));
        for v in node.inputs.iter().flatten().chain(node.outputs.iter().flatten()) {
            let done = if node.inputs.contains(&Some(*v)) { sched.last_use(*v) == pos } else { !sched.reads[*v] };
            if done && Some(*v) != given {
                if let Some(a) = vals[*v].take() {
                    live = live.saturating_sub(a.bytes());
                }
            }
        }
        if let Some(v) = given {
            vals[v] = None; // its bytes went to the output
        }
    }
    Peak { bytes: top, stopped_at: None }
}

/// A value's type and shape, and its data where known.
pub(crate) type Known<'a> = (DType, &'a [usize], Option<&'a Tensor>);

/// The elements `op` would output on inputs of these types and shapes (with their data where
/// given), where its shape rule can tell; for the load-time folding, which must not compute a
/// huge constant only to throw it away.
pub(crate) fn predicted_elements(op: &Op, inputs: &[Option<Known<'_>>]) -> Option<usize> {
    let args: Vec<Option<Abs>> = inputs
        .iter()
        .map(|i| {
            i.map(|(d, s, t)| match t {
                Some(t) => Abs::of(t),
                None => Abs::Shape(d, s.to_vec()),
            })
        })
        .collect();
    let outs = infer(op, &args);
    outs.iter().try_fold(0usize, |n, a| a.shape().map(|(_, s)| n.saturating_add(s.iter().product::<usize>())))
}

fn ints(a: Option<&Option<Abs>>) -> Option<Vec<i64>> {
    match a {
        Some(Some(Abs::Known(t))) => t.to_i64_vec().ok(),
        _ => None,
    }
}

fn dims(v: &[i64]) -> Option<Vec<usize>> {
    v.iter().map(|&d| usize::try_from(d).ok()).collect()
}

fn axis(a: i64, rank: usize) -> Option<usize> {
    crate::tensor::norm_axis(a, rank).ok()
}

/// The outputs of `op` on `args`, as far as they can be known without running it on large data.
/// Empty or `Unknown` where they cannot.
fn infer(op: &Op, args: &[Option<Abs>]) -> Vec<Abs> {
    let sh = |i: usize| args.get(i).and_then(|a| a.as_ref()).and_then(Abs::shape);
    let known: Option<Vec<Option<&Tensor>>> = args
        .iter()
        .map(|a| match a {
            None => Some(None),
            Some(Abs::Known(t)) => Some(Some(t)),
            Some(_) => None,
        })
        .collect();
    // Small known inputs and a small result: run it (the shape arithmetic of exporters).
    let run_small = |shape: &[usize]| -> Option<Vec<Tensor>> {
        let args = known.as_ref()?;
        (shape.iter().product::<usize>() <= SMALL).then(|| op.run(args, crate::cpu::Isa::Scalar).ok()).flatten()
    };
    let one = |dtype: DType, shape: Vec<usize>| -> Vec<Abs> {
        if let Some(mut v) = run_small(&shape) {
            if v.len() == 1 && v[0].shape() == shape.as_slice() {
                return vec![Abs::Known(v.remove(0))];
            }
        }
        vec![Abs::Shape(dtype, shape)]
    };
    let unknown = vec![Abs::Unknown];
    let Some((d0, s0)) = sh(0) else {
        // No input 0 known (or none at all): only operators of constants get here.
        return unknown;
    };
    let s0 = s0.to_vec();
    let broadcast_all = || -> Option<Vec<usize>> {
        let mut out = s0.clone();
        for a in args.iter().skip(1).flatten() {
            out = broadcast_shape(&out, a.shape()?.1).ok()?;
        }
        Some(out)
    };
    let r = s0.len();
    let out: Option<Vec<Abs>> = match op {
        Op::Identity | Op::Relu | Op::Sigmoid | Op::Tanh | Op::Add | Op::Sub | Op::Mul | Op::Div => {
            broadcast_all().map(|s| one(d0, s))
        }
        Op::Math(Math::Unary(_) | Math::Pow | Math::PRelu | Math::Clip { .. } | Math::Min | Math::Max) => {
            broadcast_all().map(|s| one(d0, s))
        }
        Op::Math(Math::Dequantize { .. }) => Some(one(DType::F32, s0)),
        Op::Logic(l) => {
            let dtype = match l {
                Logic::Where => sh(1).map_or(d0, |(d, _)| d),
                _ => DType::I64,
            };
            broadcast_all().map(|s| one(dtype, s))
        }
        Op::Cast { to } => Some(one(*to, s0)),
        Op::Softmax { .. } | Op::Norm(_) => Some(vec![Abs::Shape(d0, s0); 3]),
        Op::Shape { start, end } => {
            let clamp = |a: i64| (if a < 0 { a + r as i64 } else { a }).clamp(0, r as i64) as usize;
            let (a, b) = (clamp(*start), clamp(end.unwrap_or(r as i64)));
            let v: Vec<i64> = s0[a..b.max(a)].iter().map(|&d| d as i64).collect();
            Tensor::from_i64(vec![v.len()], v).ok().map(|t| vec![Abs::Known(t)])
        }
        Op::Array(crate::ops::array::Array::Size) => {
            Some(vec![Abs::Known(Tensor::scalar_i64(s0.iter().product::<usize>() as i64))])
        }
        Op::Slice { attrs } => {
            let (starts, ends, axes, steps) = match attrs {
                Some((s, e, a)) => (Some(s.clone()), Some(e.clone()), a.clone(), None),
                None => (ints(args.get(1)), ints(args.get(2)), ints(args.get(3)), ints(args.get(4))),
            };
            let axes_given = attrs.as_ref().map_or(args.get(3).is_some_and(Option::is_some), |a| a.2.is_some());
            let steps_given = args.get(4).is_some_and(Option::is_some);
            match (starts, ends) {
                (Some(st), Some(en)) if (axes.is_some() || !axes_given) && (steps.is_some() || !steps_given) => {
                    slice_shape(&s0, &st, &en, axes.as_deref(), steps.as_deref()).map(|s| one(d0, s))
                }
                _ => None,
            }
        }
        Op::Split { axis: a, split, num_outputs } => axis(*a, r).and_then(|a| {
            let sizes = split.clone().or_else(|| ints(args.get(1)));
            let d = s0[a];
            let sizes: Vec<usize> = match sizes {
                Some(v) => dims(&v)?,
                None if args.get(1).is_some_and(Option::is_some) => return None,
                None => {
                    let n = (*num_outputs).max(1);
                    let each = d.div_ceil(n);
                    (0..n).map(|i| each.min(d.saturating_sub(i * each))).collect()
                }
            };
            Some(
                sizes
                    .iter()
                    .map(|&n| {
                        let mut s = s0.clone();
                        s[a] = n;
                        Abs::Shape(d0, s)
                    })
                    .collect(),
            )
        }),
        Op::Expand => {
            ints(args.get(1)).and_then(|v| dims(&v)).and_then(|s| broadcast_shape(&s0, &s).ok()).map(|s| one(d0, s))
        }
        Op::ConstantOfShape { value } => ints(args.first()).and_then(|v| dims(&v)).map(|s| one(value.dtype(), s)),
        Op::Reshape { allow_zero } => ints(args.get(1)).and_then(|v| {
            let mut out: Vec<Option<usize>> = Vec::with_capacity(v.len());
            for (i, &d) in v.iter().enumerate() {
                out.push(match d {
                    -1 => None,
                    0 if !allow_zero => Some(*s0.get(i)?),
                    d => Some(usize::try_from(d).ok()?),
                });
            }
            let total: usize = s0.iter().product();
            let rest: usize = out.iter().flatten().product();
            let s: Vec<usize> = out.iter().map(|d| d.unwrap_or(total.checked_div(rest).unwrap_or(0))).collect();
            Some(one(d0, s))
        }),
        Op::Flatten { axis: a } => {
            let a = if *a < 0 { *a + r as i64 } else { *a };
            let a = usize::try_from(a).ok().filter(|&a| a <= r);
            a.map(|a| one(d0, vec![s0[..a].iter().product(), s0[a..].iter().product()]))
        }
        Op::Squeeze { axes } => {
            let axes = axes.clone().or_else(|| ints(args.get(1)));
            let keep: Vec<usize> = match axes {
                Some(ax) => {
                    let ax: Option<Vec<usize>> = ax.iter().map(|&a| axis(a, r)).collect();
                    let ax = ax.unwrap_or_default();
                    s0.iter().enumerate().filter(|(i, _)| !ax.contains(i)).map(|(_, &d)| d).collect()
                }
                None if args.get(1).is_some_and(Option::is_some) => return unknown,
                None => s0.iter().copied().filter(|&d| d != 1).collect(),
            };
            Some(one(d0, keep))
        }
        Op::Unsqueeze { axes } => axes.clone().or_else(|| ints(args.get(1))).and_then(|ax| {
            let n = r + ax.len();
            let mut ax: Vec<usize> = ax.iter().map(|&a| axis(a, n)).collect::<Option<_>>()?;
            ax.sort_unstable();
            let mut s = s0.clone();
            for a in ax {
                (a <= s.len()).then(|| s.insert(a, 1))?;
            }
            Some(one(d0, s))
        }),
        Op::Transpose { perm } => {
            let p: Vec<usize> = perm.clone().unwrap_or_else(|| (0..r).rev().collect());
            p.iter().map(|&i| s0.get(i).copied()).collect::<Option<Vec<_>>>().map(|s| one(d0, s))
        }
        Op::Concat { axis: a } => axis(*a, r).and_then(|a| {
            let mut s = s0.clone();
            for x in args.iter().skip(1).flatten() {
                s[a] = s[a].checked_add(*x.shape()?.1.get(a)?)?;
            }
            Some(one(d0, s))
        }),
        Op::Gather { axis: a } => axis(*a, r).and_then(|a| {
            let (_, idx) = sh(1)?;
            let s: Vec<usize> = s0[..a].iter().chain(idx).chain(&s0[a + 1..]).copied().collect();
            Some(one(d0, s))
        }),
        Op::MatMul => sh(1).and_then(|(_, b)| {
            let a2 = if r == 1 { vec![1, s0[0]] } else { s0.clone() };
            let b2 = if b.len() == 1 { vec![b[0], 1] } else { b.to_vec() };
            if a2.len() < 2 || b2.len() < 2 {
                return None;
            }
            let mut s = broadcast_shape(&a2[..a2.len() - 2], &b2[..b2.len() - 2]).ok()?;
            if r > 1 {
                s.push(a2[a2.len() - 2]);
            }
            if b.len() > 1 {
                s.push(b2[b2.len() - 1]);
            }
            Some(one(d0, s))
        }),
        Op::Gemm { trans_a, trans_b, .. } => sh(1).and_then(|(_, b)| {
            let m = *s0.get(usize::from(!*trans_a))?;
            let n = *b.get(usize::from(!*trans_b))?;
            Some(one(d0, vec![m, n]))
        }),
        Op::Recurrent(spec) => {
            let (x, dirs) = (&s0, spec.direction.count());
            if x.len() != 3 {
                return unknown;
            }
            let (t, b) = if spec.layout == 0 { (x[0], x[1]) } else { (x[1], x[0]) };
            let h = spec.hidden_size;
            let out = sh(crate::cell::rec_input::PROJ).and_then(|(_, p)| p.get(1).copied()).unwrap_or(h);
            let (y, state, cell) = if spec.layout == 0 {
                (vec![t, dirs, b, out], vec![dirs, b, out], vec![dirs, b, h])
            } else {
                (vec![b, t, dirs, out], vec![b, dirs, out], vec![b, dirs, h])
            };
            let lstm = matches!(spec.cell, crate::cell::CellKind::Lstm { .. });
            let mut v = vec![Abs::Shape(DType::F32, y.clone()), Abs::Shape(DType::F32, state)];
            v.push(Abs::Shape(DType::F32, if lstm { cell } else { vec![0] }));
            // Scratch: a batch-major Y is made time-major first; the gates of a chunk of steps.
            v.push(Abs::Shape(DType::F32, if spec.layout == 1 { y } else { vec![0] }));
            let n = spec.cell.gates() * h;
            let chunk = t.saturating_mul(b).saturating_mul(n).min(crate::cpu::CHUNK_FLOATS.max(b * n));
            let rows = chunk / n.max(1);
            v.push(Abs::Shape(DType::F32, vec![chunk.saturating_add(rows.saturating_mul(x[2]))]));
            Some(v)
        }
        Op::Reduce(crate::ops::reduce::Reduce::Reduce { axes, keepdims, noop_with_empty_axes, .. }) => {
            let given = args.get(1).is_some_and(Option::is_some);
            let axes = axes.clone().or_else(|| ints(args.get(1))).or_else(|| (!given).then(Vec::new));
            axes.and_then(|ax| {
                let noop = ax.is_empty() && *noop_with_empty_axes;
                let mask = crate::ops::reduce::reduced_mask(r, &ax, noop).ok()?;
                let s = s0.iter().zip(&mask).filter_map(|(&d, &m)| match (m, keepdims) {
                    (false, _) => Some(d),
                    (true, true) => Some(1),
                    (true, false) => None,
                });
                Some(one(d0, s.collect()))
            })
        }
        Op::Pool(crate::ops::pool::Pool::GlobalAveragePool | crate::ops::pool::Pool::GlobalMaxPool) => {
            (r >= 2).then(|| one(d0, s0.iter().enumerate().map(|(i, &d)| if i < 2 { d } else { 1 }).collect()))
        }
        Op::Array(crate::ops::array::Array::GatherElements { .. }) => sh(1).map(|(_, s)| one(d0, s.to_vec())),
        Op::Array(crate::ops::array::Array::ScatterND { .. }) => Some(one(d0, s0)),
        // No rule: only small known inputs, run.
        _ => known
            .as_ref()
            .and_then(|a| {
                a.iter().flatten().all(|t| t.len() <= 64).then(|| op.run(a, crate::cpu::Isa::Scalar).ok()).flatten()
            })
            .map(|v| v.iter().map(Abs::of).collect()),
    };
    out.unwrap_or(unknown)
}

/// The output shape of ONNX `Slice` (starts and ends clamped as the spec says).
fn slice_shape(
    s: &[usize],
    starts: &[i64],
    ends: &[i64],
    axes: Option<&[i64]>,
    steps: Option<&[i64]>,
) -> Option<Vec<usize>> {
    let mut out = s.to_vec();
    for (i, (&st, &en)) in starts.iter().zip(ends).enumerate() {
        let a = axis(axes.map_or(Some(i as i64), |a| a.get(i).copied())?, s.len())?;
        let step = steps.map_or(Some(1), |v| v.get(i).copied())?;
        let d = s[a] as i64;
        if d == 0 {
            continue;
        }
        let norm = |x: i64| if x < 0 { x.saturating_add(d) } else { x };
        out[a] = if step > 0 {
            let (b, e) = (norm(st).clamp(0, d), norm(en).clamp(0, d));
            if e > b {
                ((e - b + step - 1) / step) as usize
            } else {
                0
            }
        } else if step < 0 {
            let (b, e) = (norm(st).clamp(0, d - 1), norm(en).clamp(-1, d - 1));
            if b > e {
                ((b - e - step - 1) / -step) as usize
            } else {
                0
            }
        } else {
            return None;
        };
    }
    Some(out)
}
