//! `TensorProto` ⇄ [`Tensor`]: every numeric ONNX element type is read (floating types as `f32`,
//! integer and bool types as `i64`), from typed fields, `raw_data` or external data.

use super::proto::{data_type as dt, TensorProto};
use crate::error::{Error, Result};
use crate::tensor::{numel, DType, Data, Tensor};

/// Supplies the bytes of an external-data file named by a tensor's `location`.
pub type ExternalLoader<'a> = dyn FnMut(&str) -> Result<std::sync::Arc<Vec<u8>>> + 'a;

/// The runtime type an ONNX element type is read as, or `None` if unsupported (strings, complex…).
pub fn dtype_of(elem: i32) -> Option<DType> {
    match elem {
        dt::FLOAT | dt::DOUBLE | dt::FLOAT16 | dt::BFLOAT16 => Some(DType::F32),
        dt::UINT8 | dt::INT8 | dt::UINT16 | dt::INT16 | dt::INT32 | dt::INT64 | dt::BOOL | dt::UINT32 | dt::UINT64 => {
            Some(DType::I64)
        }
        _ => None,
    }
}

fn elem_size(elem: i32) -> usize {
    match elem {
        dt::UINT8 | dt::INT8 | dt::BOOL => 1,
        dt::UINT16 | dt::INT16 | dt::FLOAT16 | dt::BFLOAT16 => 2,
        dt::FLOAT | dt::INT32 | dt::UINT32 => 4,
        _ => 8,
    }
}

fn f16_to_f32(bits: u16) -> f32 {
    let sign = ((bits >> 15) as u32) << 31;
    let exp = ((bits >> 10) & 0x1f) as u32;
    let frac = (bits & 0x3ff) as u32;
    let v = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // Subnormal: normalise.
            let mut e = 127 - 15 + 1;
            let mut f = f;
            while f & 0x400 == 0 {
                f <<= 1;
                e -= 1;
            }
            sign | (e << 23) | ((f & 0x3ff) << 13)
        }
        (0x1f, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 127 - 15) << 23) | (f << 13),
    };
    f32::from_bits(v)
}

/// Decodes little-endian raw bytes of element type `elem`.
fn decode_raw(elem: i32, raw: &[u8], n: usize) -> Result<Data> {
    let size = elem_size(elem);
    let want = n.saturating_mul(size);
    if raw.len() != want {
        return Err(Error::Format(format!("raw data holds {} bytes, {n} elements need {want}", raw.len())));
    }
    let chunks = raw.chunks_exact(size);
    let arr = |c: &[u8]| -> [u8; 8] {
        let mut a = [0u8; 8];
        a[..c.len()].copy_from_slice(c);
        a
    };
    Ok(match elem {
        dt::FLOAT => Data::F32(chunks.map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()),
        dt::DOUBLE => Data::F32(chunks.map(|c| f64::from_le_bytes(arr(c)) as f32).collect()),
        dt::FLOAT16 => Data::F32(chunks.map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]]))).collect()),
        dt::BFLOAT16 => {
            Data::F32(chunks.map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16)).collect())
        }
        dt::INT8 => Data::I64(chunks.map(|c| c[0] as i8 as i64).collect()),
        dt::UINT8 | dt::BOOL => Data::I64(chunks.map(|c| c[0] as i64).collect()),
        dt::INT16 => Data::I64(chunks.map(|c| i16::from_le_bytes([c[0], c[1]]) as i64).collect()),
        dt::UINT16 => Data::I64(chunks.map(|c| u16::from_le_bytes([c[0], c[1]]) as i64).collect()),
        dt::INT32 => Data::I64(chunks.map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64).collect()),
        dt::UINT32 => Data::I64(chunks.map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64).collect()),
        dt::INT64 => Data::I64(chunks.map(|c| i64::from_le_bytes(arr(c))).collect()),
        dt::UINT64 => Data::I64(chunks.map(|c| u64::from_le_bytes(arr(c)) as i64).collect()),
        other => return Err(Error::Format(format!("unsupported tensor element type {other}"))),
    })
}

