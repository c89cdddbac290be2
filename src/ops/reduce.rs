//! Reductions over axes.

use crate::error::Result;
use crate::tensor::Tensor;

/// The reductions.
#[derive(Debug, Clone, PartialEq)]
pub enum Reduce {}

impl Reduce {
    pub fn name(&self) -> &'static str {
        match *self {}
    }

    /// The operator of this family named `op_type` (ReduceMean, ReduceSum, ReduceMax, ReduceL2), or `None` for any other.
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
