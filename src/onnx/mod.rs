//! ONNX import: a `ModelProto` (as `torch.onnx.export` and the ONNX test suite write it) becomes a
//! [`Graph`]. Every operator is parsed and validated here, so an unsupported one is refused at load
//! time, naming the operator and the node.

pub mod fold;
pub mod proto;
pub mod tensor_proto;
pub mod warmup;

use std::collections::HashMap;
use std::sync::Arc;

use crate::cell::{Activation, CellKind, Direction, RecurrentSpec};
use crate::error::{Error, Result};
use crate::graph::{Graph, Node, Op, ValueDecl, ValueId};
use crate::ops::Attrs;
use crate::tensor::Tensor;
use proto::{ModelProto, NodeProto, ValueInfoProto};
pub use tensor_proto::{decode_tensor, encode_tensor, ExternalLoader};

/// Largest accepted `hidden_size`.
const MAX_HIDDEN: i64 = 1 << 16;

/// Facts about the file that the graph does not keep.
#[derive(Debug, Clone, PartialEq)]
pub struct OnnxInfo {
    pub ir_version: i64,
    pub opset: i64,
    pub producer: String,
}

/// Parses ONNX bytes. `external` supplies external-data files by their `location`.
pub fn import(bytes: &[u8], external: &mut ExternalLoader<'_>) -> Result<(Graph, OnnxInfo)> {
    import_fixed(bytes, external, &[])
}

/// [`import`] with some graph inputs fixed to the given values: they become constants, and the
/// graph is folded around them ([`fold`]: constant nodes computed once, `If` on them resolved).
pub fn import_fixed(
    bytes: &[u8],
    external: &mut ExternalLoader<'_>,
    fixed: &[(String, Tensor)],
) -> Result<(Graph, OnnxInfo)> {
    import_within(bytes, external, fixed, crate::budget::DEFAULT_MAX_MEMORY)
}

/// [`import_fixed`] refusing, with [`Error::Resource`], a model whose weights need more than
/// `max_bytes` (their declared sizes are added up before any is decoded).
pub fn import_within(
    bytes: &[u8],
    external: &mut ExternalLoader<'_>,
    fixed: &[(String, Tensor)],
    max_bytes: usize,
) -> Result<(Graph, OnnxInfo)> {
    let (mut graph, info) = import_graph(bytes, external, max_bytes)?;
    fold::fix_inputs(&mut graph, fixed)?;
    fold::fold(&mut graph);
    fold::prepare(&mut graph);
    crate::budget::check("the model's weights", crate::model::weight_bytes(&graph), max_bytes)?;
    Ok((graph, info))
}

fn import_graph(bytes: &[u8], external: &mut ExternalLoader<'_>, max_bytes: usize) -> Result<(Graph, OnnxInfo)> {
    let model = <ModelProto as prost::Message>::decode(bytes)
        .map_err(|e| Error::Format(format!("not a valid ONNX model (protobuf): {e}")))?;
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .ok_or_else(|| Error::Format("the model imports no version of the default ONNX opset".into()))?;
    let info = OnnxInfo {
        ir_version: model.ir_version,
        opset,
        producer: format!("{} {}", model.producer_name, model.producer_version).trim().to_string(),
    };
    let g = model.graph.ok_or_else(|| Error::Format("the model has no graph".into()))?;
    if let Some(s) = g.sparse_initializer.first() {
        let _ = s;
        return Err(Error::InvalidModel("sparse initializers are not supported".into()));
    }

    let mut im = Importer {
        opset,
        names: Vec::new(),
        ids: HashMap::new(),
        constants: HashMap::new(),
        cache: HashMap::new(),
        external,
        depth: 0,
    };
    let declared = g.initializer.iter().fold(0usize, |sum, t| {
        let n = t.dims.iter().try_fold(1usize, |a, &d| a.checked_mul(usize::try_from(d).ok()?)).unwrap_or(0);
        let dtype = tensor_proto::dtype_of(t.data_type).unwrap_or(crate::tensor::DType::F32);
        sum.saturating_add(crate::budget::bytes(dtype, n))
    });
    crate::budget::check("the model's weights", declared, max_bytes)?;
    let top = Scope::default();
    for init in &g.initializer {
        let t = im.tensor(init)?;
        let id = im.intern(&init.name, &top);
        im.constants.insert(id, t);
    }

    let mut inputs = Vec::new();
    for vi in &g.input {
        let id = im.intern(&vi.name, &top);
        if im.constants.contains_key(&id) {
            continue; // IR < 4 lists initializers among the inputs as overridable defaults.
        }
        inputs.push(decl(vi, id)?);
    }

    let nodes = im.nodes(&g.node, &top)?;

    let mut outputs = Vec::new();
    for vi in &g.output {
        let id = im.intern(&vi.name, &top);
        outputs.push(decl(vi, id)?);
    }
    let const_vec = {
        let mut v = vec![None; im.names.len()];
        for (id, t) in im.constants {
            v[id] = Some(t);
        }
        v
    };
    let mut available: Vec<bool> = const_vec.iter().map(Option::is_some).collect();
    for i in &inputs {
        available[i.id] = true;
    }
    let graph =
        Graph { value_names: im.names, nodes: topo_sort(nodes, available)?, inputs, outputs, constants: const_vec };
    for o in &graph.outputs {
        let defined = graph.constants[o.id].is_some()
            || graph.inputs.iter().any(|i| i.id == o.id)
            || graph.nodes.iter().any(|n| n.outputs.contains(&Some(o.id)));
        if !defined {
            return Err(Error::InvalidModel(format!("graph output '{}' is produced by no node", o.name)));
        }
    }
    Ok((graph, info))
}