fn external_bytes(t: &TensorProto, load: &mut ExternalLoader<'_>) -> Result<Vec<u8>> {
    let get = |k: &str| t.external_data.iter().find(|e| e.key == k).map(|e| e.value.as_str());
    let location = get("location")
        .ok_or_else(|| Error::Format(format!("tensor '{}': external data without a location", t.name)))?;
    let num = |k: &str| -> Result<Option<usize>> {
        get(k)
            .map(|v| {
                v.trim()
                    .parse::<usize>()
                    .map_err(|_| Error::Format(format!("tensor '{}': bad external {k} '{v}'", t.name)))
            })
            .transpose()
    };
    let offset = num("offset")?.unwrap_or(0);
    let file = load(location).map_err(|e| e.context(&format!("tensor '{}'", t.name)))?;
    let length = num("length")?.unwrap_or(file.len().saturating_sub(offset));
    let end = offset.saturating_add(length);
    if end > file.len() {
        return Err(Error::Format(format!(
            "tensor '{}': external data {location} has {} bytes, needs {end}",
            t.name,
            file.len()
        )));
    }
    Ok(file[offset..end].to_vec())
}

/// Converts a `TensorProto` (its data inline or external) to a [`Tensor`].
pub fn to_tensor(t: &TensorProto, load: &mut ExternalLoader<'_>) -> Result<Tensor> {
    let ctx = |e: Error| e.context(&format!("tensor '{}'", t.name));
    let shape: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| Error::Format(format!("tensor '{}': negative dim {d}", t.name))))
        .collect::<Result<_>>()?;
    let n = numel(&shape).map_err(ctx)?;
    let elem = t.data_type;
    if dtype_of(elem).is_none() {
        return Err(Error::Format(format!("tensor '{}': unsupported element type {elem}", t.name)));
    }
    let data = if t.data_location == 1 {
        decode_raw(elem, &external_bytes(t, load)?, n).map_err(ctx)?
    } else if !t.raw_data.is_empty() || n == 0 {
        decode_raw(elem, &t.raw_data, n).map_err(ctx)?
    } else {
        let typed = match elem {
            dt::FLOAT => Data::F32(t.float_data.clone()),
            dt::DOUBLE => Data::F32(t.double_data.iter().map(|&v| v as f32).collect()),
            dt::FLOAT16 => Data::F32(t.int32_data.iter().map(|&v| f16_to_f32(v as u16)).collect()),
            dt::BFLOAT16 => {
                Data::F32(t.int32_data.iter().map(|&v| f32::from_bits((v as u32 & 0xffff) << 16)).collect())
            }
            dt::INT64 => Data::I64(t.int64_data.clone()),
            dt::UINT32 | dt::UINT64 => Data::I64(t.uint64_data.iter().map(|&v| v as i64).collect()),
            _ => Data::I64(t.int32_data.iter().map(|&v| v as i64).collect()),
        };
        typed
    };
    Tensor::new(shape, data).map_err(|e| Error::Format(format!("tensor '{}': {e}", t.name)))
}

/// Decodes one serialized `TensorProto` file (as in ONNX test data sets).
pub fn decode_tensor(bytes: &[u8]) -> Result<Tensor> {
    let t =
        <TensorProto as prost::Message>::decode(bytes).map_err(|e| Error::Format(format!("not a TensorProto: {e}")))?;
    to_tensor(&t, &mut |loc: &str| {
        Err(Error::Format(format!("a standalone tensor cannot refer to external file {loc}")))
    })
}

/// Serializes a tensor as a `TensorProto` (float32 or int64, raw little-endian data).
pub fn encode_tensor(t: &Tensor, name: &str) -> Vec<u8> {
    let (data_type, raw_data) = match t.data() {
        Data::F32(v) => (dt::FLOAT, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        Data::I64(v) => (dt::INT64, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
    };
    let p = TensorProto {
        dims: t.shape().iter().map(|&d| d as i64).collect(),
        data_type,
        name: name.to_string(),
        raw_data,
        ..Default::default()
    };
    prost::Message::encode_to_vec(&p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_decodes() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8);
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
    }

    #[test]
    fn tensor_roundtrip() {
        let t = Tensor::from_f32(vec![2, 2], vec![1.0, -2.0, 3.5, f32::NAN]).unwrap();
        let back = decode_tensor(&encode_tensor(&t, "x")).unwrap();
        assert_eq!(back.shape(), &[2, 2]);
        assert_eq!(back.as_f32().unwrap()[..3], [1.0, -2.0, 3.5]);
        assert!(back.as_f32().unwrap()[3].is_nan());
    }

    #[test]
    fn mismatched_lengths_are_format_errors() {
        let p = TensorProto { dims: vec![3], data_type: dt::FLOAT, float_data: vec![1.0], ..Default::default() };
        let e = decode_tensor(&prost::Message::encode_to_vec(&p)).unwrap_err();
        assert_eq!(e.code(), "format");
        let p = TensorProto { dims: vec![1 << 40, 1 << 40], data_type: dt::FLOAT, ..Default::default() };
        assert!(decode_tensor(&prost::Message::encode_to_vec(&p)).is_err());
    }
}
