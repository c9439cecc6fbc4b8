//! Tensor descriptions, ggml type sizes, and the check that tensor data lies
//! inside the file.

use super::*;

/// Storage of a ggml tensor type: `block_size` elements in `type_size` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct GgmlType {
    pub(super) name: &'static str,
    pub(super) block_size: u64,
    pub(super) type_size: u64,
}

/// The ggml types whet can size, from `type_traits` in ggml/src/ggml.c and
/// the block structs in ggml-common.h (sizes verified with `sizeof`). This is
/// every type the linked llama.cpp accepts (`GGML_TYPE_COUNT` = 43); the
/// removed ones are named by [`removed_ggml_type`].
pub(super) fn ggml_type(id: u32) -> Option<GgmlType> {
    let (name, block_size, type_size) = match id {
        0 => ("F32", 1, 4),
        1 => ("F16", 1, 2),
        2 => ("Q4_0", 32, 18),      // d + 16 bytes of nibbles
        3 => ("Q4_1", 32, 20),      // d, m + 16
        6 => ("Q5_0", 32, 22),      // d + u32 high bits + 16
        7 => ("Q5_1", 32, 24),      // d, m + u32 + 16
        8 => ("Q8_0", 32, 34),      // d + 32
        9 => ("Q8_1", 32, 36),      // d, s + 32
        10 => ("Q2_K", 256, 84),    // d, dmin + 16 scales + 64
        11 => ("Q3_K", 256, 110),   // 32 hmask + 64 + 12 scales + d
        12 => ("Q4_K", 256, 144),   // d, dmin + 12 scales + 128
        13 => ("Q5_K", 256, 176),   // d, dmin + 12 + 32 + 128
        14 => ("Q6_K", 256, 210),   // 128 + 64 + 16 scales + d
        15 => ("Q8_K", 256, 292),   // f32 d + 256 + 16 × i16 sums
        16 => ("IQ2_XXS", 256, 66), // d + 32 × u16
        17 => ("IQ2_XS", 256, 74),  // d + 32 × u16 + 8 scales
        18 => ("IQ3_XXS", 256, 98), // d + 96
        19 => ("IQ1_S", 256, 50),   // d + 32 + 8 × u16
        20 => ("IQ4_NL", 32, 18),   // d + 16
        21 => ("IQ3_S", 256, 110),  // d + 64 + 8 + 32 signs + 4 scales
        22 => ("IQ2_S", 256, 82),   // d + 64 + 8 + 8 scales
        23 => ("IQ4_XS", 256, 136), // d + u16 + 4 + 128
        24 => ("I8", 1, 1),
        25 => ("I16", 1, 2),
        26 => ("I32", 1, 4),
        27 => ("I64", 1, 8),
        28 => ("F64", 1, 8),
        29 => ("IQ1_M", 256, 56), // 32 + 16 + 8 scales, no d
        30 => ("BF16", 1, 2),
        34 => ("TQ1_0", 256, 54), // 48 + 4 + d
        35 => ("TQ2_0", 256, 66), // 64 + d
        39 => ("MXFP4", 32, 17),  // e8m0 scale + 16
        40 => ("NVFP4", 64, 36),  // 4 scales + 32
        41 => ("Q1_0", 128, 18),  // d + 16
        42 => ("Q2_0", 64, 18),   // d + 16
        _ => return None,
    };
    Some(GgmlType {
        name,
        block_size,
        type_size,
    })
}

/// Names of the type ids llama.cpp once had and removed (commented out in
/// ggml.h): files that use them exist, and the name says how old they are.
pub(super) fn removed_ggml_type(id: u32) -> Option<&'static str> {
    Some(match id {
        4 => "Q4_2",
        5 => "Q4_3",
        31 => "Q4_0_4_4",
        32 => "Q4_0_4_8",
        33 => "Q4_0_8_8",
        36 => "IQ4_NL_4_4",
        37 => "IQ4_NL_4_8",
        38 => "IQ4_NL_8_8",
        _ => return None,
    })
}

/// Why llama.cpp would refuse a tensor type, in words a user can act on.
fn unknown_type_message(label: &str, id: u32) -> String {
    match removed_ggml_type(id) {
        Some(name) => format!(
            "tensor {label} has ggml type {id} ({name}), which llama.cpp no longer supports; \
             convert or quantize the model again with a current llama.cpp"
        ),
        None => format!(
            "tensor {label} has ggml type {id}, which llama.cpp does not know \
             (its types are 0 to {})",
            GGML_TYPE_COUNT - 1
        ),
    }
}

/// `GGML_TYPE_COUNT` of the linked llama.cpp.
const GGML_TYPE_COUNT: u32 = 43;

/// What the layout checks need from one tensor info.
pub(super) struct TensorInfo {
    pub(super) name: String,
    pub(super) shape: Vec<u64>,
    pub(super) n_elements: u64,
    /// Offset of the data, relative to the start of the data section.
    pub(super) offset: u64,
    /// Where in the file the offset is written, for messages.
    pub(super) offset_at: u64,
    /// Bytes of data.
    pub(super) size: u64,
}