fn decl(vi: &ValueInfoProto, id: ValueId) -> Result<ValueDecl> {
    let tt = vi.r#type.as_ref().and_then(|t| t.tensor_type.as_ref());
    let dtype = match tt {
        Some(t) if t.elem_type != 0 => Some(tensor_proto::dtype_of(t.elem_type).ok_or_else(|| {
            Error::unsupported(
                &format!("element type {}", t.elem_type),
                &vi.name,
                "graph values of this type (strings, complex numbers...) are not supported",
            )
        })?),
        _ => None,
    };
    let dims = tt.and_then(|t| t.shape.as_ref()).map(|s| {
        s.dim
            .iter()
            .map(|d| d.dim_value.and_then(|v| usize::try_from(v).ok()).filter(|_| d.dim_param.is_none()))
            .collect()
    });
    Ok(ValueDecl { name: vi.name.clone(), id, dtype, dims })
}

/// Orders nodes so that each runs after the producers of its inputs; refuses undefined values and cycles.
/// Names as a (sub)graph writes them → the names they have in the imported graph: a branch's own
/// values are renamed so that they cannot collide with the enclosing graph's or the other branch's.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scope {
    renamed: HashMap<String, String>,
}

/// Most nested `If` levels accepted (a hostile file could nest them until the stack runs out).
const MAX_DEPTH: usize = 16;

pub(crate) struct Importer<'a, 'e> {
    opset: i64,
    names: Vec<String>,
    ids: HashMap<String, ValueId>,
    constants: HashMap<ValueId, Tensor>,
    /// External files are read once each, whatever the number of tensors in them.
    cache: HashMap<String, Arc<Vec<u8>>>,
    external: &'a mut ExternalLoader<'e>,
    depth: usize,
}

