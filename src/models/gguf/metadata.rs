//! Metadata key/value pairs: the few values whet keeps, and skipping the rest.

use super::*;

/// GGUF metadata value types (`enum gguf_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ValueType {
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
    pub(super) fn from_id(id: u32) -> Option<Self> {
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

    pub(super) fn name(self) -> &'static str {
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
    pub(super) fn fixed_size(self) -> Option<u64> {
        match self {
            Self::U8 | Self::I8 | Self::Bool => Some(1),
            Self::U16 | Self::I16 => Some(2),
            Self::U32 | Self::I32 | Self::F32 => Some(4),
            Self::U64 | Self::I64 | Self::F64 => Some(8),
            Self::String | Self::Array => None,
        }
    }

    /// Smallest encoded size of a value of this type.
    pub(super) fn min_size(self) -> u64 {
        match self {
            Self::String => 8,    // length
            Self::Array => 4 + 8, // element type + count
            other => other.fixed_size().unwrap_or(1),
        }
    }
}

/// The metadata whet keeps; everything else is skipped unread.
#[derive(Default)]
pub(super) struct Metadata {
    pub(super) architecture: Option<String>,
    pub(super) name: Option<String>,
    pub(super) file_type: Option<u32>,
    pub(super) alignment: Option<u32>,
    pub(super) chat_template: Option<String>,
    /// Every `*.context_length` entry, because the architecture that says
    /// which one matters may come later in the file. A wrong value is kept as
    /// its error and only reported if it belongs to the architecture.
    pub(super) context_lengths: HashMap<String, Result<u64, GgufError>>,
    /// For the duplicate check llama.cpp also makes.
    pub(super) keys: HashSet<String>,
    /// Entries of `tokenizer.ggml.tokens`: the vocabulary's size.
    pub(super) token_count: Option<u64>,
}

impl Metadata {
    pub(super) fn take_context_length(&mut self) -> Result<Option<u64>, GgufError> {
        let Some(arch) = &self.architecture else {
            return Ok(None);
        };
        let key = format!("{arch}.context_length");
        self.context_lengths.remove(&key).transpose()
    }
}

pub(super) fn read_kv<R: Read + Seek>(
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
        "tokenizer.ggml.tokens" if vtype == ValueType::Array => {
            meta.token_count = Some(skip_array(r, &what)?);
        }
        _ => skip_value(r, vtype, &what)?,
    }
    Ok(())
}

/// Reads a key, which must be non-empty, UTF-8 and unique.
pub(super) fn read_key<R: Read + Seek>(
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
pub(super) fn read_kept_string<R: Read + Seek>(
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
pub(super) fn read_integer<R: Read + Seek>(
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
            skip_value(r, other, what)?;
            return Ok(None);
        }
    };
    Ok(Some(value))
}

/// Reads an integer value that must fit `T`; the error is returned, not
/// raised, so the caller decides whether it matters.
pub(super) fn read_unsigned<R: Read + Seek, T: TryFrom<i128>>(
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

pub(super) fn read_file_type<R: Read + Seek>(
    r: &mut HeaderReader<R>,
    vtype: ValueType,
    what: &str,
) -> Result<u32, GgufError> {
    read_unsigned(r, vtype, what)?
}

pub(super) fn read_context_length<R: Read + Seek>(
    r: &mut HeaderReader<R>,
    vtype: ValueType,
    what: &str,
) -> Result<Result<u64, GgufError>, GgufError> {
    read_unsigned(r, vtype, what)
}

/// llama.cpp insists on a u32 that is a power of two; the data section and
/// every tensor offset are aligned to it.
pub(super) fn read_alignment<R: Read + Seek>(
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
pub(super) fn skip_value<R: Read + Seek>(
    r: &mut HeaderReader<R>,
    vtype: ValueType,
    what: &str,
) -> Result<(), GgufError> {
    match vtype {
        ValueType::String => r.skip_string(what),
        ValueType::Array => skip_array(r, what).map(|_| ()),
        fixed => r.skip(fixed.min_size(), what),
    }
}

/// Moves past an array and returns its length. Fixed-size elements are
/// skipped with one seek; the elements of string arrays (the 49k-token
/// vocabulary) one by one, unread.
pub(super) fn skip_array<R: Read + Seek>(
    r: &mut HeaderReader<R>,
    what: &str,
) -> Result<u64, GgufError> {
    let offset = r.pos;
    let type_id = r.u32(what)?;
    let elem = ValueType::from_id(type_id).ok_or_else(|| {
        r.malformed(
            offset,
            format!("{what} is an array of invalid value type {type_id}"),
        )
    })?;
    // GGUF allows arrays of arrays, but llama.cpp refuses them, and its
    // reason ("invalid GGUF type 9") only reaches its log.
    if elem == ValueType::Array {
        let detail = format!("{what} is an array of arrays, which llama.cpp cannot read");
        return Err(r.malformed(offset, detail));
    }
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
        r.skip(min_bytes, what)?;
        return Ok(count);
    }
    r.require(min_bytes, what)?;
    for _ in 0..count {
        skip_value(r, elem, what)?;
    }
    Ok(count)
}

/// "a u32", "an array", for messages.
pub(super) fn article(vtype: ValueType) -> String {
    match vtype {
        ValueType::I8 | ValueType::I16 | ValueType::I32 | ValueType::I64 | ValueType::Array => {
            format!("an {}", vtype.name())
        }
        _ => format!("a {}", vtype.name()),
    }
}

/// Quotes a key or tensor name for a message, escaping control characters
/// and shortening absurdly long names.
pub(super) fn quote(s: &str) -> String {
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
