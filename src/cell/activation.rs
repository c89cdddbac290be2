//! The activation functions the ONNX recurrent operators accept, with ONNX's default parameters.

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    Sigmoid,
    Tanh,
    Relu,
    HardSigmoid { alpha: f32, beta: f32 },
    LeakyRelu { alpha: f32 },
    Elu { alpha: f32 },
    Softsign,
    Softplus,
    Affine { alpha: f32, beta: f32 },
    ScaledTanh { alpha: f32, beta: f32 },
    ThresholdedRelu { alpha: f32 },
}

impl Activation {
    /// Parses an ONNX activation name (case-insensitive, as onnxruntime does). `alphas`/`betas` are
    /// the node's `activation_alpha`/`activation_beta` lists, consumed in order by the activations that
    /// take a parameter (also onnxruntime's rule); a missing value takes the ONNX default.
    pub fn parse(
        name: &str,
        alphas: &mut std::slice::Iter<'_, f32>,
        betas: &mut std::slice::Iter<'_, f32>,
    ) -> Result<Self> {
        let mut a = |d: f32| alphas.next().copied().unwrap_or(d);
        Ok(match name.to_ascii_lowercase().as_str() {
            "sigmoid" => Activation::Sigmoid,
            "tanh" => Activation::Tanh,
            "relu" => Activation::Relu,
            "hardsigmoid" => {
                let alpha = a(0.2);
                Activation::HardSigmoid { alpha, beta: betas.next().copied().unwrap_or(0.5) }
            }
            "leakyrelu" => Activation::LeakyRelu { alpha: a(0.01) },
            "elu" => Activation::Elu { alpha: a(1.0) },
            "softsign" => Activation::Softsign,
            "softplus" => Activation::Softplus,
            "affine" => {
                let alpha = a(1.0);
                Activation::Affine { alpha, beta: betas.next().copied().unwrap_or(0.0) }
            }
            "scaledtanh" => {
                let alpha = a(1.0);
                Activation::ScaledTanh { alpha, beta: betas.next().copied().unwrap_or(1.0) }
            }
            "thresholdedrelu" => Activation::ThresholdedRelu { alpha: a(1.0) },
            other => return Err(Error::InvalidModel(format!("unknown recurrent activation '{other}'"))),
        })
    }

    /// Applies the function to one value. Finite input gives finite output; NaN gives NaN.
    #[inline]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::Sigmoid => sigmoid(x),
            Activation::Tanh => x.tanh(),
            Activation::Relu => {
                if x.is_nan() {
                    x
                } else {
                    x.max(0.0)
                }
            }
            Activation::HardSigmoid { alpha, beta } => {
                let v = alpha * x + beta;
                if v.is_nan() {
                    v
                } else {
                    v.clamp(0.0, 1.0)
                }
            }
            Activation::LeakyRelu { alpha } => {
                if x < 0.0 {
                    alpha * x
                } else {
                    x
                }
            }
            Activation::Elu { alpha } => {
                if x < 0.0 {
                    alpha * (x.exp() - 1.0)
                } else {
                    x
                }
            }
            Activation::Softsign => x / (1.0 + x.abs()),
            Activation::Softplus => softplus(x),
            Activation::Affine { alpha, beta } => alpha * x + beta,
            Activation::ScaledTanh { alpha, beta } => alpha * (beta * x).tanh(),
            Activation::ThresholdedRelu { alpha } => {
                if x > alpha || x.is_nan() {
                    x
                } else {
                    0.0
                }
            }
        }
    }
}

#[inline]
pub fn sigmoid(x: f32) -> f32 {
    // exp(-x) overflows to +inf for x < -88, and 1 / (1 + inf) = 0: the right limit, never NaN.
    1.0 / (1.0 + (-x).exp())
}

#[inline]
fn softplus(x: f32) -> f32 {
    if x > 20.0 {
        x
    } else {
        x.exp().ln_1p()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturating_inputs_stay_finite() {
        let acts = [
            Activation::Sigmoid,
            Activation::Tanh,
            Activation::Softsign,
            Activation::Softplus,
            Activation::Elu { alpha: 1.0 },
            Activation::HardSigmoid { alpha: 0.2, beta: 0.5 },
        ];
        for a in acts {
            for x in [-1e4f32, -100.0, -88.8, 0.0, 88.8, 100.0, 1e4, f32::MAX, f32::MIN] {
                assert!(a.apply(x).is_finite(), "{a:?}({x}) = {}", a.apply(x));
            }
            assert!(a.apply(f32::NAN).is_nan(), "{a:?}(NaN) must be NaN");
        }
        assert_eq!(sigmoid(-1e4), 0.0);
        assert_eq!(sigmoid(1e4), 1.0);
    }

    #[test]
    fn parameters_are_consumed_in_order_by_the_functions_that_take_them() {
        let alphas = [0.5f32, 0.3];
        let betas = [0.7f32];
        let (mut a, mut b) = (alphas.iter(), betas.iter());
        assert_eq!(Activation::parse("Tanh", &mut a, &mut b).unwrap(), Activation::Tanh);
        assert_eq!(
            Activation::parse("HardSigmoid", &mut a, &mut b).unwrap(),
            Activation::HardSigmoid { alpha: 0.5, beta: 0.7 }
        );
        assert_eq!(Activation::parse("LeakyRelu", &mut a, &mut b).unwrap(), Activation::LeakyRelu { alpha: 0.3 });
        assert_eq!(Activation::parse("elu", &mut a, &mut b).unwrap(), Activation::Elu { alpha: 1.0 });
        assert!(Activation::parse("Swish", &mut a, &mut b).is_err());
    }
}
