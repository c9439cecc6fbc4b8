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
    for elem in [T_U64, T_STRING] {
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

/// The sample's header with the last tensor's data offset (the final 8
/// bytes of the header) replaced, and where in the file that offset is.
fn sample_with_last_offset(offset: u64) -> (Vec<u8>, usize) {
    let mut bytes = sample().header_bytes();
    let at = bytes.len() - 8;
    bytes[at..].copy_from_slice(&u64_le(offset));
    bytes.resize(4096, 0);
    (bytes, at)
}

#[test]
fn tensor_data_leaving_a_gap() {
    // The F32 tensor's 48 bytes are padded to 64; 1 TiB leaves a gap.
    let (bytes, at) = sample_with_last_offset(1 << 40);
    assert_eq!(
        err_of(&bytes).to_string(),
        format!(
            "the header is malformed at byte {at}: tensor 'blk.0.attn_q.weight' has data \
             offset 1099511627776, but it should start at 64, right after tensor \
             'token_embd.weight' (llama.cpp allows no overlap and no gap)"
        )
    );
}

#[test]
fn tensor_data_overlapping_the_previous_tensor() {
    let (bytes, at) = sample_with_last_offset(32);
    assert_eq!(
        err_of(&bytes).to_string(),
        format!(
            "the header is malformed at byte {at}: tensor 'blk.0.attn_q.weight' has data \
             offset 32, before the end of tensor 'token_embd.weight''s data (48), so their \
             data overlap; it should start at 64"
        )
    );
}

#[test]
fn first_tensor_data_not_at_the_start() {
    let mut file = TestFile::new().tensor("t", &[8], GGML_F32, 32);
    file.alignment = 32;
    let mut bytes = file.header_bytes();
    let at = bytes.len() - 8;
    bytes[at..].copy_from_slice(&u64_le(32));
    bytes.resize(4096, 0);
    assert_eq!(
        err_of(&bytes).to_string(),
        format!(
            "the header is malformed at byte {at}: tensor 't' is the first, so its data \
             must start at offset 0, not 32"
        )
    );
}

#[test]
fn vocabulary_larger_than_the_embeddings() {
    let tokens: Vec<String> = (0..5).map(|i| format!("t{i}")).collect();
    let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let bytes = TestFile::new()
        .kv("tokenizer.ggml.tokens", T_ARRAY, str_array(&tokens))
        .tensor("token_embd.weight", &[4, 3], GGML_F32, 48)
        .bytes();
    let err = err_of(&bytes);
    assert!(matches!(err, GgufError::Implausible { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the vocabulary has 5 tokens (tokenizer.ggml.tokens) but the token embeddings \
         (token_embd.weight) have 3 rows; they must be equal"
    );
}

#[test]
fn vocabulary_without_embeddings_or_embeddings_without_vocabulary() {
    // Only a pair of counts can disagree: each alone is fine.
    let vocabulary_only = TestFile::new().kv("tokenizer.ggml.tokens", T_ARRAY, str_array(&["a"]));
    assert!(read_bytes(&vocabulary_only.bytes()).is_ok());
    let embeddings_only = TestFile::new().tensor("token_embd.weight", &[4, 3], GGML_F32, 48);
    assert!(read_bytes(&embeddings_only.bytes()).is_ok());
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
fn tensor_type_llama_cpp_does_not_know() {
    let file = TestFile::new().tensor("output_norm.weight", &[576], 999, 0);
    let at = file.header_bytes().len() - 12;
    assert_eq!(
        err_of(&file.bytes()).to_string(),
        format!(
            "the header is malformed at byte {at}: tensor 'output_norm.weight' has ggml type \
             999, which llama.cpp does not know (its types are 0 to 42)"
        )
    );
}

#[test]
fn tensor_type_llama_cpp_removed() {
    for (id, name) in [
        (4, "Q4_2"),
        (5, "Q4_3"),
        (31, "Q4_0_4_4"),
        (38, "IQ4_NL_8_8"),
    ] {
        let bytes = TestFile::new().tensor("t", &[32], id, 0).bytes();
        assert!(
            err_of(&bytes).to_string().ends_with(&format!(
                "tensor 't' has ggml type {id} ({name}), which llama.cpp no longer supports; \
                 convert or quantize the model again with a current llama.cpp"
            )),
            "type {id}"
        );
    }
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
fn arrays_of_arrays_are_refused() {
    // [[1, 2], ["a"]]: legal GGUF, but llama.cpp refuses it.
    let mut value = u32_le(T_ARRAY);
    value.extend(u64_le(2));
    value.extend(u32_le(T_U16));
    value.extend(u64_le(2));
    value.extend([1, 0, 2, 0]);
    value.extend(str_array(&["a"]));
    let err = err_of(&TestFile::new().kv("test.nested", T_ARRAY, value).bytes());
    assert!(
        err.to_string().ends_with(
            "the value of metadata key 'test.nested' is an array of arrays, which llama.cpp cannot read"
        ),
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
