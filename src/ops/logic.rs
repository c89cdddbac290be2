//! Comparisons (`Equal`, `Less`, `Greater`), boolean logic (`Not`, `And`, `Or`) and `Where`.

use crate::error::Result;
use crate::tensor::Tensor;

/// Comparisons, boolean logic and selection.
#[derive(Debug, Clone, PartialEq)]
pub enum Logic {}

impl Logic {
    pub fn name(&self) -> &'static str {
        match *self {}
    }

    /// The operator of this family named `op_type` (Equal, Less, Greater, Not, And, Or, Where), or `None` for any other.
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
