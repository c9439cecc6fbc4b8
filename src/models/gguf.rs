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
/// Arrays of arrays are legal GGUF; the limit keeps the recursion that skips
/// them from overflowing the stack on a hostile file.
const MAX_ARRAY_DEPTH: u32 = 8;
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

    let mut tensors = TensorScan::default();
    for index in 0..tensor_count {
        let info = read_tensor_info(&mut r, index, tensor_count, alignment, &mut tensors.names)?;
        tensors.add(info)?;
    }
    let tensor_data_offset = data_section_start(&r, tensor_count, alignment)?;
    tensors.check_bounds(tensor_data_offset, file_size)?;

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

// ---------------------------------------------------------------------------
// Byte-level reading

/// Reads the header sequentially while tracking the position, so that every
/// length can be checked against the bytes left in the file *before* anything
/// is allocated or skipped.
struct HeaderReader<R> {
    inner: R,
    pos: u64,
    file_size: u64,
}

impl<R: Read + Seek> HeaderReader<R> {
    fn new(inner: R, file_size: u64) -> Self {
        HeaderReader {
            inner,
            pos: 0,
            file_size,
        }
    }

    fn remaining(&self) -> u64 {
        self.file_size.saturating_sub(self.pos)
    }

    fn truncated(&self, what: &str) -> GgufError {
        GgufError::Truncated {
            what: what.to_string(),
            offset: self.pos,
        }
    }

    fn malformed(&self, offset: u64, what: String) -> GgufError {
        GgufError::Malformed { what, offset }
    }

    /// Fails with `Truncated` unless `len` more bytes exist in the file.
    fn require(&self, len: u64, what: &str) -> Result<(), GgufError> {
        if len > self.remaining() {
            return Err(self.truncated(what));
        }
        Ok(())
    }

    fn read_error(&self, err: io::Error, what: &str) -> GgufError {
        // Sizes are checked up front, so EOF here means the file shrank
        // while we were reading it; that is still a truncated file.
        if err.kind() == io::ErrorKind::UnexpectedEof {
            self.truncated(what)
        } else {
            GgufError::Io(err)
        }
    }

    fn read_into(&mut self, buf: &mut [u8], what: &str) -> Result<(), GgufError> {
        let len = buf.len() as u64;
        self.require(len, what)?;
        if let Err(err) = self.inner.read_exact(buf) {
            return Err(self.read_error(err, what));
        }
        self.pos += len;
        Ok(())
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], GgufError> {
        let mut buf = [0u8; N];
        self.read_into(&mut buf, what)?;
        Ok(buf)
    }

    fn u32(&mut self, what: &str) -> Result<u32, GgufError> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &str) -> Result<u64, GgufError> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// Moves past `len` bytes without reading them (a cheap in-buffer move
    /// for the many short strings of a vocabulary, a real seek otherwise).
    fn skip(&mut self, len: u64, what: &str) -> Result<(), GgufError> {
        self.require(len, what)?;
        let delta = i64::try_from(len).map_err(|_| self.truncated(what))?;
        self.inner.seek_relative(delta).map_err(GgufError::Io)?;
        self.pos += len;
        Ok(())
    }

    /// Reads the length prefix of a string and checks that the string fits
    /// both in `limit` and in the rest of the file.
    fn string_len(&mut self, what: &str, limit: u64) -> Result<u64, GgufError> {
        let len = self.u64(what)?;
        if len > limit {
            return Err(GgufError::Implausible {
                what: format!(
                    "the header claims a {len}-byte string for {what}, \
                     more than the {limit} bytes allowed there"
                ),
            });
        }
        self.require(len, what)?;
        Ok(len)
    }

    /// Reads `len` bytes that `string_len` has already bounded.
    fn bytes(&mut self, len: u64, what: &str) -> Result<Vec<u8>, GgufError> {
        let len = usize::try_from(len).map_err(|_| self.truncated(what))?;
        let mut buf = vec![0u8; len];
        self.read_into(&mut buf, what)?;
        Ok(buf)
    }

    fn skip_string(&mut self, what: &str) -> Result<(), GgufError> {
        let len = self.string_len(what, MAX_STRING_LEN)?;
        self.skip(len, what)
    }
}

// ---------------------------------------------------------------------------
// Metadata

/// GGUF metadata value types (`enum gguf_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ValueType {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    F32,
    Bool,
    String,
    Array,
    U64,
    I64,
    F64,
}

