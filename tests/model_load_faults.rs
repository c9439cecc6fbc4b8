//! Model files that used to fail with llama.cpp's wrapper line instead of
//! its reason, a reason that went missing now and then, a vocabulary that
//! ate memory for a minute, workers that outlived their front end, and
//! `models info` exit codes. Every file is made here from the real default
//! model by patching or re-laying its header; nothing big is kept in git.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::bad_model::*;
use common::*;

// -- reading and rewriting the real model's header ------------------------

struct Kv {
    /// Where the value (after its type) starts and ends.
    value_at: usize,
    end: usize,
}

struct TensorEntry {
    name: String,
    type_at: usize,
    offset_at: usize,
    offset: u64,
}

struct Layout {
    kvs: HashMap<String, Kv>,
    tensors: Vec<TensorEntry>,
    /// End of the tensor infos, before the padding to the data section.
    header_end: usize,
    data_at: usize,
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn u32(&mut self) -> u32 {
        let v = u32::from_le_bytes(self.bytes[self.pos..self.pos + 4].try_into().unwrap());
        self.pos += 4;
        v
    }
    fn u64(&mut self) -> u64 {
        let v = u64::from_le_bytes(self.bytes[self.pos..self.pos + 8].try_into().unwrap());
        self.pos += 8;
        v
    }
    fn string(&mut self) -> String {
        let len = self.u64() as usize;
        let s = String::from_utf8_lossy(&self.bytes[self.pos..self.pos + len]).into_owned();
        self.pos += len;
        s
    }
    fn skip_value(&mut self, value_type: u32) {
        match value_type {
            0 | 1 | 7 => self.pos += 1,
            2 | 3 => self.pos += 2,
            4..=6 => self.pos += 4,
            10..=12 => self.pos += 8,
            8 => {
                self.string();
            }
            9 => {
                let element = self.u32();
                for _ in 0..self.u64() {
                    self.skip_value(element);
                }
            }
            other => panic!("value type {other} in the real model"),
        }
    }
}

fn layout(bytes: &[u8]) -> Layout {
    let mut c = Cursor { bytes, pos: 8 };
    let tensor_count = c.u64();
    let kv_count = c.u64();
    let mut kvs = HashMap::new();
    for _ in 0..kv_count {
        let key = c.string();
        let value_type = c.u32();
        let value_at = c.pos;
        c.skip_value(value_type);
        kvs.insert(
            key,
            Kv {
                value_at,
                end: c.pos,
            },
        );
    }
    let mut tensors = Vec::new();
    for _ in 0..tensor_count {
        let name = c.string();
        let n_dims = c.u32() as usize;
        c.pos += 8 * n_dims;
        let type_at = c.pos;
        c.pos += 4;
        let offset_at = c.pos;
        let offset = c.u64();
        tensors.push(TensorEntry {
            name,
            type_at,
            offset_at,
            offset,
        });
    }
    let header_end = c.pos;
    Layout {
        kvs,
        tensors,
        header_end,
        data_at: header_end.next_multiple_of(32),
    }
}

fn real_model() -> (Vec<u8>, Layout) {
    let bytes = std::fs::read(smollm2()).unwrap();
    let layout = layout(&bytes);
    (bytes, layout)
}

fn tensor<'a>(layout: &'a Layout, name: &str) -> &'a TensorEntry {
    layout
        .tensors
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no tensor {name}"))
}

/// The model with one metadata value (an array) replaced by `value` (its
/// element type, count and elements), the data section moved to stay
/// aligned. Tensor offsets are relative to it, so they stay valid.
fn with_array_value(key: &str, value: &[u8]) -> Vec<u8> {
    let (bytes, layout) = real_model();
    let kv = &layout.kvs[key];
    let mut out = bytes[..kv.value_at].to_vec();
    out.extend_from_slice(value);
    out.extend_from_slice(&bytes[kv.end..layout.header_end]);
    out.resize(out.len().next_multiple_of(32), 0);
    out.extend_from_slice(&bytes[layout.data_at..]);
    out
}

