//! A node's ONNX attributes, read by each family's `parse`.

use crate::error::{Error, Result};
use crate::onnx::proto::{AttributeProto, GraphProto, NodeProto};
use crate::tensor::Tensor;

/// The attributes of one node, with its name for error messages.
pub struct Attrs<'a> {
    pub node: &'a NodeProto,
    pub name: &'a str,
}

impl<'a> Attrs<'a> {
    pub fn op_type(&self) -> &'a str {
        &self.node.op_type
    }
    pub fn get(&self, key: &str) -> Option<&'a AttributeProto> {
        self.node.attribute.iter().find(|a| a.name == key)
    }
    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
    pub fn int(&self, key: &str, default: i64) -> i64 {
        self.get(key).map_or(default, |a| a.i)
    }
    pub fn float(&self, key: &str, default: f32) -> f32 {
        self.get(key).map_or(default, |a| a.f)
    }
    pub fn ints(&self, key: &str) -> Option<Vec<i64>> {
        self.get(key).map(|a| a.ints.clone())
    }
    pub fn floats(&self, key: &str) -> Option<Vec<f32>> {
        self.get(key).map(|a| a.floats.clone())
    }
    pub fn string(&self, key: &str) -> Result<Option<String>> {
        self.get(key).map(|a| String::from_utf8(a.s.clone()).map_err(|_| self.bad(key, "is not UTF-8"))).transpose()
    }
    pub fn strings(&self, key: &str) -> Result<Option<Vec<String>>> {
        self.get(key)
            .map(|a| {
                a.strings
                    .iter()
                    .map(|s| String::from_utf8(s.clone()).map_err(|_| self.bad(key, "is not UTF-8")))
                    .collect()
            })
            .transpose()
    }
    /// A tensor-valued attribute (inline data only).
    pub fn tensor(&self, key: &str) -> Result<Option<Tensor>> {
        let name = self.name;
        self.get(key)
            .and_then(|a| a.t.as_ref())
            .map(|t| {
                crate::onnx::tensor_proto::to_tensor(t, &mut |loc: &str| {
                    Err(Error::Format(format!("node '{name}': attribute {key} refers to external data {loc}")))
                })
            })
            .transpose()
    }
    /// A graph-valued attribute (`If` branches).
    pub fn graph(&self, key: &str) -> Option<&'a GraphProto> {
        self.get(key).and_then(|a| a.g.as_deref())
    }
    /// An error naming the node, its operator and the attribute.
    pub fn bad(&self, key: &str, what: &str) -> Error {
        Error::InvalidModel(format!("node '{}' ({}): attribute {key} {what}", self.name, self.node.op_type))
    }
    /// An unsupported-operator error naming the node (for options this runtime does not implement).
    pub fn unsupported(&self, detail: impl Into<String>) -> Error {
        Error::unsupported(&self.node.op_type, self.name, detail)
    }
}