impl Importer<'_, '_> {
    fn intern(&mut self, name: &str, scope: &Scope) -> ValueId {
        let name = scope.renamed.get(name).map_or(name, String::as_str);
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), self.names.len() - 1);
        self.names.len() - 1
    }

    fn tensor(&mut self, t: &proto::TensorProto) -> Result<Tensor> {
        let (cache, external) = (&mut self.cache, &mut self.external);
        tensor_proto::to_tensor(t, &mut |loc: &str| {
            if let Some(b) = cache.get(loc) {
                return Ok(b.clone());
            }
            let b = external(loc)?;
            cache.insert(loc.to_string(), b.clone());
            Ok(b)
        })
    }

    /// The nodes of one (sub)graph; `Constant` nodes become constants.
    fn nodes(&mut self, list: &[NodeProto], scope: &Scope) -> Result<Vec<Node>> {
        let mut nodes = Vec::new();
        for (i, n) in list.iter().enumerate() {
            let node_name = if n.name.is_empty() { format!("#{i} ({})", n.op_type) } else { n.name.clone() };
            if !(n.domain.is_empty() || n.domain == "ai.onnx") {
                return Err(Error::unsupported(
                    &format!("{}::{}", n.domain, n.op_type),
                    &node_name,
                    "custom domains are not supported",
                ));
            }
            let mut inp: Vec<Option<ValueId>> =
                n.input.iter().map(|s| (!s.is_empty()).then(|| self.intern(s, scope))).collect();
            let out: Vec<Option<ValueId>> =
                n.output.iter().map(|s| (!s.is_empty()).then(|| self.intern(s, scope))).collect();
            if n.op_type == "Constant" {
                let t = constant_value(n, &node_name)?;
                let id = out
                    .first()
                    .copied()
                    .flatten()
                    .ok_or_else(|| Error::InvalidModel(format!("Constant node '{node_name}' has no output")))?;
                self.constants.insert(id, t);
                continue;
            }
            let op = if n.op_type == "If" {
                let op = self.parse_if(n, &node_name, scope, out.len())?;
                inp.truncate(1);
                inp.extend(op.captures.iter().map(|&v| Some(v)));
                Op::If(op)
            } else {
                parse_op(n, &node_name, self.opset, &self.constants, &inp)?
            };
            nodes.push(Node { name: node_name, op, inputs: inp, outputs: out });
        }
        Ok(nodes)
    }

    /// An `If` node: both branches imported (so an unsupported operator in either is refused now).
    fn parse_if(
        &mut self,
        n: &NodeProto,
        node_name: &str,
        scope: &Scope,
        outputs: usize,
    ) -> Result<crate::ops::control::If> {
        use crate::ops::control::{Branch, If};
        if n.input.len() != 1 || n.input[0].is_empty() {
            return Err(Error::InvalidModel(format!(
                "If node '{node_name}' must have exactly one input (the condition)"
            )));
        }
        if self.depth >= MAX_DEPTH {
            return Err(Error::InvalidModel(format!("If node '{node_name}': more than {MAX_DEPTH} nested subgraphs")));
        }
        let a = Attrs { node: n, name: node_name };
        let mut branches = Vec::new();
        for key in ["then_branch", "else_branch"] {
            let g = a.graph(key).ok_or_else(|| a.bad(key, "is required (a graph)"))?;
            if !g.input.is_empty() {
                return Err(a.bad(key, "must have no inputs"));
            }
            if g.output.len() != outputs {
                return Err(a.bad(key, &format!("returns {} values, the node has {outputs} outputs", g.output.len())));
            }
            let mut local = scope.clone();
            let prefix = format!("{node_name}/{key}/");
            let defined = g.initializer.iter().map(|t| &t.name).chain(g.node.iter().flat_map(|n| n.output.iter()));
            for name in defined.filter(|s| !s.is_empty()) {
                local.renamed.insert(name.clone(), format!("{prefix}{name}"));
            }
            for init in &g.initializer {
                let t = self.tensor(init)?;
                let id = self.intern(&init.name, &local);
                self.constants.insert(id, t);
            }
            self.depth += 1;
            let nodes = self.nodes(&g.node, &local);
            self.depth -= 1;
            let nodes = nodes?;
            let outs: Vec<ValueId> = g.output.iter().map(|o| self.intern(&o.name, &local)).collect();
            let mut available = vec![true; self.names.len()];
            for v in nodes.iter().flat_map(|n| n.outputs.iter().flatten()) {
                available[*v] = false;
            }
            let nodes = topo_sort(nodes, available).map_err(|e| e.context(&format!("If node '{node_name}' {key}")))?;
            branches.push(Branch { nodes, outputs: outs });
        }
        let else_branch = branches.pop().unwrap_or(Branch { nodes: vec![], outputs: vec![] });
        let then_branch = branches.pop().unwrap_or(Branch { nodes: vec![], outputs: vec![] });
        let mut captures = Vec::new();
        for b in [&then_branch, &else_branch] {
            let produced: std::collections::HashSet<ValueId> =
                b.nodes.iter().flat_map(|n| n.outputs.iter().flatten().copied()).collect();
            let read = b.nodes.iter().flat_map(|n| n.inputs.iter().flatten().copied()).chain(b.outputs.iter().copied());
            for v in read {
                if !produced.contains(&v) && !self.constants.contains_key(&v) && !captures.contains(&v) {
                    captures.push(v);
                }
            }
        }
        Ok(If { then_branch, else_branch, captures })
    }
}