/// A string array in GGUF encoding.
fn string_array(items: impl ExactSizeIterator<Item = String>) -> Vec<u8> {
    let mut out = 8u32.to_le_bytes().to_vec();
    out.extend((items.len() as u64).to_le_bytes());
    for item in items {
        out.extend((item.len() as u64).to_le_bytes());
        out.extend(item.as_bytes());
    }
    out
}

// -- files only llama.cpp refused: whet's header check names the reason ---

#[test]
fn invalid_tensor_type_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (mut bytes, layout) = real_model();
    let at = tensor(&layout, "output_norm.weight").type_at;
    bytes[at..at + 4].copy_from_slice(&999u32.to_le_bytes());
    let model = write(dir.path(), "type-999.gguf", &bytes);
    assert_eq!(
        assert_clean_failure(&run_model(&model, dir.path()), &model),
        format!(
            "the header is malformed at byte {at}: tensor 'output_norm.weight' has ggml type 999, \
             which llama.cpp does not know (its types are 0 to 42)"
        )
    );
}

#[test]
fn removed_tensor_types_are_named() {
    let dir = tempfile::tempdir().unwrap();
    for (id, name) in [(4u32, "Q4_2"), (5, "Q4_3")] {
        let (mut bytes, layout) = real_model();
        let at = tensor(&layout, "blk.0.ffn_down.weight").type_at;
        bytes[at..at + 4].copy_from_slice(&id.to_le_bytes());
        let model = write(dir.path(), &format!("type-{id}.gguf"), &bytes);
        assert_eq!(
            assert_clean_failure(&run_model(&model, dir.path()), &model),
            format!(
                "the header is malformed at byte {at}: tensor 'blk.0.ffn_down.weight' has ggml \
                 type {id} ({name}), which llama.cpp no longer supports; convert or quantize the \
                 model again with a current llama.cpp"
            )
        );
    }
}

#[test]
fn overlapping_tensor_offsets_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let (mut bytes, layout) = real_model();
    let down = tensor(&layout, "blk.0.ffn_down.weight");
    let gate = tensor(&layout, "blk.0.ffn_gate.weight");
    assert_eq!((down.offset, gate.offset), (30_083_328, 30_636_288));
    // The gate's data starts where the previous tensor's does.
    bytes[gate.offset_at..gate.offset_at + 8].copy_from_slice(&down.offset.to_le_bytes());
    let model = write(dir.path(), "overlap.gguf", &bytes);
    assert_eq!(
        assert_clean_failure(&run_model(&model, dir.path()), &model),
        format!(
            "the header is malformed at byte {}: tensor 'blk.0.ffn_gate.weight' has data offset \
             30083328, before the end of tensor 'blk.0.ffn_down.weight''s data (30636288), so \
             their data overlap; it should start at 30636288",
            gate.offset_at
        )
    );
}

#[test]
fn nested_array_in_the_metadata_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (mut bytes, layout) = real_model();
    // The token types (int32 × n) become one array holding an int32 array
    // of n − 3 elements: the same number of bytes, so nothing moves.
    let kv = &layout.kvs["tokenizer.ggml.token_type"];
    let n = u64::from_le_bytes(bytes[kv.value_at + 4..kv.value_at + 12].try_into().unwrap());
    let mut nested = 9u32.to_le_bytes().to_vec();
    nested.extend(1u64.to_le_bytes());
    nested.extend(5u32.to_le_bytes());
    nested.extend((n - 3).to_le_bytes());
    bytes[kv.value_at..kv.value_at + nested.len()].copy_from_slice(&nested);
    let model = write(dir.path(), "nested.gguf", &bytes);
    assert_eq!(
        assert_clean_failure(&run_model(&model, dir.path()), &model),
        format!(
            "the header is malformed at byte {}: the value of metadata key \
             'tokenizer.ggml.token_type' is an array of arrays, which llama.cpp cannot read",
            kv.value_at
        )
    );
}

// -- files only llama.cpp refuses: its most specific line, every time -----

