//! Sessions of models that are called one chunk at a time and carry their state in graph tensors:
//! a graph input paired with a graph output of the same shape, the output fed back into the input
//! on the next call (Silero VAD's `state` → `stateN`, DTLN's `[1, 2, 128, 2]` LSTM states, GTCRN's
//! convolution caches). Such graphs have no time axis a session could step along: one call of the
//! session is one call of the graph, on batch 1, with the session's state tensors fed in.
//!
//! The pairs are found where the graph makes them plain: by name (`state`/`stateN`, `h`/`hn`,
//! `X`/`X_out`, `X_cache`/`X_cache_out`), or by structure (an input that only reaches recurrent
//! initial states, an output made only of recurrent final states, of the same shape); callers
//! declare the rest at load ([`crate::LoadOptions::state`]).

use super::Session;
use crate::error::{Error, Result};
use crate::graph::{Graph, NoHook, ValueDecl};
use crate::model::{Model, SessionPlan};
use crate::tensor::{numel, DType, Data, Tensor};

/// A graph input fed by the caller on each call.
#[derive(Debug, Clone, PartialEq)]
pub struct CallInput {
    pub graph_index: usize,
    pub name: String,
    pub dtype: DType,
    /// The declared shape at batch 1; `None` for the one dimension taken from the data's length.
    pub dims: Vec<Option<usize>>,
}

impl CallInput {
    /// The shape of a call's `len` values.
    pub fn shape(&self, len: usize) -> Result<Vec<usize>> {
        let known: usize = self.dims.iter().flatten().product();
        let free = self.dims.iter().filter(|d| d.is_none()).count();
        let shape_text = || {
            let s: Vec<String> = self.dims.iter().map(|d| d.map_or("n".into(), |d| d.to_string())).collect();
            format!("[{}]", s.join(", "))
        };
        let fill = match free {
            0 if len == known => 0,
            1 if known > 0 && len % known == 0 && len > 0 => len / known,
            _ => {
                return Err(Error::Shape(format!(
                    "input '{}' of shape {} cannot take {len} values",
                    self.name,
                    shape_text()
                )))
            }
        };
        Ok(self.dims.iter().map(|d| d.unwrap_or(fill)).collect())
    }
}

/// One piece of session state: graph input `input` takes what graph output `output` gave last call.
#[derive(Debug, Clone, PartialEq)]
pub struct StatePair {
    /// Index in the graph's inputs.
    pub input: usize,
    /// Index in the graph's outputs.
    pub output: usize,
    pub input_name: String,
    pub output_name: String,
    /// Its shape at batch 1.
    pub shape: Vec<usize>,
    /// Where it starts in the session's state vector.
    pub offset: usize,
}

/// How sessions call such a model.
#[derive(Debug, Clone, PartialEq)]
pub struct CallPlan {
    pub inputs: Vec<CallInput>,
    pub states: Vec<StatePair>,
    /// The graph outputs that are not state, as indices in the graph's outputs.
    pub outputs: Vec<usize>,
}

impl CallPlan {
    pub fn state_len(&self) -> usize {
        self.states.iter().map(|s| s.shape.iter().product::<usize>()).sum()
    }
}

/// The output names that pair by name with input `name`.
fn paired_names(name: &str) -> [String; 5] {
    [format!("{name}N"), format!("{name}n"), format!("{name}_out"), format!("{name}_n"), format!("{name}_next")]
}

/// The declared shape at batch 1: the first symbolic dimension of a shape with several is the batch.
fn batch_one(d: &ValueDecl) -> Result<Vec<Option<usize>>> {
    let dims =
        d.dims.as_ref().ok_or_else(|| Error::InvalidModel(format!("input '{}' has no declared rank", d.name)))?;
    let free = dims.iter().filter(|d| d.is_none()).count();
    let mut seen_batch = false;
    Ok(dims
        .iter()
        .map(|&x| match x {
            None if free > 1 && !seen_batch => {
                seen_batch = true;
                Some(1)
            }
            other => other,
        })
        .collect())
}

fn state_shape(g: &Graph, input: usize) -> Result<Vec<usize>> {
    let d = &g.inputs[input];
    let dims = d.dims.as_ref().ok_or_else(|| {
        Error::InvalidModel(format!("state input '{}' has no declared shape: the runtime cannot size it", d.name))
    })?;
    let shape: Vec<usize> = dims.iter().map(|x| x.unwrap_or(1)).collect();
    numel(&shape)?;
    Ok(shape)
}

