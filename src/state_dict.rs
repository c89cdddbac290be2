//! PyTorch `state_dict` import: the safetensors file of a module holding an `nn.GRU`, `nn.LSTM` or
//! `nn.RNN` (optionally behind an `nn.Embedding` and in front of an `nn.Linear` head), described by a
//! small JSON config. This covers LSTM `proj_size`, which ONNX cannot express.
//!
//! ```json
//! { "format": "webrnn-state-dict", "version": 1, "cell": "lstm",
//!   "input_size": 16, "hidden_size": 13, "num_layers": 2, "bidirectional": false,
//!   "batch_first": true, "bias": true, "proj_size": 0, "nonlinearity": "tanh",
//!   "prefix": "rnn.", "embedding": "embed.weight",
//!   "head": { "weight": "head.weight", "bias": "head.bias", "activation": "none" } }
//! ```
//! The resulting graph has PyTorch's signature: inputs `x`, `h0` `[L·D, B, H_out]` (and `c0`
//! `[L·D, B, H]` for LSTM); outputs `y` (the head's output per step, or the RNN output), `h_n`
//! (and `c_n`).

use serde::Deserialize;

use crate::cell::{Activation, CellKind, Direction, RecurrentSpec};
use crate::error::{Error, Result};
use crate::graph::{rec_input, Graph, Node, Op, ValueDecl, ValueId};
use crate::tensor::{DType, Tensor};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub format: String,
    pub version: u32,
    pub cell: String,
    pub input_size: usize,
    pub hidden_size: usize,
    #[serde(default = "one")]
    pub num_layers: usize,
    #[serde(default)]
    pub bidirectional: bool,
    #[serde(default)]
    pub batch_first: bool,
    #[serde(default = "yes")]
    pub bias: bool,
    #[serde(default)]
    pub nonlinearity: Option<String>,
    #[serde(default)]
    pub proj_size: usize,
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub embedding: Option<String>,
    #[serde(default)]
    pub head: Option<Head>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    pub weight: String,
    #[serde(default)]
    pub bias: Option<String>,
    #[serde(default)]
    pub activation: Option<String>,
}

fn one() -> usize {
    1
}
fn yes() -> bool {
    true
}

struct Weights<'a> {
    st: safetensors::SafeTensors<'a>,
}

impl Weights<'_> {
    fn get(&self, key: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let view = self.st.tensor(key).map_err(|_| Error::InvalidModel(format!("state dict has no tensor '{key}'")))?;
        if view.shape() != shape {
            return Err(Error::Shape(format!("'{key}' has shape {:?}, the config implies {shape:?}", view.shape())));
        }
        let d = view.data();
        use safetensors::Dtype;
        let v: Vec<f32> = match view.dtype() {
            Dtype::F32 => d.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            Dtype::F64 => d
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
                .collect(),
            Dtype::BF16 => {
                d.chunks_exact(2).map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16)).collect()
            }
            Dtype::F16 => {
                let bytes: Vec<u8> = d.to_vec();
                let t = crate::onnx::proto::TensorProto {
                    dims: vec![(bytes.len() / 2) as i64],
                    data_type: crate::onnx::proto::data_type::FLOAT16,
                    raw_data: bytes,
                    ..Default::default()
                };
                crate::onnx::decode_tensor(&prost::Message::encode_to_vec(&t))?.into_f32()?
            }
            other => return Err(Error::InvalidModel(format!("'{key}' has unsupported dtype {other:?}"))),
        };
        if v.len() != shape.iter().product::<usize>() {
            return Err(Error::Format(format!("'{key}' holds {} values for shape {shape:?}", v.len())));
        }
        Ok(v)
    }
}

/// Builds the graph of a state dict; see the module docs.
pub fn import(bytes: &[u8], config_json: &str) -> Result<Graph> {
    let cfg: Config =
        serde_json::from_str(config_json).map_err(|e| Error::Format(format!("state-dict config: {e}")))?;
    if cfg.format != "webrnn-state-dict" || cfg.version != 1 {
        return Err(Error::Format(format!(
            "state-dict config: format '{}' version {} (expected webrnn-state-dict version 1)",
            cfg.format, cfg.version
        )));
    }
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| Error::Format(format!("safetensors: {e}")))?;
    let w = Weights { st };
    build(&cfg, &w)
}