/// The real model with the token types declared as u32 instead of i32 (the
/// same size): a valid header that llama.cpp's vocabulary loader refuses.
fn unsigned_token_types(dir: &Path) -> PathBuf {
    let (mut bytes, layout) = real_model();
    let at = layout.kvs["tokenizer.ggml.token_type"].value_at;
    assert_eq!(&bytes[at..at + 4], &5u32.to_le_bytes(), "an i32 array");
    bytes[at..at + 4].copy_from_slice(&4u32.to_le_bytes());
    write(dir, "u32-token-types.gguf", &bytes)
}

#[test]
fn llama_cpp_reason_is_its_specific_line_not_the_wrapper() {
    let dir = tempfile::tempdir().unwrap();
    let model = unsigned_token_types(dir.path());
    assert_eq!(
        assert_clean_failure(&run_model(&model, dir.path()), &model),
        "llama.cpp could not load it: error loading model vocabulary: \
         invalid gguf type for tokenizer.ggml.token_type"
    );

    // A required key missing: renamed by one letter, same length.
    let (mut bytes, layout) = real_model();
    let at = layout.kvs["llama.embedding_length"].value_at - 5;
    assert_eq!(bytes[at], b'h');
    bytes[at] = b'X';
    let model = write(dir.path(), "no-embedding-length.gguf", &bytes);
    assert_eq!(
        assert_clean_failure(&run_model(&model, dir.path()), &model),
        "llama.cpp could not load it: error loading model hyperparameters: \
         key not found in model: llama.embedding_length"
    );
}

#[test]
fn llama_cpp_reason_arrives_every_time() {
    // The reason used to be read from the worker's log, which could arrive
    // after the error event (about 1 run in 20).
    let dir = tempfile::tempdir().unwrap();
    let model = unsigned_token_types(dir.path());
    for attempt in 1..=50 {
        let reason = assert_clean_failure(&run_model(&model, dir.path()), &model);
        assert_eq!(
            reason,
            "llama.cpp could not load it: error loading model vocabulary: \
             invalid gguf type for tokenizer.ggml.token_type",
            "attempt {attempt}"
        );
    }
}

// -- a huge vocabulary is refused before loading --------------------------

/// Runs whet and returns its output and its peak resident memory in KiB.
///
/// Through a small python3 parent: a child's peak memory includes its
/// parent's at the moment it was spawned (Linux keeps the high-water mark
/// across exec), and this test process has just built a large file.
fn run_measured(args: &[&str], logs: &Path) -> (Output, u64) {
    const MEASURE: &str = "import resource, subprocess, sys\n\
        code = subprocess.run(sys.argv[1:]).returncode\n\
        print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n\
        sys.exit(code)\n";
    let mut output = Command::new("python3")
        .args(["-c", MEASURE])
        .arg(whet_bin())
        .args(args)
        .env("WHET_LOG_DIR", logs)
        .env("WHET_CONFIG_DIR", logs.join("config"))
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs (the README's setup installs it)");
    let err = String::from_utf8(output.stderr).unwrap();
    let (whet_err, peak) = err.trim_end().rsplit_once('\n').unwrap_or(("", err.trim()));
    let peak_kib = peak.parse().unwrap_or_else(|_| panic!("no peak in {err}"));
    output.stderr = format!("{whet_err}\n").into_bytes();
    (output, peak_kib)
}

#[test]
fn vocabulary_larger_than_the_embeddings_is_refused_before_loading() {
    // Two million tokens (llama.cpp would spend seconds and gigabytes on
    // them) against the embedding's 49152 rows.
    let dir = tempfile::tempdir().unwrap();
    let tokens = (0..2_000_000u32).map(|i| format!("t{i:x}"));
    let model = write(
        dir.path(),
        "huge-vocab.gguf",
        &with_array_value("tokenizer.ggml.tokens", &string_array(tokens)),
    );
    let expected = "the vocabulary has 2000000 tokens (tokenizer.ggml.tokens) but the token \
                    embeddings (token_embd.weight) have 49152 rows; they must be equal";
    assert_eq!(
        assert_clean_failure(&run_model(&model, dir.path()), &model),
        expected
    );

    // `models info` reads the header in its own process: its peak memory is
    // that of the check, far below what llama.cpp took (1.9 GB at 8M tokens).
    let (output, peak_kib) = run_measured(&["models", "info", model.to_str().unwrap()], dir.path());
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output).trim_end(),
        format!("error: cannot read model '{}': {expected}", model.display())
    );
    eprintln!("models info peak memory: {peak_kib} KiB");
    assert!(peak_kib < 64 * 1024, "peak {peak_kib} KiB");
}