pub(super) fn read_tensor_info<R: Read + Seek>(
    r: &mut HeaderReader<R>,
    index: u64,
    count: u64,
    alignment: u32,
    names: &mut HashSet<Vec<u8>>,
) -> Result<TensorInfo, GgufError> {
    let name = read_tensor_name(r, index, count, names)?;
    let label = quote(&name);
    let shape = read_shape(r, &label)?;
    let n_elements = element_count(&shape, &label)?;

    let type_offset = r.pos;
    let type_id = r.u32(&format!("the type of tensor {label}"))?;
    let offset_at = r.pos;
    let offset = r.u64(&format!("the data offset of tensor {label}"))?;
    if offset % u64::from(alignment) != 0 {
        let detail = format!(
            "tensor {label} has data offset {offset}, which is not a multiple of the alignment {alignment}"
        );
        return Err(r.malformed(offset_at, detail));
    }
    // llama.cpp checks the type too, but its reason only reaches its log.
    let ty = ggml_type(type_id)
        .ok_or_else(|| r.malformed(type_offset, unknown_type_message(&label, type_id)))?;
    let size = tensor_size(&shape, n_elements, ty, &label).map_err(|detail| match detail {
        SizeError::Malformed(what) => r.malformed(type_offset, what),
        SizeError::Overflow(what) => GgufError::Implausible { what },
    })?;
    Ok(TensorInfo {
        name,
        shape,
        n_elements,
        offset,
        offset_at,
        size,
    })
}

/// Reads a tensor name, which must be unique and short enough for ggml.
pub(super) fn read_tensor_name<R: Read + Seek>(
    r: &mut HeaderReader<R>,
    index: u64,
    count: u64,
    names: &mut HashSet<Vec<u8>>,
) -> Result<String, GgufError> {
    let what = format!("the name of tensor {} of {count}", index + 1);
    let offset = r.pos;
    let len = r.string_len(&what, MAX_STRING_LEN)?;
    if len > MAX_TENSOR_NAME_LEN {
        let detail = format!(
            "tensor {} of {count} has a {len}-byte name; llama.cpp allows at most {MAX_TENSOR_NAME_LEN}",
            index + 1
        );
        return Err(r.malformed(offset, detail));
    }
    let bytes = r.bytes(len, &what)?;
    // Names are only used in messages, so replace invalid UTF-8 rather than
    // reject it (llama.cpp does not check either).
    let name = String::from_utf8_lossy(&bytes).into_owned();
    if !names.insert(bytes) {
        let detail = format!("tensor name {} appears twice", quote(&name));
        return Err(r.malformed(offset, detail));
    }
    Ok(name)
}

/// Reads `n_dims` and the dimensions; returns only the dimensions present.
pub(super) fn read_shape<R: Read + Seek>(
    r: &mut HeaderReader<R>,
    label: &str,
) -> Result<Vec<u64>, GgufError> {
    let n_dims_at = r.pos;
    let n_dims = r.u32(&format!("the number of dimensions of tensor {label}"))?;
    let n_dims = usize::try_from(n_dims).unwrap_or(usize::MAX);
    if n_dims > MAX_DIMS {
        let detail =
            format!("tensor {label} has {n_dims} dimensions; GGUF allows at most {MAX_DIMS}");
        return Err(r.malformed(n_dims_at, detail));
    }
    let what = format!("the shape of tensor {label}");
    let mut shape = Vec::with_capacity(n_dims);
    for dim in 0..n_dims {
        let at = r.pos;
        let ne = r.u64(&what)?;
        // ggml stores dimensions as int64_t; llama.cpp rejects negative ones.
        if i64::try_from(ne).is_err() {
            let detail = format!(
                "dimension {dim} of tensor {label} is negative ({})",
                ne as i64
            );
            return Err(r.malformed(at, detail));
        }
        shape.push(ne);
    }
    Ok(shape)
}

/// Number of elements, which llama.cpp requires to fit in an int64_t.
pub(super) fn element_count(shape: &[u64], label: &str) -> Result<u64, GgufError> {
    shape
        .iter()
        .try_fold(1u64, |acc, &ne| acc.checked_mul(ne))
        .filter(|&n| i64::try_from(n).is_ok())
        .ok_or_else(|| GgufError::Implausible {
            what: format!("tensor {label} has shape {shape:?}, too many elements to count"),
        })
}

pub(super) enum SizeError {
    Malformed(String),
    Overflow(String),
}

