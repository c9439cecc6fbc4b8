//! Reading and validating the header of a GGUF model file.
//!
//! llama.cpp aborts, or fails with an unhelpful message, on many kinds of
//! malformed files, so whet checks a file here first, in pure Rust, and turns
//! every problem into a [`GgufError`] that says what is wrong. The same pass
//! collects the facts `whet models info` shows.
//!
//! Only the header at the start of the file is read, through a `BufReader`.
//! Tensor data is never read, but every tensor's extent is checked against the
//! file size, so that a truncated download is reported here rather than inside
//! llama.cpp.
//!
//! Layout (all integers little endian):
//!
//! ```text
//! "GGUF"  u32 version  u64 tensor_count  u64 metadata_kv_count
//! metadata_kv_count × { key: string, u32 value_type, value }
//! tensor_count      × { name: string, u32 n_dims, n_dims × u64 ne,
//!                       u32 ggml_type, u64 offset }
//! padding up to `general.alignment`, then the tensor data section
//! string = u64 byte length + UTF-8 bytes (no terminator)
//! array  = u32 element value_type + u64 count + elements
//! ```
//!
//! The limits mirror `ggml/src/gguf.cpp` of the llama.cpp that whet links
//! (llama-cpp-sys-2 0.1.160), so that a file that passes here is not rejected
//! there for a reason we could have named.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek};
use std::path::Path;

use serde::Serialize;

mod metadata;
mod reader;
mod tensors;
#[cfg(test)]
mod tests;

use metadata::*;
use reader::*;
use tensors::*;

const MAGIC: [u8; 4] = *b"GGUF";

/// Smallest metadata entry: key length + value type + a one-byte value.
const MIN_KV_LEN: u64 = 8 + 4 + 1;
/// Smallest tensor info: name length, n_dims, type, offset. llama.cpp
/// accepts `n_dims == 0` (a one-element tensor), so no dimension is counted.
const MIN_TENSOR_INFO_LEN: u64 = 8 + 4 + 4 + 8;

/// `GGUF_MAX_STRING_LENGTH` in gguf.cpp.
const MAX_STRING_LEN: u64 = 1 << 30;
/// `GGUF_MAX_ARRAY_ELEMENTS` in gguf.cpp.
const MAX_ARRAY_LEN: u64 = 1 << 30;
/// `GGML_MAX_NAME` (64) minus the terminating NUL.
const MAX_TENSOR_NAME_LEN: u64 = 63;
/// `GGML_MAX_DIMS`.
const MAX_DIMS: usize = 4;
/// whet's own limit: keys are allocated before we know whether we need them,
/// and no real key comes anywhere near this.
const MAX_KEY_LEN: u64 = 64 * 1024;
/// whet's own limit on the strings it keeps (name, architecture, chat
/// template); real chat templates are a few kilobytes.
const MAX_KEPT_STRING_LEN: u64 = 16 * 1024 * 1024;
/// `GGUF_DEFAULT_ALIGNMENT`.
const DEFAULT_ALIGNMENT: u32 = 32;

/// What whet knows about a GGUF file after validating its header.
#[derive(Debug, Clone, Serialize)]
pub struct GgufSummary {
    pub version: u32,
    pub tensor_count: u64,
    pub file_size: u64,
    /// `general.architecture`, e.g. "llama".
    pub architecture: Option<String>,
    /// `general.name`.
    pub name: Option<String>,
    /// `general.file_type` (a `LLAMA_FTYPE_*` value).
    pub file_type: Option<u32>,
    /// Human name of `file_type`, e.g. "Q4_K_M"; see [`quantization_name`].
    pub quantization: Option<String>,
    /// Sum over all tensors of the product of their dimensions.
    pub parameter_count: u64,
    /// `{architecture}.context_length`.
    pub context_length: Option<u64>,
    /// `tokenizer.chat_template`.
    pub chat_template: Option<String>,
    pub metadata_count: u64,
    /// `general.alignment`, or the default of 32.
    pub alignment: u32,
    /// Byte offset in the file where the tensor data section starts.
    pub tensor_data_offset: u64,
}