// -- the worker dies with its front end, even inside a load --------------

fn children(pid: u32) -> Vec<u32> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Running or sleeping: neither gone nor a zombie waiting to be reaped.
fn is_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit_once(") ")?.1.chars().next()?;
            Some(state != 'Z' && state != 'X')
        })
        .unwrap_or(false)
}

fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

#[test]
fn worker_dies_with_its_front_end_during_a_slow_load() {
    // Two million BPE merges pass whet's checks and keep llama.cpp busy
    // building its merge table for several seconds.
    let dir = tempfile::tempdir().unwrap();
    let merges = (0..2_000_000u32).map(|i| format!("{i:x} y"));
    let model = write(
        dir.path(),
        "slow.gguf",
        &with_array_value("tokenizer.ggml.merges", &string_array(merges)),
    );
    for signal in [libc::SIGKILL, libc::SIGTERM] {
        let mut front = Command::new(whet_bin())
            .args(["run", "--model", model.to_str().unwrap(), "--raw"])
            .args(["--max-tokens", "2", "Hello"])
            .env("WHET_LOG_DIR", dir.path())
            .env("WHET_CONFIG_DIR", dir.path().join("config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut worker = None;
        assert!(
            wait_until(Duration::from_secs(10), || {
                worker = children(front.id()).first().copied();
                worker.is_some()
            }),
            "no worker appeared"
        );
        let worker = worker.unwrap();
        // Well into the load, which takes several seconds more.
        std::thread::sleep(Duration::from_millis(800));
        assert!(is_running(worker), "the worker is still loading");
        assert!(front.try_wait().unwrap().is_none(), "whet is still waiting");

        unsafe { libc::kill(front.id() as i32, signal) };
        front.wait().unwrap();
        assert!(
            wait_until(Duration::from_secs(1), || !is_running(worker)),
            "worker {worker} still runs 1 s after its front end got signal {signal}"
        );
    }
}

// -- `models info` exit codes ---------------------------------------------

#[test]
fn models_info_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let info = |model: &Path| whet(&["models", "info", model.to_str().unwrap()], dir.path());

    let ok = info(&smollm2());
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert!(stdout(&ok).contains("chat format:    model template"));

    // Loads, but has no chat template: usable with --raw, so still 0.
    let base = info(&gemma3());
    assert_eq!(base.status.code(), Some(0), "{}", stderr(&base));
    assert!(stdout(&base).contains("chat format:    none: the model has no chat template"));

    // A valid header that llama.cpp refuses: the facts, then the reason.
    let model = unsigned_token_types(dir.path());
    let bad = info(&model);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stdout(&bad).contains("architecture:   llama"));
    assert!(stdout(&bad).contains("chat format:    unknown (llama.cpp cannot load the model)"));
    assert_eq!(
        stderr(&bad).trim_end(),
        format!(
            "error: cannot load model '{}': llama.cpp could not load it: error loading model \
             vocabulary: invalid gguf type for tokenizer.ggml.token_type",
            model.display()
        )
    );

    let json = whet(
        &["models", "info", "--json", model.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(json.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_str(stdout(&json).trim()).unwrap();
    assert_eq!(report["loads"], false);
    assert!(report["load_error"]
        .as_str()
        .unwrap()
        .ends_with("invalid gguf type for tokenizer.ggml.token_type"));
    let good = whet(
        &["models", "info", "--json", smollm2().to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(good.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_str(stdout(&good).trim()).unwrap();
    assert_eq!(report["loads"], true);
    assert!(report["load_error"].is_null());
}
