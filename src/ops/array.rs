//! `Size`, `Range`, `ScatterND`, `GatherElements`, `Tile`.

use crate::error::Result;
use crate::tensor::Tensor;

/// Indexing and generating operators.
#[derive(Debug, Clone, PartialEq)]
pub enum Array {}

impl Array {
    pub fn name(&self) -> &'static str {
        match *self {}
    }

    /// The operator of this family named `op_type` (Size, Range, ScatterND, GatherElements, Tile), or `None` for any other.
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