/// Why a file cannot be used as a GGUF model. The messages name the problem
/// but not the path; callers prefix "cannot load model '<path>': ".
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("no such file")]
    NotFound,
    #[error("it is a directory, not a GGUF file")]
    IsDirectory,
    #[error("it is not a regular file (a device, pipe or socket cannot be a GGUF file)")]
    NotRegularFile,
    #[error("permission denied (cannot read the file)")]
    PermissionDenied,
    // Not marked as the error source: the message already contains it, and
    // chain-printing reporters would otherwise show it twice.
    #[error("cannot read the file: {0}")]
    Io(io::Error),
    #[error("the file is empty (0 bytes)")]
    Empty,
    #[error("not a GGUF file (only {} long)", byte_count(.len))]
    TooShort { len: u64 },
    #[error("not a GGUF file (it starts with \"{}\" instead of \"GGUF\")", .found.escape_ascii())]
    BadMagic { found: [u8; 4] },
    #[error("unsupported GGUF version {0} (whet reads versions 2 and 3)")]
    UnsupportedVersion(u32),
    #[error(
        "the file is truncated: it ends inside the header while reading {what} at byte {offset}"
    )]
    Truncated { what: String, offset: u64 },
    #[error("{what}")]
    Implausible { what: String },
    #[error(
        "the file is truncated: tensor '{}' needs data up to byte {end} but the file has only {file_size} bytes",
        .tensor.escape_debug()
    )]
    TensorDataOutOfBounds {
        tensor: String,
        end: u64,
        file_size: u64,
    },
    #[error("the header is malformed at byte {offset}: {what}")]
    Malformed { what: String, offset: u64 },
}

fn byte_count(n: &u64) -> String {
    if *n == 1 {
        "1 byte".to_string()
    } else {
        format!("{n} bytes")
    }
}

/// Reads and validates the header of the GGUF file at `path`.
pub fn read_summary(path: &Path) -> Result<GgufSummary, GgufError> {
    let (file, file_size) = open(path)?;
    parse(BufReader::new(file), file_size)
}

/// Human name of a `general.file_type` value, from the `LLAMA_FTYPE_*` enum
/// in llama.h (e.g. 15 = `LLAMA_FTYPE_MOSTLY_Q4_K_M` → "Q4_K_M").
pub fn quantization_name(file_type: u32) -> String {
    let name = match file_type {
        0 => "F32", // LLAMA_FTYPE_ALL_F32
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        // 4 is commented out in llama.h but old files still carry it.
        4 => "Q4_1_SOME_F16",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        // 33..=35 were removed from llama.cpp but files with them exist.
        33 => "Q4_0_4_4",
        34 => "Q4_0_4_8",
        35 => "Q4_0_8_8",
        36 => "TQ1_0",
        37 => "TQ2_0",
        38 => "MXFP4_MOE",
        39 => "NVFP4",
        40 => "Q1_0",
        41 => "Q2_0",
        _ => return format!("unknown (file type {file_type})"),
    };
    name.to_string()
}

fn open(path: &Path) -> Result<(File, u64), GgufError> {
    // Checked before opening: on Unix a directory opens fine and only fails
    // on read, and opening a FIFO would block.
    let meta = fs::metadata(path).map_err(open_error)?;
    if meta.is_dir() {
        return Err(GgufError::IsDirectory);
    }
    if !meta.is_file() {
        return Err(GgufError::NotRegularFile);
    }
    let file = File::open(path).map_err(open_error)?;
    // The size of what we actually opened, in case the path was replaced.
    let file_size = file.metadata().map_err(open_error)?.len();
    Ok((file, file_size))
}

fn open_error(err: io::Error) -> GgufError {
    match err.kind() {
        // NotADirectory: a path like "model.gguf/x" — there is no such file.
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => GgufError::NotFound,
        io::ErrorKind::PermissionDenied => GgufError::PermissionDenied,
        io::ErrorKind::IsADirectory => GgufError::IsDirectory,
        _ => GgufError::Io(err),
    }
}