/// `available[v]`: value `v` exists before any of `nodes` runs (an input, a constant, or for a branch
/// anything its enclosing graph defines).
pub(crate) fn topo_sort(nodes: Vec<Node>, mut available: Vec<bool>) -> Result<Vec<Node>> {
    let mut producer: HashMap<ValueId, usize> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for v in n.outputs.iter().flatten() {
            if producer.insert(*v, i).is_some() || available[*v] {
                return Err(Error::InvalidModel(format!("value defined twice (node '{}')", n.name)));
            }
        }
    }
    for n in &nodes {
        for v in n.inputs.iter().flatten() {
            if !available[*v] && !producer.contains_key(v) {
                return Err(Error::InvalidModel(format!("node '{}' reads a value that nothing defines", n.name)));
            }
        }
    }
    let mut done = vec![false; nodes.len()];
    let mut order = Vec::with_capacity(nodes.len());
    // Nodes from exporters are already sorted, so this loop usually makes one pass.
    loop {
        let mut progressed = false;
        for (i, n) in nodes.iter().enumerate() {
            if done[i] || !n.inputs.iter().flatten().all(|v| available[*v]) {
                continue;
            }
            done[i] = true;
            progressed = true;
            for v in n.outputs.iter().flatten() {
                available[*v] = true;
            }
            order.push(i);
        }
        if order.len() == nodes.len() {
            break;
        }
        if !progressed {
            return Err(Error::InvalidModel("the graph has a cycle".into()));
        }
    }
    let mut slots: Vec<Option<Node>> = nodes.into_iter().map(Some).collect();
    Ok(order.into_iter().filter_map(|i| slots[i].take()).collect())
}

fn constant_value(n: &NodeProto, node_name: &str) -> Result<Tensor> {
    let a = Attrs { node: n, name: node_name };
    let no_external = &mut |loc: &str| -> Result<Arc<Vec<u8>>> {
        Err(Error::Format(format!("Constant node '{node_name}' refers to external data {loc}")))
    };
    if let Some(t) = a.get("value").and_then(|v| v.t.as_ref()) {
        return tensor_proto::to_tensor(t, no_external);
    }
    if let Some(v) = a.get("value_float") {
        return Tensor::from_f32(vec![], vec![v.f]);
    }
    if let Some(v) = a.get("value_floats") {
        return Tensor::from_f32(vec![v.floats.len()], v.floats.clone());
    }
    if let Some(v) = a.get("value_int") {
        return Ok(Tensor::scalar_i64(v.i));
    }
    if let Some(v) = a.get("value_ints") {
        return Tensor::from_i64(vec![v.ints.len()], v.ints.clone());
    }
    Err(Error::unsupported("Constant", node_name, "only tensor, float(s) and int(s) values are supported"))
}