/// Whether output `o`'s declared shape can hold a state of `shape`.
fn output_fits(g: &Graph, o: usize, shape: &[usize]) -> bool {
    g.outputs[o]
        .dims
        .as_ref()
        .is_none_or(|dims| dims.len() == shape.len() && dims.iter().zip(shape).all(|(d, &s)| d.is_none_or(|d| d == s)))
}

/// The call plan of `g`, with `declared` `(input, output)` state pairs.
pub(crate) fn plan(g: &Graph, declared: &[(String, String)]) -> Result<SessionPlan> {
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    let input_named = |n: &str| g.inputs.iter().position(|d| d.name == n);
    let output_named = |n: &str| g.outputs.iter().position(|d| d.name == n);
    for (i, o) in declared {
        let names = |decls: &[ValueDecl]| decls.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ");
        let ii = input_named(i).ok_or_else(|| {
            Error::InvalidArgument(format!("state: the model has no input '{i}' (inputs: {})", names(&g.inputs)))
        })?;
        let oi = output_named(o).ok_or_else(|| {
            Error::InvalidArgument(format!("state: the model has no output '{o}' (outputs: {})", names(&g.outputs)))
        })?;
        if pairs.iter().any(|&(a, b)| a == ii || b == oi) {
            return Err(Error::InvalidArgument(format!("state: '{i}' or '{o}' is declared twice")));
        }
        pairs.push((ii, oi));
    }
    let free_in = |pairs: &[(usize, usize)], i: usize| !pairs.iter().any(|p| p.0 == i);
    let free_out = |pairs: &[(usize, usize)], o: usize| !pairs.iter().any(|p| p.1 == o);
    // By name.
    for i in 0..g.inputs.len() {
        if !free_in(&pairs, i) || g.inputs[i].dtype != Some(DType::F32) {
            continue;
        }
        let found = paired_names(&g.inputs[i].name).iter().find_map(|n| output_named(n));
        if let Some(o) = found.filter(|&o| free_out(&pairs, o)) {
            if state_shape(g, i).is_ok_and(|s| output_fits(g, o, &s)) {
                pairs.push((i, o));
            }
        }
    }
    // By structure: inputs that only feed recurrent initial states, outputs made of final states.
    let derived = crate::model::state_derived(g);
    let hooked = g.schedule(&g.outputs.iter().map(|o| o.id).collect::<Vec<_>>(), true);
    let only_states: Vec<usize> =
        (0..g.inputs.len()).filter(|&i| free_in(&pairs, i) && !hooked.reads[g.inputs[i].id]).collect();
    let finals: Vec<usize> =
        (0..g.outputs.len()).filter(|&o| free_out(&pairs, o) && derived[g.outputs[o].id]).collect();
    for &i in &only_states {
        let Ok(shape) = state_shape(g, i) else { continue };
        let fits: Vec<usize> =
            finals.iter().copied().filter(|&o| free_out(&pairs, o) && output_fits(g, o, &shape)).collect();
        let rivals = only_states.iter().filter(|&&j| j != i && state_shape(g, j).is_ok_and(|s| s == shape)).count();
        if let (&[o], 0) = (fits.as_slice(), rivals) {
            pairs.push((i, o));
        }
    }
    if pairs.is_empty() {
        return Err(Error::InvalidModel(
            "no graph input pairs with a graph output as state (declare the pairs at load: state: { input: output })"
                .into(),
        ));
    }
    let mut states = Vec::new();
    let mut offset = 0;
    for &(i, o) in &pairs {
        if g.inputs[i].dtype.is_some_and(|d| d != DType::F32) {
            return Err(Error::InvalidModel(format!("state input '{}' is not a float tensor", g.inputs[i].name)));
        }
        let shape = state_shape(g, i)?;
        if !output_fits(g, o, &shape) {
            return Err(Error::InvalidModel(format!(
                "state output '{}' is declared with another shape than input '{}' ({shape:?})",
                g.outputs[o].name, g.inputs[i].name
            )));
        }
        let len: usize = shape.iter().product();
        states.push(StatePair {
            input: i,
            output: o,
            input_name: g.inputs[i].name.clone(),
            output_name: g.outputs[o].name.clone(),
            shape,
            offset,
        });
        offset += len;
    }
    let mut inputs = Vec::new();
    for (i, d) in g.inputs.iter().enumerate() {
        if pairs.iter().any(|p| p.0 == i) {
            continue;
        }
        let dims = batch_one(d)?;
        if dims.iter().filter(|x| x.is_none()).count() > 1 {
            return Err(Error::InvalidModel(format!(
                "input '{}' has more than two symbolic dimensions: fix it at load or declare it as state",
                d.name
            )));
        }
        inputs.push(CallInput { graph_index: i, name: d.name.clone(), dtype: d.dtype.unwrap_or(DType::F32), dims });
    }
    if inputs.is_empty() {
        return Err(Error::InvalidModel("every graph input is state: nothing is left to feed".into()));
    }
    let outputs: Vec<usize> = (0..g.outputs.len()).filter(|o| !pairs.iter().any(|p| p.1 == *o)).collect();
    if outputs.is_empty() {
        return Err(Error::InvalidModel("every graph output is state; nothing to predict".into()));
    }
    let wanted: Vec<usize> = g.outputs.iter().map(|o| o.id).collect();
    Ok(SessionPlan {
        inputs: Vec::new(),
        state_inputs: states.iter().map(|s| s.input).collect(),
        outputs: Vec::new(),
        state_outputs: states.iter().map(|s| s.output).collect(),
        cells: Vec::new(),
        streamable: true,
        schedule: g.schedule(&wanted, false),
        state_readers: Vec::new(),
        calls: Some(CallPlan { inputs, states, outputs }),
    })
}

