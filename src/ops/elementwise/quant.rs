//! `DequantizeLinear` (opsets 10–25): `y = (x - x_zero_point) · x_scale` with one scale for the
//! tensor, one per slice along `axis` (opset 13), or one per block of `block_size` along `axis`
//! (opset 21). This is how weight-only quantized models store their weights (int8 initializers
//! behind a `DequantizeLinear`): the importer folds the node once at load (`onnx/fold.rs`), so the
//! kernels see float weights and the file is a quarter of the size.
//!
//! Integer types of every width are `i64` here; the difference is taken in integers and converted
//! once, as onnxruntime's kernel does (`float(x - zp) · scale`), so results match it bit for bit.

use crate::error::{shape_err, Result};
use crate::tensor::{norm_axis, Data, Tensor};

/// Dequantizes `x` (an integer tensor) by `scale` (float) and the optional `zero_point` (an integer
/// tensor of `scale`'s shape).
pub fn dequantize(x: &Tensor, scale: &Tensor, zero_point: Option<&Tensor>, axis: i64, block: usize) -> Result<Tensor> {
    let Data::I64(q) = x.data() else {
        return shape_err!("DequantizeLinear needs an integer x, got {}", x.dtype().name());
    };
    let Data::F32(s) = scale.data() else {
        return shape_err!("DequantizeLinear needs a float x_scale, got {}", scale.dtype().name());
    };
    let z = match zero_point.map(Tensor::data) {
        None => None,
        Some(Data::I64(z)) => Some(z.as_slice()),
        Some(Data::F32(_)) => return shape_err!("DequantizeLinear's x_zero_point must be an integer tensor"),
    };
    if let Some(zp) = zero_point {
        if zp.shape() != scale.shape() {
            return shape_err!(
                "DequantizeLinear's x_zero_point has shape {:?}, x_scale {:?}: they must match",
                zp.shape(),
                scale.shape()
            );
        }
    }
    let shape = x.shape();
    // Element i's scale index: i's (outer, c, inner) coordinates around `axis`, c mapped to its
    // slice (per axis) or block (blocked).
    let per_tensor = block == 0 && scale.len() == 1 && scale.rank() <= 1;
    let (n, inner, groups) = if per_tensor {
        (1, 1, 1)
    } else {
        let a = norm_axis(axis, shape.len())?;
        let n = shape[a];
        let inner: usize = shape[a + 1..].iter().product();
        if block == 0 {
            if scale.rank() != 1 || scale.len() != n {
                return shape_err!(
                    "DequantizeLinear's x_scale has shape {:?}: per-axis scales need one per slice of x {shape:?} along axis {a} ({n})",
                    scale.shape()
                );
            }
            (n, inner, n)
        } else {
            let groups = n.div_ceil(block);
            let mut want = shape.to_vec();
            want[a] = groups;
            if scale.shape() != want.as_slice() {
                return shape_err!(
                    "DequantizeLinear's x_scale has shape {:?}: blocks of {block} along axis {a} of x {shape:?} need {want:?}",
                    scale.shape()
                );
            }
            (n, inner, groups)
        }
    };
    let index = |i: usize| -> usize {
        if per_tensor {
            return 0;
        }
        let (o, rest) = (i / (n * inner), i % (n * inner));
        let (c, j) = (rest / inner, rest % inner);
        match c.checked_div(block) {
            None => c,
            Some(g) => (o * groups + g) * inner + j,
        }
    };
    let y: Vec<f32> = q
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let k = index(i);
            let zp = z.map_or(0, |z| z[k]);
            (v.wrapping_sub(zp)) as f32 * s[k]
        })
        .collect();
    Tensor::from_f32(shape.to_vec(), y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(shape: &[usize], v: &[i64]) -> Tensor {
        Tensor::from_i64(shape.to_vec(), v.to_vec()).unwrap()
    }
    fn float(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_f32(shape.to_vec(), v.to_vec()).unwrap()
    }

    #[test]
    fn per_tensor_per_axis_and_blocked() {
        let x = int(&[2, 3], &[0, 3, 128, -4, 10, 255]);
        let y = dequantize(&x, &float(&[], &[0.5]), Some(&int(&[], &[128])), 1, 0).unwrap();
        assert_eq!(y.as_f32().unwrap(), &[-64.0, -62.5, 0.0, -66.0, -59.0, 63.5]);
        let y = dequantize(&x, &float(&[3], &[1.0, 2.0, 4.0]), None, 1, 0).unwrap();
        assert_eq!(y.as_f32().unwrap(), &[0.0, 6.0, 512.0, -4.0, 20.0, 1020.0]);
        let y = dequantize(&x, &float(&[2], &[1.0, -1.0]), Some(&int(&[2], &[0, 10])), 0, 0).unwrap();
        assert_eq!(y.as_f32().unwrap(), &[0.0, 3.0, 128.0, 14.0, 0.0, -245.0]);
        // Blocks of 2 along axis 1: columns {0, 1} and {2}.
        let y = dequantize(&x, &float(&[2, 2], &[1.0, 10.0, 2.0, 20.0]), None, 1, 2).unwrap();
        assert_eq!(y.as_f32().unwrap(), &[0.0, 3.0, 1280.0, -8.0, 20.0, 5100.0]);
    }

    #[test]
    fn mismatched_inputs_are_shape_errors() {
        let x = int(&[2, 3], &[0; 6]);
        let e = dequantize(&x, &float(&[2], &[1.0, 1.0]), None, 1, 0).unwrap_err();
        assert!(e.to_string().contains("per-axis"), "{e}");
        assert!(dequantize(&x, &float(&[3], &[1.0; 3]), Some(&int(&[1], &[0])), 1, 0).is_err());
        assert!(dequantize(&float(&[1], &[1.0]), &float(&[], &[1.0]), None, 1, 0).is_err());
        assert!(dequantize(&x, &int(&[], &[1]), None, 1, 0).is_err());
        assert!(dequantize(&x, &float(&[2, 1], &[1.0, 1.0]), None, 1, 2).is_err());
        assert!(dequantize(&x, &float(&[3], &[1.0; 3]), None, 5, 0).is_err());
    }
}
