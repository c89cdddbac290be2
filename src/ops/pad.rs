//! `Pad`.

use crate::error::Result;
use crate::tensor::Tensor;

/// `Pad`: constant, reflect and edge.
#[derive(Debug, Clone, PartialEq)]
pub enum Pad {}

impl Pad {
    pub fn name(&self) -> &'static str {
        match *self {}
    }

    /// The operator of this family named `op_type` (Pad), or `None` for any other.
    pub(crate) fn parse(
        _op_type: &str,
        _a: &crate::ops::Attrs<'_>,
        _opset: i64,
        _consts: &[Option<&Tensor>],
    ) -> Option<Result<Self>> {
        None
    }

    pub fn run(&self, _args: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        match *self {}
    }
}
