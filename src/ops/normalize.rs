//! Normalisations: `Softmax` / `LogSoftmax`.

use crate::error::{shape_err, Result};
use crate::tensor::{norm_axis, numel, Tensor};

pub fn softmax(x: &Tensor, axis: i64, legacy: bool, log: bool) -> Result<Tensor> {
    let v = x.as_f32()?;
    let r = x.rank();
    if r == 0 {
        return shape_err!("softmax of a scalar");
    }
    let ax = norm_axis(axis, r)?;
    // Legacy: the block [axis..] is one row. Otherwise: the axis is the row, strided by `inner`.
    let (outer, len, inner) = if legacy {
        (numel(&x.shape()[..ax])?, numel(&x.shape()[ax..])?, 1)
    } else {
        (numel(&x.shape()[..ax])?, x.shape()[ax], numel(&x.shape()[ax + 1..])?)
    };
    let mut out = vec![0f32; v.len()];
    for o in 0..outer {
        for i in 0..inner {
            let at = |k: usize| (o * len + k) * inner + i;
            let mut m = f32::NEG_INFINITY;
            let mut nan = false;
            for k in 0..len {
                let a = v[at(k)];
                nan |= a.is_nan();
                m = m.max(a);
            }
            if nan {
                (0..len).for_each(|k| out[at(k)] = f32::NAN);
                continue;
            }
            let sum: f32 = (0..len).map(|k| (v[at(k)] - m).exp()).sum();
            for k in 0..len {
                let z = v[at(k)] - m;
                out[at(k)] = if log { z - sum.ln() } else { z.exp() / sum };
            }
        }
    }
    Tensor::from_f32(x.shape().to_vec(), out)
}

/// Normalisations with learned scale and bias.
#[derive(Debug, Clone, PartialEq)]
pub enum Norm {}

impl Norm {
    pub fn name(&self) -> &'static str {
        match *self {}
    }

    /// The operator of this family named `op_type` (BatchNormalization, LayerNormalization, InstanceNormalization), or `None` for any other.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_f32(shape.to_vec(), v.to_vec()).unwrap()
    }

    #[test]
    fn softmax_rows_sum_to_one_and_log_softmax_stays_finite() {
        let x = t(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
        let s = softmax(&x, -1, false, false).unwrap();
        let row: f32 = s.as_f32().unwrap()[..3].iter().sum();
        assert!((row - 1.0).abs() < 1e-6);
        let ls = softmax(&t(&[2], &[1000., 0.]), 0, false, true).unwrap();
        assert!(ls.as_f32().unwrap().iter().all(|v| v.is_finite()));
    }
}