impl ValueType {
    fn from_id(id: u32) -> Option<Self> {
        Some(match id {
            0 => Self::U8,
            1 => Self::I8,
            2 => Self::U16,
            3 => Self::I16,
            4 => Self::U32,
            5 => Self::I32,
            6 => Self::F32,
            7 => Self::Bool,
            8 => Self::String,
            9 => Self::Array,
            10 => Self::U64,
            11 => Self::I64,
            12 => Self::F64,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::U8 => "u8",
            Self::I8 => "i8",
            Self::U16 => "u16",
            Self::I16 => "i16",
            Self::U32 => "u32",
            Self::I32 => "i32",
            Self::F32 => "f32",
            Self::Bool => "bool",
            Self::String => "string",
            Self::Array => "array",
            Self::U64 => "u64",
            Self::I64 => "i64",
            Self::F64 => "f64",
        }
    }

    /// Encoded size of a value of this type, if every value has the same size.
    fn fixed_size(self) -> Option<u64> {
        match self {
            Self::U8 | Self::I8 | Self::Bool => Some(1),
            Self::U16 | Self::I16 => Some(2),
            Self::U32 | Self::I32 | Self::F32 => Some(4),
            Self::U64 | Self::I64 | Self::F64 => Some(8),
            Self::String | Self::Array => None,
        }
    }

    /// Smallest encoded size of a value of this type.
    fn min_size(self) -> u64 {
        match self {
            Self::String => 8,    // length
            Self::Array => 4 + 8, // element type + count
            other => other.fixed_size().unwrap_or(1),
        }
    }
}

/// The metadata whet keeps; everything else is skipped unread.
#[derive(Default)]
struct Metadata {
    architecture: Option<String>,
    name: Option<String>,
    file_type: Option<u32>,
    alignment: Option<u32>,
    chat_template: Option<String>,
    /// Every `*.context_length` entry, because the architecture that says
    /// which one matters may come later in the file. A wrong value is kept as
    /// its error and only reported if it belongs to the architecture.
    context_lengths: HashMap<String, Result<u64, GgufError>>,
    /// For the duplicate check llama.cpp also makes.
    keys: HashSet<String>,
}

impl Metadata {
    fn take_context_length(&mut self) -> Result<Option<u64>, GgufError> {
        let Some(arch) = &self.architecture else {
            return Ok(None);
        };
        let key = format!("{arch}.context_length");
        self.context_lengths.remove(&key).transpose()
    }
}

fn read_kv<R: Read + Seek>(
    r: &mut HeaderReader<R>,
    index: u64,
    count: u64,
    meta: &mut Metadata,
) -> Result<(), GgufError> {
    let key = read_key(r, index, count, meta)?;
    let type_offset = r.pos;
    let type_id = r.u32(&format!("the value type of metadata key {}", quote(&key)))?;
    let vtype = ValueType::from_id(type_id).ok_or_else(|| {
        r.malformed(
            type_offset,
            format!(
                "metadata key {} has invalid value type {type_id}",
                quote(&key)
            ),
        )
    })?;
    let what = format!("the value of metadata key {}", quote(&key));
    match key.as_str() {
        "general.architecture" => meta.architecture = Some(read_kept_string(r, vtype, &what)?),
        "general.name" => meta.name = Some(read_kept_string(r, vtype, &what)?),
        "tokenizer.chat_template" => {
            meta.chat_template = Some(read_kept_string(r, vtype, &what)?);
        }
        "general.file_type" => meta.file_type = Some(read_file_type(r, vtype, &what)?),
        "general.alignment" => meta.alignment = Some(read_alignment(r, vtype, &what)?),
        k if k.ends_with(".context_length") => {
            let value = read_context_length(r, vtype, &what)?;
            meta.context_lengths.insert(key, value);
        }
        _ => skip_value(r, vtype, &what, 0)?,
    }
    Ok(())
}

/// Reads a key, which must be non-empty, UTF-8 and unique.
fn read_key<R: Read + Seek>(
    r: &mut HeaderReader<R>,
    index: u64,
    count: u64,
    meta: &mut Metadata,
) -> Result<String, GgufError> {
    let what = format!("the key of metadata entry {} of {count}", index + 1);
    let offset = r.pos;
    let len = r.string_len(&what, MAX_KEY_LEN)?;
    let bytes = r.bytes(len, &what)?;
    let key = String::from_utf8(bytes).map_err(|_| {
        r.malformed(
            offset,
            format!(
                "metadata entry {} of {count} has a key that is not valid UTF-8",
                index + 1
            ),
        )
    })?;
    if key.is_empty() {
        let what = format!("metadata entry {} of {count} has an empty key", index + 1);
        return Err(r.malformed(offset, what));
    }
    if !meta.keys.insert(key.clone()) {
        let what = format!("metadata key {} appears twice", quote(&key));
        return Err(r.malformed(offset, what));
    }
    Ok(key)
}

/// Reads a string value whet keeps. Invalid UTF-8 is replaced rather than
/// rejected: these strings are only shown, and llama.cpp does not care.
fn read_kept_string<R: Read + Seek>(
    r: &mut HeaderReader<R>,
    vtype: ValueType,
    what: &str,
) -> Result<String, GgufError> {
    if vtype != ValueType::String {
        let detail = format!("{what} should be a string but is {}", article(vtype));
        return Err(r.malformed(r.pos, detail));
    }
    let len = r.string_len(what, MAX_KEPT_STRING_LEN)?;
    let bytes = r.bytes(len, what)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Reads any integer-typed value, or skips a value of another type and
/// returns `None`. Writers differ in the integer width they use.
fn read_integer<R: Read + Seek>(
    r: &mut HeaderReader<R>,
    vtype: ValueType,
    what: &str,
) -> Result<Option<i128>, GgufError> {
    let value = match vtype {
        ValueType::U8 => i128::from(u8::from_le_bytes(r.array(what)?)),
        ValueType::I8 => i128::from(i8::from_le_bytes(r.array(what)?)),
        ValueType::U16 => i128::from(u16::from_le_bytes(r.array(what)?)),
        ValueType::I16 => i128::from(i16::from_le_bytes(r.array(what)?)),
        ValueType::U32 => i128::from(u32::from_le_bytes(r.array(what)?)),
        ValueType::I32 => i128::from(i32::from_le_bytes(r.array(what)?)),
        ValueType::U64 => i128::from(u64::from_le_bytes(r.array(what)?)),
        ValueType::I64 => i128::from(i64::from_le_bytes(r.array(what)?)),
        other => {
            skip_value(r, other, what, 0)?;
            return Ok(None);
        }
    };
    Ok(Some(value))
}

/// Reads an integer value that must fit `T`; the error is returned, not
/// raised, so the caller decides whether it matters.
fn read_unsigned<R: Read + Seek, T: TryFrom<i128>>(
    r: &mut HeaderReader<R>,
    vtype: ValueType,
    what: &str,
) -> Result<Result<T, GgufError>, GgufError> {
    let offset = r.pos;
    let detail = match read_integer(r, vtype, what)? {
        None => format!("{what} should be an integer but is {}", article(vtype)),
        Some(v) => match T::try_from(v) {
            Ok(value) => return Ok(Ok(value)),
            Err(_) => format!("{what} is out of range ({v})"),
        },
    };
    Ok(Err(r.malformed(offset, detail)))
}

fn read_file_type<R: Read + Seek>(
    r: &mut HeaderReader<R>,
    vtype: ValueType,
    what: &str,
) -> Result<u32, GgufError> {
    read_unsigned(r, vtype, what)?
}

fn read_context_length<R: Read + Seek>(
    r: &mut HeaderReader<R>,
    vtype: ValueType,
    what: &str,
) -> Result<Result<u64, GgufError>, GgufError> {
    read_unsigned(r, vtype, what)
}

/// llama.cpp insists on a u32 that is a power of two; the data section and
/// every tensor offset are aligned to it.
fn read_alignment<R: Read + Seek>(
    r: &mut HeaderReader<R>,
    vtype: ValueType,
    what: &str,
) -> Result<u32, GgufError> {
    let offset = r.pos;
    if vtype != ValueType::U32 {
        let detail = format!("{what} should be a u32 but is {}", article(vtype));
        return Err(r.malformed(offset, detail));
    }
    let alignment = r.u32(what)?;
    if !alignment.is_power_of_two() {
        let detail = format!("{what} is {alignment}, which is not a power of two");
        return Err(r.malformed(offset, detail));
    }
    Ok(alignment)
}

/// Moves past a value without keeping it.
fn skip_value<R: Read + Seek>(
    r: &mut HeaderReader<R>,
    vtype: ValueType,
    what: &str,
    depth: u32,
) -> Result<(), GgufError> {
    match vtype {
        ValueType::String => r.skip_string(what),
        ValueType::Array => skip_array(r, what, depth),
        fixed => r.skip(fixed.min_size(), what),
    }
}

/// Moves past an array. Fixed-size elements are skipped with one seek; the
/// elements of string arrays (the 49k-token vocabulary) one by one, unread.
fn skip_array<R: Read + Seek>(
    r: &mut HeaderReader<R>,
    what: &str,
    depth: u32,
) -> Result<(), GgufError> {
    let offset = r.pos;
    if depth >= MAX_ARRAY_DEPTH {
        let detail = format!("{what} nests arrays more than {MAX_ARRAY_DEPTH} deep");
        return Err(r.malformed(offset, detail));
    }
    let type_id = r.u32(what)?;
    let elem = ValueType::from_id(type_id).ok_or_else(|| {
        r.malformed(
            offset,
            format!("{what} is an array of invalid value type {type_id}"),
        )
    })?;
    let count = r.u64(what)?;
    if count > MAX_ARRAY_LEN {
        return Err(GgufError::Implausible {
            what: format!(
                "the header claims {count} elements for {what}, \
                 more than the {MAX_ARRAY_LEN} allowed"
            ),
        });
    }
    // Bounds the loop below (and the seek) by the bytes actually left.
    let min_bytes = count
        .checked_mul(elem.min_size())
        .ok_or_else(|| r.truncated(what))?;
    if let Some(size) = elem.fixed_size() {
        debug_assert_eq!(size, elem.min_size());
        return r.skip(min_bytes, what);
    }
    r.require(min_bytes, what)?;
    for _ in 0..count {
        skip_value(r, elem, what, depth + 1)?;
    }
    Ok(())
}

/// "a u32", "an array", for messages.
fn article(vtype: ValueType) -> String {
    match vtype {
        ValueType::I8 | ValueType::I16 | ValueType::I32 | ValueType::I64 | ValueType::Array => {
            format!("an {}", vtype.name())
        }
        _ => format!("a {}", vtype.name()),
    }
}

/// Quotes a key or tensor name for a message, escaping control characters
/// and shortening absurdly long names.
fn quote(s: &str) -> String {
    const MAX_CHARS: usize = 80;
    let mut out: String = s
        .chars()
        .take(MAX_CHARS)
        .flat_map(char::escape_debug)
        .collect();
    if s.chars().nth(MAX_CHARS).is_some() {
        out.push('…');
    }
    format!("'{out}'")
}

// ---------------------------------------------------------------------------
// Tensors

/// Storage of a ggml tensor type: `block_size` elements in `type_size` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct GgmlType {
    name: &'static str,
    block_size: u64,
    type_size: u64,
}

/// The ggml types whet can size, from `type_traits` in ggml/src/ggml.c and
/// the block structs in ggml-common.h (sizes verified with `sizeof`).
/// Removed types (4, 5, 31..=33, 36..=38) have no layout and are left to
/// llama.cpp to judge.
fn ggml_type(id: u32) -> Option<GgmlType> {
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

/// What the bounds check needs from one tensor info.
struct TensorInfo {
    name: String,
    n_elements: u64,
    /// Offset of the data, relative to the start of the data section.
    offset: u64,
    /// Bytes of data; `None` for a ggml type whet cannot size.
    size: Option<u64>,
}

fn read_tensor_info<R: Read + Seek>(
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
    let size = match ggml_type(type_id) {
        Some(ty) => Some(tensor_size(&shape, n_elements, ty, &label).map_err(
            |detail| match detail {
                SizeError::Malformed(what) => r.malformed(type_offset, what),
                SizeError::Overflow(what) => GgufError::Implausible { what },
            },
        )?),
        None => None,
    };
    Ok(TensorInfo {
        name,
        n_elements,
        offset,
        size,
    })
}

/// Reads a tensor name, which must be unique and short enough for ggml.
fn read_tensor_name<R: Read + Seek>(
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
fn read_shape<R: Read + Seek>(r: &mut HeaderReader<R>, label: &str) -> Result<Vec<u64>, GgufError> {
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
fn element_count(shape: &[u64], label: &str) -> Result<u64, GgufError> {
    shape
        .iter()
        .try_fold(1u64, |acc, &ne| acc.checked_mul(ne))
        .filter(|&n| i64::try_from(n).is_ok())
        .ok_or_else(|| GgufError::Implausible {
            what: format!("tensor {label} has shape {shape:?}, too many elements to count"),
        })
}

enum SizeError {
    Malformed(String),
    Overflow(String),
}

/// Bytes of data of a tensor. Rows are whole blocks, so this equals
/// ggml_nbytes (row size × the other dimensions), and is 0 for a tensor with
/// a zero dimension however large the others are.
fn tensor_size(
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

/// Running totals over the tensor infos. Only the tensor whose data ends
/// furthest is remembered: if it fits, all fit, and if it does not, its end
/// is the size the complete file should have had.
#[derive(Default)]
struct TensorScan {
    parameter_count: u64,
    /// Raw names, for the duplicate check llama.cpp also makes.
    names: HashSet<Vec<u8>>,
    /// (end relative to the data section, tensor name)
    furthest: Option<(u64, String)>,
}

impl TensorScan {
    fn add(&mut self, info: TensorInfo) -> Result<(), GgufError> {
        self.parameter_count = self
            .parameter_count
            .checked_add(info.n_elements)
            .ok_or_else(|| GgufError::Implausible {
                what: "the tensors have more elements in total than fit in 64 bits".to_string(),
            })?;
        if let Some(size) = info.size {
            let end = info
                .offset
                .checked_add(size)
                .ok_or_else(|| GgufError::Implausible {
                    what: format!(
                        "tensor {} has data offset {} and size {size}, together beyond 64 bits",
                        quote(&info.name),
                        info.offset
                    ),
                })?;
            if self.furthest.as_ref().is_none_or(|(e, _)| end > *e) {
                self.furthest = Some((end, info.name));
            }
        }
        Ok(())
    }

    fn check_bounds(&self, data_offset: u64, file_size: u64) -> Result<(), GgufError> {
        let Some((rel_end, name)) = &self.furthest else {
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
fn data_section_start<R: Read + Seek>(
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    // -- a tiny GGUF writer -------------------------------------------------

    const T_U8: u32 = 0;
    const T_U16: u32 = 2;
    const T_U32: u32 = 4;
    const T_I32: u32 = 5;
    const T_F32: u32 = 6;
    const T_BOOL: u32 = 7;
    const T_STRING: u32 = 8;
    const T_ARRAY: u32 = 9;
    const T_U64: u32 = 10;
    const T_I64: u32 = 11;

    const GGML_F32: u32 = 0;
    const GGML_Q4_0: u32 = 2;

    fn u32_le(v: u32) -> Vec<u8> {
        v.to_le_bytes().to_vec()
    }

    fn u64_le(v: u64) -> Vec<u8> {
        v.to_le_bytes().to_vec()
    }

    fn gguf_str(s: &[u8]) -> Vec<u8> {
        let mut out = u64_le(s.len() as u64);
        out.extend_from_slice(s);
        out
    }

    fn str_array(items: &[&str]) -> Vec<u8> {
        let mut out = u32_le(T_STRING);
        out.extend(u64_le(items.len() as u64));
        for item in items {
            out.extend(gguf_str(item.as_bytes()));
        }
        out
    }

    fn header(version: u32, tensor_count: u64, kv_count: u64) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(u32_le(version));
        out.extend(u64_le(tensor_count));
        out.extend(u64_le(kv_count));
        out
    }

    struct TestTensor {
        name: String,
        dims: Vec<u64>,
        ggml_type: u32,
        /// Data size, given by the test rather than computed, so that the
        /// module's type table is checked against independent numbers.
        size: u64,
    }

    struct TestFile {
        version: u32,
        kvs: Vec<(Vec<u8>, u32, Vec<u8>)>,
        tensors: Vec<TestTensor>,
        alignment: u64,
    }

    impl TestFile {
        fn new() -> Self {
            TestFile {
                version: 3,
                kvs: Vec::new(),
                tensors: Vec::new(),
                alignment: 32,
            }
        }

        fn kv(mut self, key: &str, type_id: u32, value: Vec<u8>) -> Self {
            self.kvs.push((key.as_bytes().to_vec(), type_id, value));
            self
        }

        fn kv_str(self, key: &str, value: &str) -> Self {
            self.kv(key, T_STRING, gguf_str(value.as_bytes()))
        }

        fn kv_u32(self, key: &str, value: u32) -> Self {
            self.kv(key, T_U32, u32_le(value))
        }

        fn tensor(mut self, name: &str, dims: &[u64], ggml_type: u32, size: u64) -> Self {
            self.tensors.push(TestTensor {
                name: name.to_string(),
                dims: dims.to_vec(),
                ggml_type,
                size,
            });
            self
        }

        fn pad(&self, out: &mut Vec<u8>) {
            out.resize(out.len().next_multiple_of(self.alignment as usize), 0);
        }

        /// The header up to the end of the tensor infos.
        fn header_bytes(&self) -> Vec<u8> {
            let mut out = header(
                self.version,
                self.tensors.len() as u64,
                self.kvs.len() as u64,
            );
            for (key, type_id, value) in &self.kvs {
                out.extend(gguf_str(key));
                out.extend(u32_le(*type_id));
                out.extend(value);
            }
            let mut offset = 0u64;
            for t in &self.tensors {
                out.extend(gguf_str(t.name.as_bytes()));
                out.extend(u32_le(t.dims.len() as u32));
                for d in &t.dims {
                    out.extend(u64_le(*d));
                }
                out.extend(u32_le(t.ggml_type));
                out.extend(u64_le(offset));
                offset = (offset + t.size).next_multiple_of(self.alignment);
            }
            out
        }

        fn bytes(&self) -> Vec<u8> {
            let mut out = self.header_bytes();
            if self.tensors.is_empty() {
                return out;
            }
            self.pad(&mut out);
            for (i, t) in self.tensors.iter().enumerate() {
                out.extend(std::iter::repeat_n(0xAB, t.size as usize));
                if i + 1 < self.tensors.len() {
                    self.pad(&mut out);
                }
            }
            out
        }
    }

    /// A small valid model: an F32 [4, 3] tensor (48 bytes) and a Q4_0
    /// [64, 2] tensor (2 rows × 2 blocks × 18 bytes = 72 bytes).
    fn sample() -> TestFile {
        TestFile::new()
            .kv_u32("llama.context_length", 2048) // before the architecture on purpose
            .kv_str("general.architecture", "llama")
            .kv_str("general.name", "Tiny Test")
            .kv_u32("general.file_type", 2)
            .kv(
                "tokenizer.ggml.tokens",
                T_ARRAY,
                str_array(&["a", "bc", "<|im_start|>"]),
            )
            .kv("tokenizer.ggml.scores", T_ARRAY, {
                let mut v = u32_le(T_F32);
                v.extend(u64_le(3));
                v.extend([0u8; 12]);
                v
            })
            .kv("tokenizer.ggml.add_bos_token", T_BOOL, vec![1])
            .kv_str("tokenizer.chat_template", "{{ messages }}")
            .tensor("token_embd.weight", &[4, 3], GGML_F32, 48)
            .tensor("blk.0.attn_q.weight", &[64, 2], GGML_Q4_0, 72)
    }

    fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.path().join(name);
        fs::write(&path, bytes).unwrap();
        path
    }

    fn read_bytes(bytes: &[u8]) -> Result<GgufSummary, GgufError> {
        let dir = tempfile::tempdir().unwrap();
        read_summary(&write(&dir, "m.gguf", bytes))
    }

    fn err_of(bytes: &[u8]) -> GgufError {
        match read_bytes(bytes) {
            Ok(s) => panic!("expected an error, got {s:?}"),
            Err(e) => e,
        }
    }

    // -- the file itself ----------------------------------------------------

    #[test]
    fn missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_summary(&dir.path().join("nope.gguf")).unwrap_err();
        assert!(matches!(err, GgufError::NotFound));
        assert_eq!(err.to_string(), "no such file");
    }

    #[test]
    fn file_used_as_directory_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(&dir, "m.gguf", b"GGUF");
        let err = read_summary(&file.join("x")).unwrap_err();
        assert!(matches!(err, GgufError::NotFound), "{err:?}");
    }

    #[test]
    fn directory() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_summary(dir.path()).unwrap_err();
        assert!(matches!(err, GgufError::IsDirectory));
        assert_eq!(err.to_string(), "it is a directory, not a GGUF file");
    }

    #[cfg(unix)]
    #[test]
    fn device_is_not_a_regular_file() {
        let err = read_summary(Path::new("/dev/null")).unwrap_err();
        assert!(matches!(err, GgufError::NotRegularFile), "{err:?}");
    }

    #[test]
    fn empty_file() {
        let err = err_of(b"");
        assert!(matches!(err, GgufError::Empty));
        assert_eq!(err.to_string(), "the file is empty (0 bytes)");
    }

    #[test]
    fn three_byte_file() {
        let err = err_of(b"GGU");
        assert!(matches!(err, GgufError::TooShort { len: 3 }));
        assert_eq!(err.to_string(), "not a GGUF file (only 3 bytes long)");
        assert_eq!(
            err_of(b"G").to_string(),
            "not a GGUF file (only 1 byte long)"
        );
    }

    #[test]
    fn text_file() {
        let err = err_of(b"hello world\n");
        assert!(matches!(err, GgufError::BadMagic { found } if &found == b"hell"));
        assert_eq!(
            err.to_string(),
            r#"not a GGUF file (it starts with "hell" instead of "GGUF")"#
        );
    }

    #[test]
    fn binary_magic_is_escaped() {
        let err = err_of(b"\x00\x01\xffZrest of file");
        assert_eq!(
            err.to_string(),
            r#"not a GGUF file (it starts with "\x00\x01\xffZ" instead of "GGUF")"#
        );
    }

    #[test]
    fn magic_only() {
        let err = err_of(b"GGUF");
        assert!(
            matches!(err, GgufError::Truncated { offset: 4, .. }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "the file is truncated: it ends inside the header while reading the GGUF version at byte 4"
        );
    }

    #[test]
    fn unsupported_versions() {
        for version in [0, 1, 4, 99] {
            let err = err_of(&header(version, 0, 0));
            assert!(matches!(err, GgufError::UnsupportedVersion(v) if v == version));
        }
        assert_eq!(
            err_of(&header(1, 0, 0)).to_string(),
            "unsupported GGUF version 1 (whet reads versions 2 and 3)"
        );
        assert_eq!(
            err_of(&header(99, 0, 0)).to_string(),
            "unsupported GGUF version 99 (whet reads versions 2 and 3)"
        );
    }

    #[test]
    fn version_2_is_accepted() {
        let mut file = sample();
        file.version = 2;
        assert_eq!(read_bytes(&file.bytes()).unwrap().version, 2);
    }

    // -- implausible counts and lengths -------------------------------------

    #[test]
    fn huge_tensor_count() {
        let mut bytes = header(3, 1 << 62, 0);
        bytes.resize(1234, 0);
        let err = err_of(&bytes);
        assert!(matches!(err, GgufError::Implausible { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "the header claims 4611686018427387904 tensors, more than a 1234-byte file can hold"
        );
    }

    #[test]
    fn huge_metadata_count() {
        let mut bytes = header(3, 0, u64::MAX);
        bytes.resize(100, 0);
        assert_eq!(
            err_of(&bytes).to_string(),
            "the header claims 18446744073709551615 metadata entries, more than a 100-byte file can hold"
        );
    }

    #[test]
    fn counts_that_only_together_exceed_the_file() {
        // 4 entries × 13 + 3 tensors × 24 = 124 > 100 left, each alone fits.
        let mut bytes = header(3, 3, 4);
        bytes.resize(124, 0);
        assert_eq!(
            err_of(&bytes).to_string(),
            "the header claims 4 metadata entries and 3 tensors, more than a 124-byte file can hold"
        );
    }

    #[test]
    fn huge_string_length() {
        let mut bytes = header(3, 0, 1);
        bytes.extend(u64_le(1 << 40));
        bytes.resize(200, b'x');
        let err = err_of(&bytes);
        assert!(matches!(err, GgufError::Implausible { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "the header claims a 1099511627776-byte string for the key of metadata entry 1 of 1, \
             more than the 65536 bytes allowed there"
        );

        let mut bytes = header(3, 0, 1);
        bytes.extend(gguf_str(b"general.name"));
        bytes.extend(u32_le(T_STRING));
        bytes.extend(u64_le(u64::MAX));
        let err = err_of(&bytes);
        assert!(matches!(err, GgufError::Implausible { .. }), "{err:?}");
    }

    #[test]
    fn string_running_past_the_end_is_truncation() {
        let mut bytes = header(3, 0, 1);
        bytes.extend(u64_le(5000));
        bytes.extend(b"general.");
        let err = err_of(&bytes);
        assert_eq!(
            err.to_string(),
            "the file is truncated: it ends inside the header while reading \
             the key of metadata entry 1 of 1 at byte 32"
        );
    }

    #[test]
    fn huge_array_count() {
        let mut value = u32_le(T_U8);
        value.extend(u64_le(1 << 61));
        let bytes = TestFile::new().kv("x.big", T_ARRAY, value).bytes();
        let err = err_of(&bytes);
        assert_eq!(
            err.to_string(),
            "the header claims 2305843009213693952 elements for the value of metadata key 'x.big', \
             more than the 1073741824 allowed"
        );
    }

    #[test]
    fn array_count_past_the_end_is_truncation() {
        for elem in [T_U64, T_STRING, T_ARRAY] {
            let mut value = u32_le(elem);
            value.extend(u64_le(1000));
            let err = err_of(&TestFile::new().kv("x.arr", T_ARRAY, value).bytes());
            assert!(matches!(err, GgufError::Truncated { .. }), "{err:?}");
        }
    }

    // -- truncation and fuzzing ---------------------------------------------

    #[test]
    fn every_cut_of_a_valid_file_is_an_error() {
        let file = sample();
        let bytes = file.bytes();
        // Cuts before the data section are inside the header (or its padding).
        let header_len = file.header_bytes().len().next_multiple_of(32);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.gguf");
        for cut in 0..bytes.len() {
            fs::write(&path, &bytes[..cut]).unwrap();
            let err = read_summary(&path).expect_err(&format!("cut at {cut} was accepted"));
            let ok = match err {
                GgufError::Empty => cut == 0,
                GgufError::TooShort { len } => len == cut as u64,
                GgufError::Truncated { .. } | GgufError::Implausible { .. } => cut < header_len,
                GgufError::TensorDataOutOfBounds { file_size, .. } => {
                    file_size == cut as u64 && cut >= header_len
                }
                _ => false,
            };
            assert!(ok, "cut at {cut}: unexpected {err:?}");
        }
    }

    #[test]
    fn corrupted_bytes_never_panic() {
        let original = sample().bytes();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fuzz.gguf");
        // Every position set to a few troublesome values...
        for pos in 0..original.len() {
            for value in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut bytes = original.clone();
                bytes[pos] = value;
                fs::write(&path, &bytes).unwrap();
                let _ = read_summary(&path);
            }
        }
        // ...and random multi-byte corruption (xorshift, fixed seed).
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..2000 {
            let mut bytes = original.clone();
            for _ in 0..(next() % 8 + 1) {
                let pos = (next() % bytes.len() as u64) as usize;
                bytes[pos] = next() as u8;
            }
            fs::write(&path, &bytes).unwrap();
            let _ = read_summary(&path);
        }
    }

    #[test]
    fn in_memory_parse_of_random_headers_never_panics() {
        // Same idea without the file system: random bytes after a valid
        // fixed header, with plausible small counts.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..5000 {
            let mut bytes = header(3, next() % 4, next() % 4);
            let len = next() % 300;
            bytes.extend((0..len).map(|_| (next() % 16) as u8));
            let size = bytes.len() as u64;
            let _ = parse(io::Cursor::new(bytes), size);
        }
    }

    // -- tensors ------------------------------------------------------------

    #[test]
    fn tensor_data_out_of_bounds() {
        let mut bytes = sample().bytes();
        let full = bytes.len() as u64;
        bytes.truncate(bytes.len() - 10);
        let err = err_of(&bytes);
        match &err {
            GgufError::TensorDataOutOfBounds {
                tensor,
                end,
                file_size,
            } => {
                assert_eq!(tensor, "blk.0.attn_q.weight");
                assert_eq!(*end, full);
                assert_eq!(*file_size, full - 10);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            err.to_string(),
            format!(
                "the file is truncated: tensor 'blk.0.attn_q.weight' needs data up to byte {full} \
                 but the file has only {} bytes",
                full - 10
            )
        );
    }

    #[test]
    fn tensor_offset_beyond_the_file() {
        let mut bytes = sample().header_bytes();
        // Patch the last tensor's offset (the final 8 bytes of the header).
        let n = bytes.len();
        bytes[n - 8..].copy_from_slice(&u64_le(1 << 40));
        bytes.resize(4096, 0);
        let err = err_of(&bytes);
        assert!(
            matches!(&err, GgufError::TensorDataOutOfBounds { tensor, .. } if tensor == "blk.0.attn_q.weight"),
            "{err:?}"
        );
    }

    #[test]
    fn valid_file() {
        let s = read_bytes(&sample().bytes()).unwrap();
        assert_eq!(s.version, 3);
        assert_eq!(s.tensor_count, 2);
        assert_eq!(s.metadata_count, 8);
        assert_eq!(s.architecture.as_deref(), Some("llama"));
        assert_eq!(s.name.as_deref(), Some("Tiny Test"));
        assert_eq!(s.file_type, Some(2));
        assert_eq!(s.quantization.as_deref(), Some("Q4_0"));
        assert_eq!(s.parameter_count, 4 * 3 + 64 * 2);
        assert_eq!(s.context_length, Some(2048));
        assert_eq!(s.chat_template.as_deref(), Some("{{ messages }}"));
        assert_eq!(s.alignment, 32);
        assert_eq!(s.tensor_data_offset % 32, 0);
        // F32 data (48 bytes) padded to 64, then 72 bytes of Q4_0.
        assert_eq!(s.file_size, s.tensor_data_offset + 64 + 72);
    }

    #[test]
    fn summary_serializes() {
        fn assert_serialize<T: Serialize>(_: &T) {}
        let s = read_bytes(&sample().bytes()).unwrap();
        assert_serialize(&s);
    }

    #[test]
    fn minimal_file_without_metadata_or_tensors() {
        let s = read_bytes(&header(3, 0, 0)).unwrap();
        assert_eq!(s.parameter_count, 0);
        assert_eq!(s.architecture, None);
        assert_eq!(s.quantization, None);
        assert_eq!(s.context_length, None);
        assert_eq!(s.tensor_data_offset, 24);
    }

    #[test]
    fn custom_alignment() {
        let file = TestFile {
            alignment: 64,
            ..sample().kv_u32("general.alignment", 64)
        };
        let s = read_bytes(&file.bytes()).unwrap();
        assert_eq!(s.alignment, 64);
        assert_eq!(s.tensor_data_offset % 64, 0);
    }

    #[test]
    fn bad_alignment() {
        for bad in [0, 3, 48] {
            let err = err_of(&sample().kv_u32("general.alignment", bad).bytes());
            assert!(matches!(err, GgufError::Malformed { .. }), "{err:?}");
            assert!(
                err.to_string().ends_with(&format!(
                    "the value of metadata key 'general.alignment' is {bad}, which is not a power of two"
                )),
                "{err}"
            );
        }
        let err = err_of(&sample().kv("general.alignment", T_U64, u64_le(32)).bytes());
        assert!(
            err.to_string().ends_with(
                "the value of metadata key 'general.alignment' should be a u32 but is a u64"
            ),
            "{err}"
        );
    }

    #[test]
    fn misaligned_tensor_offset() {
        let mut bytes = sample().header_bytes();
        let n = bytes.len();
        bytes[n - 8..].copy_from_slice(&u64_le(40));
        bytes.resize(1024, 0);
        let err = err_of(&bytes);
        assert_eq!(
            err.to_string(),
            format!(
                "the header is malformed at byte {}: tensor 'blk.0.attn_q.weight' has data offset 40, \
                 which is not a multiple of the alignment 32",
                n - 8
            )
        );
    }

    #[test]
    fn too_many_dimensions() {
        let bytes = TestFile::new()
            .tensor("t", &[1, 1, 1, 1, 1], GGML_F32, 4)
            .bytes();
        let err = err_of(&bytes);
        assert_eq!(
            err.to_string(),
            "the header is malformed at byte 33: tensor 't' has 5 dimensions; GGUF allows at most 4"
        );
    }

    #[test]
    fn zero_dimensions_is_a_scalar() {
        // llama.cpp accepts n_dims = 0 and treats the tensor as one element.
        let s = read_bytes(&TestFile::new().tensor("t", &[], GGML_F32, 4).bytes()).unwrap();
        assert_eq!(s.parameter_count, 1);
    }

    #[test]
    fn negative_dimension() {
        let bytes = TestFile::new()
            .tensor("t", &[u64::MAX], GGML_F32, 4)
            .bytes();
        let err = err_of(&bytes);
        assert!(
            err.to_string()
                .ends_with("dimension 0 of tensor 't' is negative (-1)"),
            "{err}"
        );
    }

    #[test]
    fn overflowing_shape() {
        let bytes = TestFile::new()
            .tensor("t", &[1 << 40, 1 << 40], GGML_F32, 4)
            .bytes();
        let err = err_of(&bytes);
        assert!(matches!(err, GgufError::Implausible { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "tensor 't' has shape [1099511627776, 1099511627776], too many elements to count"
        );
        // Elements fit, bytes do not: 2^62 F32 elements take 2^64 bytes.
        let bytes = TestFile::new()
            .tensor("t", &[1 << 61, 2], GGML_F32, 4)
            .bytes();
        assert!(matches!(err_of(&bytes), GgufError::Implausible { .. }));
    }

    #[test]
    fn zero_sized_dimension() {
        let s = read_bytes(
            &TestFile::new()
                .tensor("t", &[1 << 62, 0], GGML_F32, 0)
                .bytes(),
        )
        .unwrap();
        assert_eq!(s.parameter_count, 0);
    }

    #[test]
    fn row_not_a_multiple_of_the_block_size() {
        let bytes = TestFile::new().tensor("t", &[33, 2], GGML_Q4_0, 72).bytes();
        let err = err_of(&bytes);
        assert!(matches!(err, GgufError::Malformed { .. }), "{err:?}");
        assert!(
            err.to_string().ends_with(
                "tensor 't' of type Q4_0 has 33 elements per row, not a multiple of the block size 32"
            ),
            "{err}"
        );
    }

    #[test]
    fn unknown_tensor_type_skips_the_bounds_check() {
        // Type 31 (Q4_0_4_4) was removed; its size is llama.cpp's to judge.
        let bytes = TestFile::new().tensor("t", &[1 << 20], 31, 0).bytes();
        let s = read_bytes(&bytes).unwrap();
        assert_eq!(s.parameter_count, 1 << 20);
    }

    #[test]
    fn tensor_name_too_long() {
        let name = "x".repeat(64);
        let err = err_of(&TestFile::new().tensor(&name, &[1], GGML_F32, 4).bytes());
        assert!(
            err.to_string()
                .ends_with("tensor 1 of 1 has a 64-byte name; llama.cpp allows at most 63"),
            "{err}"
        );
        let name = "x".repeat(63);
        assert!(read_bytes(&TestFile::new().tensor(&name, &[1], GGML_F32, 4).bytes()).is_ok());
    }

    #[test]
    fn duplicate_tensor_name() {
        let bytes = TestFile::new()
            .tensor("t", &[1], GGML_F32, 4)
            .tensor("t", &[1], GGML_F32, 4)
            .bytes();
        assert!(err_of(&bytes)
            .to_string()
            .ends_with("tensor name 't' appears twice"));
    }

    #[test]
    fn data_section_start_past_the_end() {
        // A header whose padding to the data section is cut off.
        let bytes = TestFile::new()
            .tensor("t", &[0], GGML_F32, 0)
            .header_bytes();
        assert_ne!(bytes.len() % 32, 0);
        let err = err_of(&bytes);
        assert!(
            err.to_string()
                .contains("while reading the padding before the tensor data"),
            "{err}"
        );
    }

    #[test]
    fn ggml_type_table_matches_the_c_structs() {
        // (id, elements per block, bytes per block) spot checks from
        // ggml-common.h, computed by hand from the struct fields.
        for (id, block, bytes) in [
            (0, 1, 4),
            (1, 1, 2),
            (2, 32, 18),
            (3, 32, 20),
            (8, 32, 34),
            (12, 256, 144),
            (14, 256, 210),
            (30, 1, 2),
        ] {
            let ty = ggml_type(id).unwrap();
            assert_eq!((ty.block_size, ty.type_size), (block, bytes), "type {id}");
        }
        for removed in [4, 5, 31, 32, 33, 36, 37, 38, 43, u32::MAX] {
            assert_eq!(ggml_type(removed), None, "type {removed}");
        }
    }

    // -- metadata -----------------------------------------------------------

    #[test]
    fn invalid_value_type() {
        let bytes = TestFile::new().kv("x.y", 13, vec![0; 8]).bytes();
        let err = err_of(&bytes);
        assert_eq!(
            err.to_string(),
            "the header is malformed at byte 35: metadata key 'x.y' has invalid value type 13"
        );
        let mut value = u32_le(99);
        value.extend(u64_le(0));
        let err = err_of(&TestFile::new().kv("x.y", T_ARRAY, value).bytes());
        assert!(
            err.to_string()
                .ends_with("the value of metadata key 'x.y' is an array of invalid value type 99"),
            "{err}"
        );
    }

    #[test]
    fn non_utf8_key() {
        let mut bytes = header(3, 0, 1);
        bytes.extend(gguf_str(b"gen\xffral"));
        bytes.extend(u32_le(T_U8));
        bytes.push(0);
        let err = err_of(&bytes);
        assert!(
            matches!(err, GgufError::Malformed { offset: 24, .. }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "the header is malformed at byte 24: metadata entry 1 of 1 has a key that is not valid UTF-8"
        );
    }

    #[test]
    fn empty_and_duplicate_keys() {
        let err = err_of(&TestFile::new().kv("", T_U8, vec![0]).bytes());
        assert!(
            err.to_string()
                .ends_with("metadata entry 1 of 1 has an empty key"),
            "{err}"
        );
        let err = err_of(&sample().kv_str("general.name", "again").bytes());
        assert!(
            err.to_string()
                .ends_with("metadata key 'general.name' appears twice"),
            "{err}"
        );
    }

    #[test]
    fn control_characters_in_keys_are_escaped() {
        let mut value = u32_le(99);
        value.extend(u64_le(0));
        let err = err_of(&TestFile::new().kv("a\nb'c", T_ARRAY, value).bytes());
        assert!(err.to_string().contains(r"key 'a\nb\'c'"), "{err}");
    }

    #[test]
    fn integer_metadata_of_any_width() {
        for (type_id, value) in [
            (T_U16, 4096u16.to_le_bytes().to_vec()),
            (T_I32, 4096i32.to_le_bytes().to_vec()),
            (T_U64, 4096u64.to_le_bytes().to_vec()),
            (T_I64, 4096i64.to_le_bytes().to_vec()),
        ] {
            let file = TestFile::new()
                .kv("general.file_type", type_id, value.clone())
                .kv("qwen2.context_length", type_id, value)
                .kv_str("general.architecture", "qwen2");
            let s = read_bytes(&file.bytes()).unwrap();
            assert_eq!(s.context_length, Some(4096), "type {type_id}");
            assert_eq!(s.file_type, Some(4096));
            assert_eq!(s.quantization.as_deref(), Some("unknown (file type 4096)"));
        }
    }

    #[test]
    fn negative_or_non_integer_values() {
        let file = TestFile::new().kv("general.file_type", T_I32, (-1i32).to_le_bytes().to_vec());
        let err = err_of(&file.bytes());
        assert!(
            err.to_string()
                .ends_with("the value of metadata key 'general.file_type' is out of range (-1)"),
            "{err}"
        );

        let file = TestFile::new()
            .kv_str("llama.context_length", "8192")
            .kv_str("general.architecture", "llama");
        let err = err_of(&file.bytes());
        assert!(
            err.to_string().ends_with(
                "the value of metadata key 'llama.context_length' should be an integer but is a string"
            ),
            "{err}"
        );

        // Another architecture's bad context length is none of our business.
        let file = TestFile::new()
            .kv_str("other.context_length", "8192")
            .kv_u32("llama.context_length", 512)
            .kv_str("general.architecture", "llama");
        assert_eq!(read_bytes(&file.bytes()).unwrap().context_length, Some(512));
    }

    #[test]
    fn wrong_type_for_a_string_key() {
        let err = err_of(&TestFile::new().kv_u32("general.architecture", 1).bytes());
        assert!(
            err.to_string().ends_with(
                "the value of metadata key 'general.architecture' should be a string but is a u32"
            ),
            "{err}"
        );
    }

    #[test]
    fn context_length_without_architecture() {
        let file = TestFile::new().kv_u32("llama.context_length", 2048);
        assert_eq!(read_bytes(&file.bytes()).unwrap().context_length, None);
    }

    #[test]
    fn nested_arrays_are_skipped() {
        // [[1, 2], ["a"]] as an array of arrays, then a key we read.
        let mut value = u32_le(T_ARRAY);
        value.extend(u64_le(2));
        value.extend(u32_le(T_U16));
        value.extend(u64_le(2));
        value.extend([1, 0, 2, 0]);
        value.extend(str_array(&["a"]));
        let file = TestFile::new()
            .kv("x.nested", T_ARRAY, value)
            .kv_str("general.name", "after");
        assert_eq!(
            read_bytes(&file.bytes()).unwrap().name.as_deref(),
            Some("after")
        );
    }

    #[test]
    fn deeply_nested_arrays_are_rejected() {
        let mut value = Vec::new();
        for _ in 0..100 {
            value.extend(u32_le(T_ARRAY));
            value.extend(u64_le(1));
        }
        value.extend(u32_le(T_U8));
        value.extend(u64_le(0));
        let err = err_of(&TestFile::new().kv("x.deep", T_ARRAY, value).bytes());
        assert!(
            err.to_string().ends_with("nests arrays more than 8 deep"),
            "{err}"
        );
    }

    #[test]
    fn non_utf8_values_are_replaced() {
        let file = TestFile::new().kv("general.name", T_STRING, gguf_str(b"caf\xe9"));
        assert_eq!(
            read_bytes(&file.bytes()).unwrap().name.as_deref(),
            Some("caf\u{fffd}")
        );
    }

    #[test]
    fn quantization_names() {
        assert_eq!(quantization_name(0), "F32");
        assert_eq!(quantization_name(1), "F16");
        assert_eq!(quantization_name(3), "Q4_1");
        assert_eq!(quantization_name(7), "Q8_0");
        assert_eq!(quantization_name(15), "Q4_K_M");
        assert_eq!(quantization_name(32), "BF16");
        assert_eq!(quantization_name(5), "unknown (file type 5)");
        assert_eq!(quantization_name(1024), "unknown (file type 1024)");
    }

    // -- real files -----------------------------------------------------------

    /// Real models named by `WHET_TEST_GGUF` (one path, or several joined
    /// like PATH). Tests using them pass vacuously when it is unset.
    fn real_models() -> Vec<PathBuf> {
        let Some(value) = std::env::var_os("WHET_TEST_GGUF") else {
            eprintln!("skipping: set WHET_TEST_GGUF to a GGUF model to run this test");
            return Vec::new();
        };
        std::env::split_paths(&value)
            .filter(|path| {
                let exists = path.is_file();
                if !exists {
                    eprintln!("skipping {}: no such file", path.display());
                }
                exists
            })
            .collect()
    }

    #[test]
    fn real_models_read_cleanly() {
        for path in real_models() {
            let s = read_summary(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            eprintln!("{}: {s:#?}", path.display());
            assert!(matches!(s.version, 2 | 3));
            assert!(s.tensor_count > 0);
            assert!(s.parameter_count > 0);
            assert!(s.architecture.is_some());
            assert!(s.tensor_data_offset < s.file_size);
            check_known_model(&s);
        }
    }

    /// Exact values of the models whet is tested with, recognised by size.
    fn check_known_model(s: &GgufSummary) {
        match (s.architecture.as_deref(), s.file_size) {
            // SmolLM2-135M-Instruct, Q4_1
            (Some("llama"), 98_362_432) => {
                assert_eq!(s.name.as_deref(), Some("Smollm2 135M 8k Lc100K Mix1 Ep2"));
                assert_eq!(s.file_type, Some(3));
                assert_eq!(s.quantization.as_deref(), Some("Q4_1"));
                assert_eq!(s.parameter_count, 134_515_008);
                assert_eq!(s.context_length, Some(8192));
                assert_eq!(s.tensor_count, 272);
                assert_eq!(s.metadata_count, 33);
                assert_eq!(s.tensor_data_offset, 1_785_664);
                let template = s.chat_template.as_deref().unwrap_or_default();
                assert_eq!(template.len(), 368);
                assert!(template.contains("<|im_start|>"));
            }
            // Gemma 3 270M, Q4_K_M
            (Some("gemma3"), 253_113_024) => {
                assert_eq!(s.name.as_deref(), Some("Gemma 3 270m"));
                assert_eq!(s.file_type, Some(15));
                assert_eq!(s.quantization.as_deref(), Some("Q4_K_M"));
                assert_eq!(s.parameter_count, 268_098_176);
                assert_eq!(s.context_length, Some(32768));
                assert_eq!(s.tensor_count, 236);
                assert_eq!(s.metadata_count, 33);
                assert_eq!(s.tensor_data_offset, 6_525_120);
                assert_eq!(s.chat_template, None);
            }
            _ => eprintln!("not a model with known values; checked generically only"),
        }
    }

    #[test]
    fn truncated_real_model_is_out_of_bounds() {
        for path in real_models() {
            let full = read_summary(&path).unwrap();
            // 10 MB, but always past the header so the tensor data is cut.
            let cut = full.tensor_data_offset.max(10_000_000);
            if cut >= full.file_size {
                eprintln!("skipping {}: too small to cut", path.display());
                continue;
            }
            let dir = tempfile::tempdir().unwrap();
            let copy = dir.path().join("cut.gguf");
            let mut src = File::open(&path).unwrap().take(cut);
            io::copy(&mut src, &mut File::create(&copy).unwrap()).unwrap();

            let err = read_summary(&copy).unwrap_err();
            match &err {
                GgufError::TensorDataOutOfBounds { end, file_size, .. } => {
                    assert_eq!(*file_size, cut);
                    // The furthest tensor ends exactly where the full file does.
                    assert_eq!(*end, full.file_size);
                }
                other => panic!("{}: unexpected {other:?}", path.display()),
            }
            eprintln!("{}", err);
        }
    }
}