fn parse_op(
    n: &NodeProto,
    node_name: &str,
    opset: i64,
    constants: &HashMap<ValueId, Tensor>,
    inputs: &[Option<ValueId>],
) -> Result<Op> {
    let a = Attrs { node: n, name: node_name };
    let op = match n.op_type.as_str() {
        "Identity" => Op::Identity,
        "Relu" => Op::Relu,
        "Sigmoid" => Op::Sigmoid,
        "Tanh" => Op::Tanh,
        "Add" => Op::Add,
        "Sub" => Op::Sub,
        "Mul" => Op::Mul,
        "Div" => Op::Div,
        "MatMul" => Op::MatMul,
        "Gemm" => Op::Gemm {
            alpha: a.float("alpha", 1.0),
            beta: a.float("beta", 1.0),
            trans_a: a.int("transA", 0) != 0,
            trans_b: a.int("transB", 0) != 0,
        },
        "Gather" => Op::Gather { axis: a.int("axis", 0) },
        "Transpose" => Op::Transpose {
            perm: a
                .ints("perm")
                .map(|p| {
                    p.iter().map(|&v| usize::try_from(v).map_err(|_| a.bad("perm", "has a negative entry"))).collect()
                })
                .transpose()?,
        },
        "Reshape" => Op::Reshape { allow_zero: a.int("allowzero", 0) != 0 },
        "Flatten" => Op::Flatten { axis: a.int("axis", 1) },
        "Squeeze" => Op::Squeeze { axes: if opset < 13 { a.ints("axes") } else { None } },
        "Unsqueeze" => {
            if opset < 13 {
                Op::Unsqueeze { axes: Some(a.ints("axes").ok_or_else(|| a.bad("axes", "is required"))?) }
            } else {
                Op::Unsqueeze { axes: None }
            }
        }
        "Slice" => {
            if opset < 10 {
                let starts = a.ints("starts").ok_or_else(|| a.bad("starts", "is required"))?;
                let ends = a.ints("ends").ok_or_else(|| a.bad("ends", "is required"))?;
                Op::Slice { attrs: Some((starts, ends, a.ints("axes"))) }
            } else {
                Op::Slice { attrs: None }
            }
        }
        "Concat" => Op::Concat { axis: a.get("axis").ok_or_else(|| a.bad("axis", "is required"))?.i },
        "Split" => Op::Split {
            axis: a.int("axis", 0),
            split: if opset < 13 { a.ints("split") } else { None },
            num_outputs: n.output.len(),
        },
        "Expand" => Op::Expand,
        "Shape" => Op::Shape { start: a.int("start", 0), end: a.get("end").map(|e| e.i) },
        "ConstantOfShape" => {
            let value = match a.get("value").and_then(|v| v.t.as_ref()) {
                Some(t) => tensor_proto::to_tensor(t, &mut |_: &str| {
                    Err(Error::Format("external data in ConstantOfShape".into()))
                })?,
                None => Tensor::from_f32(vec![1], vec![0.0])?,
            };
            if value.len() != 1 {
                return Err(a.bad("value", "must hold exactly one element"));
            }
            Op::ConstantOfShape { value }
        }
        "Cast" => {
            let to = a.int("to", 0) as i32;
            Op::Cast {
                to: tensor_proto::dtype_of(to)
                    .ok_or_else(|| Error::unsupported("Cast", node_name, format!("to element type {to}")))?,
            }
        }
        "Softmax" | "LogSoftmax" => Op::Softmax {
            axis: a.int("axis", if opset < 13 { 1 } else { -1 }),
            legacy: opset < 13,
            log: n.op_type == "LogSoftmax",
        },
        "GRU" | "LSTM" | "RNN" => Op::Recurrent(parse_recurrent(&a, constants, inputs)?),
        other => {
            let consts: Vec<Option<&Tensor>> = inputs.iter().map(|v| v.and_then(|v| constants.get(&v))).collect();
            return crate::ops::parse_family(other, &a, opset, &consts)
                .unwrap_or_else(|| Err(Error::unsupported(other, node_name, "")));
        }
    };
    Ok(op)
}