struct Builder {
    g: Graph,
}

impl Builder {
    fn value(&mut self, name: &str) -> ValueId {
        self.g.value_names.push(name.to_string());
        self.g.constants.push(None);
        self.g.value_names.len() - 1
    }
    fn constant(&mut self, name: &str, t: Tensor) -> ValueId {
        let id = self.value(name);
        self.g.constants[id] = Some(t);
        id
    }
    fn ints(&mut self, name: &str, v: &[i64]) -> Result<ValueId> {
        Ok(self.constant(name, Tensor::from_i64(vec![v.len()], v.to_vec())?))
    }
    fn node(&mut self, name: &str, op: Op, inputs: Vec<Option<ValueId>>, outputs: usize) -> Vec<ValueId> {
        let outs: Vec<ValueId> = (0..outputs).map(|k| self.value(&format!("{name}:{k}"))).collect();
        self.g.nodes.push(Node {
            name: name.to_string(),
            op,
            inputs,
            outputs: outs.iter().map(|&v| Some(v)).collect(),
        });
        outs
    }
}

fn build(cfg: &Config, w: &Weights<'_>) -> Result<Graph> {
    let cell = match cfg.cell.as_str() {
        "gru" => CellKind::Gru { linear_before_reset: true },
        "lstm" => CellKind::Lstm { input_forget: false },
        "rnn" => CellKind::Rnn,
        other => return Err(Error::Format(format!("state-dict config: unknown cell '{other}' (gru, lstm, rnn)"))),
    };
    let lstm = matches!(cell, CellKind::Lstm { .. });
    if cfg.proj_size > 0 && !lstm {
        return Err(Error::Format("state-dict config: proj_size is only valid for lstm".into()));
    }
    if cfg.hidden_size == 0 || cfg.num_layers == 0 || cfg.input_size == 0 || cfg.num_layers > 64 {
        return Err(Error::Format("state-dict config: sizes must be positive (and at most 64 layers)".into()));
    }
    if cfg.proj_size >= cfg.hidden_size && cfg.proj_size > 0 {
        return Err(Error::Format("state-dict config: proj_size must be smaller than hidden_size".into()));
    }
    let act = match (cell, cfg.nonlinearity.as_deref()) {
        (CellKind::Rnn, None | Some("tanh")) => Some(Activation::Tanh),
        (CellKind::Rnn, Some("relu")) => Some(Activation::Relu),
        (CellKind::Rnn, Some(o)) => {
            return Err(Error::Format(format!("state-dict config: unknown nonlinearity '{o}'")))
        }
        (_, None) => None,
        (_, Some(_)) => return Err(Error::Format("state-dict config: nonlinearity is only valid for rnn".into())),
    };
    let dirs = if cfg.bidirectional { 2 } else { 1 };
    let direction = if cfg.bidirectional { Direction::Bidirectional } else { Direction::Forward };
    let hidden = cfg.hidden_size;
    let out = if cfg.proj_size > 0 { cfg.proj_size } else { hidden };
    let gates = cell.gates();
    // PyTorch gate blocks → ONNX order: GRU (r, z, n) → (z, r, h); LSTM (i, f, g, o) → (i, o, f, c).
    let order: &[usize] = match cell {
        CellKind::Gru { .. } => &[1, 0, 2],
        CellKind::Lstm { .. } => &[0, 3, 1, 2],
        CellKind::Rnn => &[0],
    };
    let reorder = |v: &[f32], cols: usize| -> Vec<f32> {
        order.iter().flat_map(|&g| v[g * hidden * cols..(g + 1) * hidden * cols].iter().copied()).collect()
    };

    let mut b =
        Builder { g: Graph { value_names: vec![], nodes: vec![], inputs: vec![], outputs: vec![], constants: vec![] } };
    let x = b.value("x");
    let h0 = b.value("h0");
    let c0 = lstm.then(|| b.value("c0"));
    let ld = cfg.num_layers * dirs;
    let tokens = cfg.embedding.is_some();
    let x_dims = if tokens { vec![None, None] } else { vec![None, None, Some(cfg.input_size)] };
    b.g.inputs.push(ValueDecl {
        name: "x".into(),
        id: x,
        dtype: Some(if tokens { DType::I64 } else { DType::F32 }),
        dims: Some(x_dims),
    });
    b.g.inputs.push(ValueDecl {
        name: "h0".into(),
        id: h0,
        dtype: Some(DType::F32),
        dims: Some(vec![Some(ld), None, Some(out)]),
    });
    if let Some(c0) = c0 {
        b.g.inputs.push(ValueDecl {
            name: "c0".into(),
            id: c0,
            dtype: Some(DType::F32),
            dims: Some(vec![Some(ld), None, Some(hidden)]),
        });
    }

    let mut cur = x;
    if let Some(key) = &cfg.embedding {
        let view = w.st.tensor(key).map_err(|_| Error::InvalidModel(format!("state dict has no tensor '{key}'")))?;
        let shape = view.shape().to_vec();
        if shape.len() != 2 || shape[1] != cfg.input_size {
            return Err(Error::Shape(format!(
                "embedding '{key}' has shape {shape:?}, expected [vocab, {}]",
                cfg.input_size
            )));
        }
        let table = b.constant(key, Tensor::from_f32(shape.clone(), w.get(key, &shape)?)?);
        cur = b.node("embedding", Op::Gather { axis: 0 }, vec![Some(table), Some(cur)], 1)[0];
    }
    if cfg.batch_first {
        cur = b.node("to_time_major", Op::Transpose { perm: Some(vec![1, 0, 2]) }, vec![Some(cur)], 1)[0];
    }
    let mut y_h = Vec::new();
    let mut y_c = Vec::new();
    let axes0 = b.ints("axes0", &[0])?;
    let flat_shape = b.ints("shape_t_b_flat", &[0, 0, -1])?;
    for layer in 0..cfg.num_layers {
        let in_size = if layer == 0 { cfg.input_size } else { dirs * out };
        let (mut wv, mut rv, mut bv, mut pv) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for d in 0..dirs {
            let sfx = format!("l{layer}{}", if d == 1 { "_reverse" } else { "" });
            let p = &cfg.prefix;
            wv.extend(reorder(&w.get(&format!("{p}weight_ih_{sfx}"), &[gates * hidden, in_size])?, in_size));
            rv.extend(reorder(&w.get(&format!("{p}weight_hh_{sfx}"), &[gates * hidden, out])?, out));
            if cfg.bias {
                bv.extend(reorder(&w.get(&format!("{p}bias_ih_{sfx}"), &[gates * hidden])?, 1));
                bv.extend(reorder(&w.get(&format!("{p}bias_hh_{sfx}"), &[gates * hidden])?, 1));
            }
            if cfg.proj_size > 0 {
                pv.extend(w.get(&format!("{p}weight_hr_{sfx}"), &[out, hidden])?);
            }
        }
        let name = format!("layer{layer}");
        let wc = b.constant(&format!("{name}.W"), Tensor::from_f32(vec![dirs, gates * hidden, in_size], wv)?);
        let rc = b.constant(&format!("{name}.R"), Tensor::from_f32(vec![dirs, gates * hidden, out], rv)?);
        let bc = if cfg.bias {
            Some(b.constant(&format!("{name}.B"), Tensor::from_f32(vec![dirs, 2 * gates * hidden], bv)?))
        } else {
            None
        };
        let pc = if cfg.proj_size > 0 {
            Some(b.constant(&format!("{name}.proj"), Tensor::from_f32(vec![dirs, out, hidden], pv)?))
        } else {
            None
        };
        let starts = b.ints(&format!("{name}.start"), &[(layer * dirs) as i64])?;
        let ends = b.ints(&format!("{name}.end"), &[((layer + 1) * dirs) as i64])?;
        let h_init = b.node(
            &format!("{name}.h0"),
            Op::Slice { attrs: None },
            vec![Some(h0), Some(starts), Some(ends), Some(axes0)],
            1,
        )[0];
        let c_init = c0.map(|c0| {
            b.node(
                &format!("{name}.c0"),
                Op::Slice { attrs: None },
                vec![Some(c0), Some(starts), Some(ends), Some(axes0)],
                1,
            )[0]
        });
        let mut spec = RecurrentSpec::new(cell, direction, hidden);
        if let Some(a) = act {
            spec.activations = vec![a; dirs];
        }
        let mut inputs = vec![None; rec_input::PROJ + 1];
        inputs[rec_input::X] = Some(cur);
        inputs[rec_input::W] = Some(wc);
        inputs[rec_input::R] = Some(rc);
        inputs[rec_input::B] = bc;
        inputs[rec_input::INITIAL_H] = Some(h_init);
        inputs[rec_input::INITIAL_C] = c_init;
        inputs[rec_input::PROJ] = pc;
        let outs = b.node(&name, Op::Recurrent(spec), inputs, if lstm { 3 } else { 2 });
        y_h.push(Some(outs[1]));
        if lstm {
            y_c.push(Some(outs[2]));
        }
        let tbdh =
            b.node(&format!("{name}.y_t"), Op::Transpose { perm: Some(vec![0, 2, 1, 3]) }, vec![Some(outs[0])], 1)[0];
        cur = b.node(&format!("{name}.y"), Op::Reshape { allow_zero: false }, vec![Some(tbdh), Some(flat_shape)], 1)[0];
    }
    if cfg.batch_first {
        cur = b.node("to_batch_major", Op::Transpose { perm: Some(vec![1, 0, 2]) }, vec![Some(cur)], 1)[0];
    }
    if let Some(head) = &cfg.head {
        let view =
            w.st.tensor(&head.weight)
                .map_err(|_| Error::InvalidModel(format!("state dict has no tensor '{}'", head.weight)))?;
        let shape = view.shape().to_vec();
        if shape.len() != 2 || shape[1] != dirs * out {
            return Err(Error::Shape(format!(
                "head '{}' has shape {shape:?}, expected [classes, {}]",
                head.weight,
                dirs * out
            )));
        }
        let wt = crate::ops::transpose(&Tensor::from_f32(shape.clone(), w.get(&head.weight, &shape)?)?, None)?;
        let wc = b.constant(&head.weight, wt);
        cur = b.node("head", Op::MatMul, vec![Some(cur), Some(wc)], 1)[0];
        if let Some(bias) = &head.bias {
            let bc = b.constant(bias, Tensor::from_f32(vec![shape[0]], w.get(bias, &[shape[0]])?)?);
            cur = b.node("head.bias", Op::Add, vec![Some(cur), Some(bc)], 1)[0];
        }
        match head.activation.as_deref() {
            None | Some("none") => {}
            Some("softmax") => {
                cur = b.node("head.softmax", Op::Softmax { axis: -1, legacy: false, log: false }, vec![Some(cur)], 1)[0]
            }
            Some("log_softmax") => {
                cur = b.node("head.log_softmax", Op::Softmax { axis: -1, legacy: false, log: true }, vec![Some(cur)], 1)
                    [0]
            }
            Some(o) => return Err(Error::Format(format!("state-dict config: unknown head activation '{o}'"))),
        }
    }
    let h_n = b.node("h_n", Op::Concat { axis: 0 }, y_h, 1)[0];
    b.g.outputs.push(ValueDecl { name: "y".into(), id: cur, dtype: Some(DType::F32), dims: None });
    b.g.outputs.push(ValueDecl { name: "h_n".into(), id: h_n, dtype: Some(DType::F32), dims: None });
    if lstm {
        let c_n = b.node("c_n", Op::Concat { axis: 0 }, y_c, 1)[0];
        b.g.outputs.push(ValueDecl { name: "c_n".into(), id: c_n, dtype: Some(DType::F32), dims: None });
    }
    Ok(b.g)
}