/// Bytes of data of a tensor. Rows are whole blocks, so this equals
/// ggml_nbytes (row size × the other dimensions), and is 0 for a tensor with
/// a zero dimension however large the others are.
pub(super) fn tensor_size(
    shape: &[u64],
    n_elements: u64,
    ty: GgmlType,
    label: &str,
) -> Result<u64, SizeError> {
    let ne0 = shape.first().copied().unwrap_or(1);
    if ne0 % ty.block_size != 0 {
        return Err(SizeError::Malformed(format!(
            "tensor {label} of type {} has {ne0} elements per row, not a multiple of the block size {}",
            ty.name, ty.block_size
        )));
    }
    (n_elements / ty.block_size)
        .checked_mul(ty.type_size)
        .ok_or_else(|| {
            SizeError::Overflow(format!(
                "tensor {label} of type {} has shape {shape:?}, too large a size to count",
                ty.name
            ))
        })
}

/// Running totals over the tensor infos, in file order.
pub(super) struct TensorScan {
    pub(super) parameter_count: u64,
    /// Raw names, for the duplicate check llama.cpp also makes.
    pub(super) names: HashSet<Vec<u8>>,
    alignment: u64,
    /// Where the next tensor's data must start, relative to the data section:
    /// llama.cpp requires each tensor right after the previous one (padded to
    /// the alignment), so overlaps and gaps are both refused.
    next_offset: u64,
    /// The previous tensor and where its data ends (unpadded).
    previous: Option<(String, u64)>,
    /// Rows of `token_embd.weight`, one per token of the vocabulary.
    pub(super) embedding_rows: Option<u64>,
}

/// The tensor whose rows are the token embeddings, in every architecture
/// llama.cpp knows (`LLM_TENSOR_TOKEN_EMBD`).
const TOKEN_EMBEDDING: &str = "token_embd.weight";

impl TensorScan {
    pub(super) fn new(alignment: u32) -> Self {
        Self {
            parameter_count: 0,
            names: HashSet::new(),
            alignment: u64::from(alignment),
            next_offset: 0,
            previous: None,
            embedding_rows: None,
        }
    }

    pub(super) fn add(&mut self, info: TensorInfo) -> Result<(), GgufError> {
        self.parameter_count = self
            .parameter_count
            .checked_add(info.n_elements)
            .ok_or_else(|| GgufError::Implausible {
                what: "the tensors have more elements in total than fit in 64 bits".to_string(),
            })?;
        if info.offset != self.next_offset {
            return Err(GgufError::Malformed {
                what: self.misplaced(&info),
                offset: info.offset_at,
            });
        }
        let too_large = || GgufError::Implausible {
            what: format!(
                "tensor {} has data offset {} and size {}, together beyond 64 bits",
                quote(&info.name),
                info.offset,
                info.size
            ),
        };
        let end = info.offset.checked_add(info.size).ok_or_else(too_large)?;
        self.next_offset = end
            .checked_next_multiple_of(self.alignment)
            .ok_or_else(too_large)?;
        if info.name == TOKEN_EMBEDDING {
            self.embedding_rows = Some(info.shape.get(1).copied().unwrap_or(1));
        }
        self.previous = Some((info.name, end));
        Ok(())
    }

    /// Says where a tensor whose offset breaks the order should have started.
    fn misplaced(&self, info: &TensorInfo) -> String {
        let label = quote(&info.name);
        let (offset, expected) = (info.offset, self.next_offset);
        match &self.previous {
            None => format!(
                "tensor {label} is the first, so its data must start at offset 0, not {offset}"
            ),
            Some((previous, previous_end)) if offset < *previous_end => format!(
                "tensor {label} has data offset {offset}, before the end of tensor {}'s data \
                 ({previous_end}), so their data overlap; it should start at {expected}",
                quote(previous)
            ),
            Some((previous, _)) => format!(
                "tensor {label} has data offset {offset}, but it should start at {expected}, \
                 right after tensor {} (llama.cpp allows no overlap and no gap)",
                quote(previous)
            ),
        }
    }

    pub(super) fn check_bounds(&self, data_offset: u64, file_size: u64) -> Result<(), GgufError> {
        // Tensors follow one another, so the last one ends furthest.
        let Some((name, rel_end)) = &self.previous else {
            return Ok(());
        };
        // Saturating: an end beyond 2^64 is simply beyond the file.
        let end = data_offset.saturating_add(*rel_end);
        if end > file_size {
            return Err(GgufError::TensorDataOutOfBounds {
                tensor: name.clone(),
                end,
                file_size,
            });
        }
        Ok(())
    }
}

/// Start of the tensor data: the end of the header rounded up to the
/// alignment. As in llama.cpp, a file without tensors has no padding.
pub(super) fn data_section_start<R: Read + Seek>(
    r: &HeaderReader<R>,
    tensor_count: u64,
    alignment: u32,
) -> Result<u64, GgufError> {
    if tensor_count == 0 {
        return Ok(r.pos);
    }
    let align = u64::from(alignment);
    let padded = r
        .pos
        .checked_next_multiple_of(align)
        .filter(|&start| start <= r.file_size);
    padded.ok_or_else(|| r.truncated("the padding before the tensor data"))
}