impl Model {
    /// One call of a call-planned model for session `s`: its state tensors in, the new ones kept
    /// (only on success). Returns the graph outputs that are not state, as the graph gives them.
    pub(crate) async fn call_graph(
        &self,
        plan: &SessionPlan,
        s: &mut Session,
        inputs: Vec<Data>,
    ) -> Result<Vec<Tensor>> {
        let cp = plan.calls.as_ref().ok_or_else(|| Error::InvalidModel("not a call-planned model".into()))?;
        if inputs.len() != cp.inputs.len() {
            let names: Vec<&str> = cp.inputs.iter().map(|p| p.name.as_str()).collect();
            return Err(Error::InvalidArgument(format!(
                "the model takes {} input(s) per call ({}), {} were given",
                names.len(),
                names.join(", "),
                inputs.len()
            )));
        }
        let g = self.graph();
        let mut feed: Vec<Option<Tensor>> = vec![None; g.inputs.len()];
        for (p, data) in cp.inputs.iter().zip(inputs) {
            let data = match (p.dtype, data) {
                (DType::F32, Data::I64(v)) => Data::F32(v.into_iter().map(|x| x as f32).collect()),
                (DType::I64, Data::F32(v)) => {
                    return Err(Error::Shape(format!("input '{}' takes integers, got {} floats", p.name, v.len())))
                }
                (_, d) => d,
            };
            let len = match &data {
                Data::F32(v) => v.len(),
                Data::I64(v) => v.len(),
            };
            feed[p.graph_index] = Some(Tensor::new(p.shape(len)?, data)?);
        }
        let state = s.state()?;
        for st in &cp.states {
            let part = state.get(st.offset..st.offset + st.shape.iter().product::<usize>()).unwrap_or_default();
            feed[st.input] = Some(Tensor::from_f32(st.shape.clone(), part.to_vec())?);
        }
        let outs = if super::specialize::worth_it(g) {
            let spec = self.inner.specialized.get(g, self.kernels(), &feed)?;
            let kernels = spec.kernels(self.kernels());
            spec.graph.execute_within(&spec.schedule, feed, &mut NoHook, &kernels, self.inner.max_memory).await?
        } else {
            g.execute_within(&plan.schedule, feed, &mut NoHook, self.kernels(), self.inner.max_memory).await?
        };
        let mut next = state.to_vec();
        for st in &cp.states {
            let t = outs.get(st.output).ok_or_else(|| Error::InvalidModel("a state output was not computed".into()))?;
            let v = t.as_f32().map_err(|e| e.context(&format!("state output '{}'", st.output_name)))?;
            let len: usize = st.shape.iter().product();
            if v.len() != len {
                return Err(Error::Shape(format!(
                    "state output '{}' has shape {:?}, input '{}' takes {:?}",
                    st.output_name,
                    t.shape(),
                    st.input_name,
                    st.shape
                )));
            }
            next[st.offset..st.offset + len].copy_from_slice(v);
        }
        let kept: Vec<Tensor> = cp.outputs.iter().filter_map(|&o| outs.get(o).cloned()).collect();
        s.state = next;
        s.steps += 1;
        s.host_changed();
        Ok(kept)
    }
}