fn parse_recurrent(
    a: &Attrs<'_>,
    constants: &HashMap<ValueId, Tensor>,
    inputs: &[Option<ValueId>],
) -> Result<RecurrentSpec> {
    let cell = match a.node.op_type.as_str() {
        "GRU" => CellKind::Gru { linear_before_reset: a.int("linear_before_reset", 0) != 0 },
        "LSTM" => CellKind::Lstm { input_forget: a.int("input_forget", 0) != 0 },
        _ => CellKind::Rnn,
    };
    let direction = match a.string("direction")?.as_deref() {
        None | Some("forward") => Direction::Forward,
        Some("reverse") => Direction::Reverse,
        Some("bidirectional") => Direction::Bidirectional,
        Some(other) => return Err(a.bad("direction", &format!("has unknown value '{other}'"))),
    };
    let layout = match a.int("layout", 0) {
        0 => 0,
        1 => 1,
        other => return Err(a.bad("layout", &format!("must be 0 or 1, is {other}"))),
    };
    let hidden_size = match a.get("hidden_size") {
        Some(h) if h.i > 0 && h.i <= MAX_HIDDEN => h.i as usize,
        Some(_) => return Err(a.bad("hidden_size", &format!("must be in 1..={MAX_HIDDEN}"))),
        None => {
            // Optional in ONNX: infer from a constant R of shape [dirs, G*H, H].
            let r = inputs.get(2).copied().flatten().and_then(|id| constants.get(&id));
            match r.map(|r| r.shape().to_vec()) {
                Some(s) if s.len() == 3 && s[2] > 0 && s[2] as i64 <= MAX_HIDDEN => s[2],
                _ => return Err(a.bad("hidden_size", "is missing and R is not a constant")),
            }
        }
    };
    let clip = match a.get("clip") {
        Some(c) if c.f > 0.0 => Some(c.f),
        Some(_) => return Err(a.bad("clip", "must be positive")),
        None => None,
    };
    let per_dir = cell.activations_per_direction();
    let dirs = direction.count();
    let activations = match a.get("activations") {
        Some(list) if !list.strings.is_empty() => {
            let alphas = a.get("activation_alpha").map(|x| x.floats.clone()).unwrap_or_default();
            let betas = a.get("activation_beta").map(|x| x.floats.clone()).unwrap_or_default();
            let (mut ai, mut bi) = (alphas.iter(), betas.iter());
            let mut acts = Vec::new();
            for s in &list.strings {
                let name = String::from_utf8_lossy(s);
                acts.push(
                    Activation::parse(&name, &mut ai, &mut bi).map_err(|e| e.context(&format!("node '{}'", a.name)))?,
                );
            }
            if acts.len() == per_dir && dirs == 2 {
                acts.extend_from_within(..);
            }
            if acts.len() != per_dir * dirs {
                return Err(
                    a.bad("activations", &format!("must list {} functions, lists {}", per_dir * dirs, acts.len()))
                );
            }
            acts
        }
        _ => RecurrentSpec::new(cell, direction, hidden_size).activations,
    };
    let max_inputs = if matches!(cell, CellKind::Lstm { .. }) { 8 } else { 6 };
    if inputs.len() > max_inputs || inputs.len() < 3 {
        return Err(Error::InvalidModel(format!(
            "node '{}' has {} inputs, {} takes 3 to {max_inputs}",
            a.name,
            inputs.len(),
            a.node.op_type
        )));
    }
    if a.node.output.len() > if matches!(cell, CellKind::Lstm { .. }) { 3 } else { 2 } {
        return Err(Error::InvalidModel(format!("node '{}' has too many outputs", a.name)));
    }
    Ok(RecurrentSpec { cell, direction, hidden_size, activations, clip, layout })
}

/// Nodes whose operator (or operator option) this runtime does not implement, as
/// `(op_type, node name)`, without importing the model (for `webrnn inspect`).
pub fn unsupported_nodes(bytes: &[u8]) -> Result<Vec<(String, String)>> {
    let model = <ModelProto as prost::Message>::decode(bytes)
        .map_err(|e| Error::Format(format!("not a valid ONNX model (protobuf): {e}")))?;
    let opset =
        model.opset_import.iter().find(|o| o.domain.is_empty() || o.domain == "ai.onnx").map_or(0, |o| o.version);
    let g = model.graph.unwrap_or_default();
    let mut bad = Vec::new();
    unsupported_in(&g.node, opset, &mut bad, 0);
    Ok(bad)
}

fn unsupported_in(list: &[NodeProto], opset: i64, bad: &mut Vec<(String, String)>, depth: usize) {
    for (i, n) in list.iter().enumerate() {
        let name = if n.name.is_empty() { format!("#{i}") } else { n.name.clone() };
        let custom = !(n.domain.is_empty() || n.domain == "ai.onnx");
        if n.op_type == "If" && !custom && depth < MAX_DEPTH {
            for a in n.attribute.iter().filter(|a| a.name == "then_branch" || a.name == "else_branch") {
                if let Some(g) = &a.g {
                    unsupported_in(&g.node, opset, bad, depth + 1);
                }
            }
            continue;
        }
        let inputs: Vec<Option<ValueId>> = n.input.iter().map(|_| None).collect();
        let refused = n.op_type != "Constant"
            && matches!(parse_op(n, &name, opset, &HashMap::new(), &inputs), Err(Error::UnsupportedOp { .. }));
        if custom || refused {
            bad.push((n.op_type.clone(), name));
        }
    }
}
