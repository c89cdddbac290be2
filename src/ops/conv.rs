//! `Conv` and `ConvTranspose`.

use crate::error::Result;
use crate::tensor::Tensor;

/// `Conv` and `ConvTranspose`, 1-D and 2-D.
#[derive(Debug, Clone, PartialEq)]
pub enum Conv {}

impl Conv {
    pub fn name(&self) -> &'static str {
        match *self {}
    }

    /// The operator of this family named `op_type` (Conv, ConvTranspose), or `None` for any other.
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