/// Parses a whole header from `inner`, which must be positioned at the start
/// of a file of `file_size` bytes.
fn parse<R: Read + Seek>(inner: R, file_size: u64) -> Result<GgufSummary, GgufError> {
    let mut r = HeaderReader::new(inner, file_size);
    check_magic(&mut r)?;
    let version = read_version(&mut r)?;
    let tensor_count = r.u64("the tensor count")?;
    let metadata_count = r.u64("the metadata entry count")?;
    check_counts(&r, tensor_count, metadata_count)?;

    let mut meta = Metadata::default();
    for index in 0..metadata_count {
        read_kv(&mut r, index, metadata_count, &mut meta)?;
    }
    let alignment = meta.alignment.unwrap_or(DEFAULT_ALIGNMENT);

    let mut tensors = TensorScan::new(alignment);
    for index in 0..tensor_count {
        let info = read_tensor_info(&mut r, index, tensor_count, alignment, &mut tensors.names)?;
        tensors.add(info)?;
    }
    let tensor_data_offset = data_section_start(&r, tensor_count, alignment)?;
    tensors.check_bounds(tensor_data_offset, file_size)?;
    check_vocabulary_fits_embedding(meta.token_count, tensors.embedding_rows)?;

    let context_length = meta.take_context_length()?;
    Ok(GgufSummary {
        version,
        tensor_count,
        file_size,
        quantization: meta.file_type.map(quantization_name),
        architecture: meta.architecture,
        name: meta.name,
        file_type: meta.file_type,
        parameter_count: tensors.parameter_count,
        context_length,
        chat_template: meta.chat_template,
        metadata_count,
        alignment,
        tensor_data_offset,
    })
}

/// One embedding row per token. llama.cpp only finds a mismatch after
/// building the whole vocabulary, which for a file claiming millions of
/// tokens takes a minute and gigabytes; the two counts are known here.
fn check_vocabulary_fits_embedding(
    token_count: Option<u64>,
    embedding_rows: Option<u64>,
) -> Result<(), GgufError> {
    match (token_count, embedding_rows) {
        (Some(tokens), Some(rows)) if tokens != rows => Err(GgufError::Implausible {
            what: format!(
                "the vocabulary has {tokens} tokens (tokenizer.ggml.tokens) but the token \
                 embeddings (token_embd.weight) have {rows} rows; they must be equal"
            ),
        }),
        _ => Ok(()),
    }
}

fn check_magic<R: Read + Seek>(r: &mut HeaderReader<R>) -> Result<(), GgufError> {
    match r.file_size {
        0 => return Err(GgufError::Empty),
        len @ 1..=3 => return Err(GgufError::TooShort { len }),
        _ => {}
    }
    let found: [u8; 4] = r.array("the magic number")?;
    if found != MAGIC {
        return Err(GgufError::BadMagic { found });
    }
    Ok(())
}

fn read_version<R: Read + Seek>(r: &mut HeaderReader<R>) -> Result<u32, GgufError> {
    let version = r.u32("the GGUF version")?;
    // Version 1 used 32-bit counts, so reading it as v2/v3 would misparse.
    match version {
        2 | 3 => Ok(version),
        _ => Err(GgufError::UnsupportedVersion(version)),
    }
}

/// Rejects counts the file cannot possibly hold, before looping over them:
/// a corrupt count of 2^62 must fail at once, not after 2^62 iterations.
fn check_counts<R: Read + Seek>(
    r: &HeaderReader<R>,
    tensor_count: u64,
    metadata_count: u64,
) -> Result<(), GgufError> {
    let claims = |what: String| GgufError::Implausible {
        what: format!(
            "the header claims {what}, more than a {}-byte file can hold",
            r.file_size
        ),
    };
    let kv_bytes = metadata_count.checked_mul(MIN_KV_LEN);
    let tensor_bytes = tensor_count.checked_mul(MIN_TENSOR_INFO_LEN);
    let fits = |bytes: Option<u64>| bytes.is_some_and(|n| n <= r.remaining());
    if !fits(kv_bytes) {
        return Err(claims(format!("{metadata_count} metadata entries")));
    }
    if !fits(tensor_bytes) {
        return Err(claims(format!("{tensor_count} tensors")));
    }
    let both = kv_bytes
        .zip(tensor_bytes)
        .and_then(|(a, b)| a.checked_add(b));
    if !fits(both) {
        return Err(claims(format!(
            "{metadata_count} metadata entries and {tensor_count} tensors"
        )));
    }
    Ok(())
}
