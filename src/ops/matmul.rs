//! `MatMul` and `Gemm`.

use super::elementwise::{broadcast_map, broadcast_shape, broadcast_strides};
use crate::error::{shape_err, Result};
use crate::tensor::{numel, Tensor};

/// `out[m, n] += a[m, k] * b[k, n]` for row-major blocks.
pub(crate) fn matmul_block(a: &[f32], b: &[f32], out: &mut [f32], m: usize, k: usize, n: usize) {
    for i in 0..m {
        let row = &mut out[i * n..(i + 1) * n];
        for p in 0..k {
            let av = a[i * k + p];
            let brow = &b[p * n..(p + 1) * n];
            for (o, &bv) in row.iter_mut().zip(brow) {
                *o += av * bv;
            }
        }
    }
}

pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (av, bv) = (a.as_f32()?, b.as_f32()?);
    if a.rank() == 0 || b.rank() == 0 {
        return shape_err!("MatMul operands must have rank >= 1, got {:?} and {:?}", a.shape(), b.shape());
    }
    let mut ashape = a.shape().to_vec();
    let mut bshape = b.shape().to_vec();
    let a_vec = ashape.len() == 1;
    let b_vec = bshape.len() == 1;
    if a_vec {
        ashape.insert(0, 1);
    }
    if b_vec {
        bshape.push(1);
    }
    let (m, k) = (ashape[ashape.len() - 2], ashape[ashape.len() - 1]);
    let (k2, n) = (bshape[bshape.len() - 2], bshape[bshape.len() - 1]);
    if k != k2 {
        return shape_err!("MatMul inner dimensions differ: {:?} x {:?}", a.shape(), b.shape());
    }
    let batch = broadcast_shape(&ashape[..ashape.len() - 2], &bshape[..bshape.len() - 2])?;
    let nb = numel(&batch)?;
    let total = numel(&[nb, m, n])?;
    let mut out = vec![0f32; total];
    let a_bstr = broadcast_strides(&ashape[..ashape.len() - 2], &batch);
    let b_bstr = broadcast_strides(&bshape[..bshape.len() - 2], &batch);
    let bstr = Tensor::strides(&batch);
    for bi in 0..nb {
        let (mut ao, mut bo) = (0usize, 0usize);
        for ax in 0..batch.len() {
            let idx = (bi / bstr[ax]) % batch[ax];
            ao += idx * a_bstr[ax];
            bo += idx * b_bstr[ax];
        }
        let ab = &av[ao * m * k..(ao + 1) * m * k];
        let bb = &bv[bo * k * n..(bo + 1) * k * n];
        matmul_block(ab, bb, &mut out[bi * m * n..(bi + 1) * m * n], m, k, n);
    }
    let mut shape = batch;
    if !a_vec {
        shape.push(m);
    }
    if !b_vec {
        shape.push(n);
    }
    Tensor::from_f32(shape, out)
}

fn transpose2(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut o = vec![0f32; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            o[c * rows + r] = v[r * cols + c];
        }
    }
    o
}

pub fn gemm(
    a: &Tensor,
    b: &Tensor,
    c: Option<&Tensor>,
    alpha: f32,
    beta: f32,
    trans_a: bool,
    trans_b: bool,
) -> Result<Tensor> {
    if a.rank() != 2 || b.rank() != 2 {
        return shape_err!("Gemm needs 2-D operands, got {:?} and {:?}", a.shape(), b.shape());
    }
    let (ar, ac) = (a.shape()[0], a.shape()[1]);
    let (br, bc) = (b.shape()[0], b.shape()[1]);
    let am = if trans_a { transpose2(a.as_f32()?, ar, ac) } else { a.as_f32()?.to_vec() };
    let bm = if trans_b { transpose2(b.as_f32()?, br, bc) } else { b.as_f32()?.to_vec() };
    let (m, k) = if trans_a { (ac, ar) } else { (ar, ac) };
    let (k2, n) = if trans_b { (bc, br) } else { (br, bc) };
    if k != k2 {
        return shape_err!("Gemm inner dimensions differ: {:?} x {:?}", a.shape(), b.shape());
    }
    let mut out = vec![0f32; numel(&[m, n])?];
    matmul_block(&am, &bm, &mut out, m, k, n);
    if alpha != 1.0 {
        out.iter_mut().for_each(|v| *v *= alpha);
    }
    if let Some(c) = c {
        let cs = c.shape();
        if broadcast_shape(&[m, n], cs)? != [m, n] {
            return shape_err!("Gemm C of shape {cs:?} does not broadcast to [{m}, {n}]");
        }
        let (_, sum) = broadcast_map(&[m, n], &out, cs, c.as_f32()?, |o, cv| o + beta * cv)?;
        out = sum;
    }
    Tensor::from_f32(vec![m, n], out)
}

/// Copies `x` into a new tensor of shape `out_shape` where `src_index(out_flat_index)` gives the
/// source element (generic gather used by Transpose/Slice/Gather/Concat).
#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_f32(shape.to_vec(), v.to_vec()).unwrap()
    }

    #[test]
    fn matmul_batched_and_vector_forms() {
        let a = t(&[2, 1, 2], &[1., 2., 3., 4.]);
        let b = t(&[2, 2], &[1., 0., 0., 1.]);
        let c = matmul(&a, &b).unwrap();
        assert_eq!(c.shape(), &[2, 1, 2]);
        assert_eq!(c.as_f32().unwrap(), &[1., 2., 3., 4.]);
        let v = t(&[2], &[1., 1.]);
        assert_eq!(matmul(&b, &v).unwrap().shape(), &[2]);
        assert!(matmul(&a, &t(&[3, 1], &[0.; 3])).is_err());
    }
}
