//! A minimal dense tensor: a shape and row-major data, either `f32` (activations, weights) or `i64`
//! (token ids, shapes, indices). Integer ONNX types are widened to `i64`, floating ones narrowed to `f32`.

use crate::error::{shape_err, Error, Result};

/// Element storage.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

/// Element type of a [`Tensor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    I64,
}

impl DType {
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::I64 => "int64",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Data,
}

/// The most elements one tensor may hold (256 MiB of f32). Larger shapes are refused before any
/// allocation: in wasm a failed allocation aborts the instance.
pub const MAX_ELEMENTS: usize = 1 << 26;

/// Number of elements of `shape`, or an error if it exceeds [`MAX_ELEMENTS`].
pub fn numel(shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS || shape.contains(&0))
        .ok_or_else(|| Error::Shape(format!("shape {shape:?} is too large (limit {MAX_ELEMENTS} elements)")))
}

impl Tensor {
    pub fn from_f32(shape: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        Self::new(shape, Data::F32(data))
    }

    pub fn from_i64(shape: Vec<usize>, data: Vec<i64>) -> Result<Self> {
        Self::new(shape, Data::I64(data))
    }

    pub fn new(shape: Vec<usize>, data: Data) -> Result<Self> {
        let n = numel(&shape)?;
        let len = match &data {
            Data::F32(v) => v.len(),
            Data::I64(v) => v.len(),
        };
        if n != len {
            return shape_err!("shape {shape:?} needs {n} elements, data has {len}");
        }
        Ok(Tensor { shape, data })
    }

    pub fn zeros(dtype: DType, shape: Vec<usize>) -> Result<Self> {
        let n = numel(&shape)?;
        let data = match dtype {
            DType::F32 => Data::F32(crate::budget::try_vec(n, 0.0, "a tensor")?),
            DType::I64 => Data::I64(crate::budget::try_vec(n, 0, "a tensor")?),
        };
        Ok(Tensor { shape, data })
    }

    pub fn scalar_i64(v: i64) -> Self {
        Tensor { shape: vec![], data: Data::I64(vec![v]) }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    pub fn len(&self) -> usize {
        match &self.data {
            Data::F32(v) => v.len(),
            Data::I64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn dtype(&self) -> DType {
        match self.data {
            Data::F32(_) => DType::F32,
            Data::I64(_) => DType::I64,
        }
    }

    pub fn data(&self) -> &Data {
        &self.data
    }

    pub fn into_data(self) -> Data {
        self.data
    }

    pub fn into_parts(self) -> (Vec<usize>, Data) {
        (self.shape, self.data)
    }

    pub fn as_f32(&self) -> Result<&[f32]> {
        match &self.data {
            Data::F32(v) => Ok(v),
            Data::I64(_) => Err(Error::Shape("expected a float32 tensor, got int64".into())),
        }
    }

    pub(crate) fn as_f32_mut(&mut self) -> Option<&mut [f32]> {
        match &mut self.data {
            Data::F32(v) => Some(v),
            Data::I64(_) => None,
        }
    }

    pub fn as_i64(&self) -> Result<&[i64]> {
        match &self.data {
            Data::I64(v) => Ok(v),
            Data::F32(_) => Err(Error::Shape("expected an int64 tensor, got float32".into())),
        }
    }

    pub fn into_f32(self) -> Result<Vec<f32>> {
        match self.data {
            Data::F32(v) => Ok(v),
            Data::I64(_) => Err(Error::Shape("expected a float32 tensor, got int64".into())),
        }
    }

    /// The same data viewed with another shape of equal element count.
    pub fn reshaped(self, shape: Vec<usize>) -> Result<Self> {
        Tensor::new(shape, self.data)
    }

    /// Integer contents (int64 tensors, or float tensors holding whole numbers), for shape-like inputs.
    pub fn to_i64_vec(&self) -> Result<Vec<i64>> {
        match &self.data {
            Data::I64(v) => Ok(v.clone()),
            Data::F32(v) => v
                .iter()
                .map(|&x| {
                    if x.is_finite() && x.fract() == 0.0 {
                        Ok(x as i64)
                    } else {
                        shape_err!("expected integer values, found {x}")
                    }
                })
                .collect(),
        }
    }

    /// Row-major strides of `shape`.
    pub fn strides(shape: &[usize]) -> Vec<usize> {
        let mut s = vec![1usize; shape.len()];
        for i in (0..shape.len().saturating_sub(1)).rev() {
            s[i] = s[i + 1] * shape[i + 1];
        }
        s
    }
}

/// Resolve a possibly negative axis against `rank` (valid range `-rank..rank`).
pub fn norm_axis(axis: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r {
        return shape_err!("axis {axis} out of range for rank {rank}");
    }
    Ok(a as usize)
}
