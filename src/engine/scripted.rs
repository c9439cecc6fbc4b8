//! A scripted stand-in for llama.cpp, for tests only. Two parts:
//!
//! - [`ToyBackend`]: a deterministic toy model behind the scheduler's
//!   [`Backend`] trait, with a KV cache of token sequences that checks what
//!   llama.cpp checks (consecutive positions, the batch size, the context
//!   size, sampling only where logits were asked for) and can be told to
//!   fail chosen decodes.
//! - [`Script`]: what `whet engine` does instead of loading a model when
//!   the environment variable [`SCRIPT_ENV`] names a script file. It answers
//!   `Load` without reading the model file and every generation with the
//!   toy model, and can be told to die as llama.cpp's abort does, or to stop
//!   answering, at chosen points. Nothing in whet sets that variable; the
//!   tests in `tests/` do.
//!
//! The toy model reads a sequence's tokens as its KV cache holds them and
//! picks the next token from all of them, so a prefix copied from another
//! sequence continues exactly like one decoded in place, and a token at a
//! wrong position, a missing one or a stale one changes what follows.
//! Prompt text is one token per byte (0..=255); generated tokens are
//! letters and a space (256..=282); 300 ends generation. A reply ends after
//! the number of tokens a prompt asks for with `eos=N`, otherwise after
//! 4 to 16 tokens chosen from the prompt.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use llama_cpp_2::token::LlamaToken;
use serde::Deserialize;

use super::parallel::Backend;
use super::probs::{ProbsRequest, TokenProbs};
use super::protocol::{ChatFormat, LoadRequest, ModelInfo, Prompt, StopReason};
use super::sampling::SamplingParams;
use super::stop::{StopMatcher, StopOutcome};

/// The environment variable that makes `whet engine` follow a [`Script`].
pub const SCRIPT_ENV: &str = "WHET_ENGINE_SCRIPT";

/// The toy model's end-of-generation token.
pub const EOS: LlamaToken = LlamaToken(300);
/// The first generated token ('a'); 27 of them: 'a'..='z' and ' '.
const LETTERS: i32 = 256;
const LETTER_COUNT: u64 = 27;

/// The text the toy model reads for a prompt: chat messages as
/// `role: content` lines, then `assistant:` for a new reply.
pub fn prompt_text(prompt: &Prompt) -> String {
    match prompt {
        Prompt::Raw { text } => text.clone(),
        Prompt::Chat { messages } | Prompt::ChatContinue { messages, .. } => {
            let mut text = String::new();
            for (index, message) in messages.iter().enumerate() {
                text.push_str(message.role.as_str());
                text.push_str(": ");
                text.push_str(&message.content);
                let open =
                    index + 1 == messages.len() && matches!(prompt, Prompt::ChatContinue { .. });
                if !open {
                    text.push('\n');
                }
            }
            if matches!(prompt, Prompt::Chat { .. }) {
                text.push_str("assistant:");
            }
            text
        }
    }
}

/// The toy model's tokens for a prompt: one per byte of its text; an open
/// reply given as token ids is those ids.
pub fn tokenize(prompt: &Prompt) -> Vec<LlamaToken> {
    if let Prompt::ChatContinue {
        messages,
        open_tokens: Some(ids),
    } = prompt
    {
        let mut messages = messages.clone();
        if let Some(last) = messages.last_mut() {
            last.content.clear();
        }
        let head = Prompt::ChatContinue {
            messages,
            open_tokens: None,
        };
        let mut tokens = tokenize(&head);
        tokens.extend(ids.iter().map(|&id| LlamaToken(id)));
        return tokens;
    }
    prompt_text(prompt)
        .bytes()
        .map(|b| LlamaToken(i32::from(b)))
        .collect()
}

/// A token's bytes as generation shows them.
pub fn piece(token: LlamaToken) -> Vec<u8> {
    match token.0 {
        byte @ 0..=255 => vec![byte as u8],
        letter if (LETTERS..LETTERS + LETTER_COUNT as i32).contains(&letter) => {
            match (letter - LETTERS) as u8 {
                26 => b" ".to_vec(),
                n => vec![b'a' + n],
            }
        }
        _ => Vec::new(),
    }
}

/// How many tokens the reply to these prompt tokens has before EOS.
fn reply_length(prompt: &[LlamaToken]) -> usize {
    let text: Vec<u8> = prompt.iter().flat_map(|&t| piece(t)).collect();
    let text = String::from_utf8_lossy(&text);
    if let Some((_, rest)) = text.rsplit_once("eos=") {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(n) = digits.parse() {
            return n;
        }
    }
    4 + (fnv(prompt, 0) % 13) as usize
}

fn fnv(tokens: &[LlamaToken], seed: u64) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for token in tokens {
        for byte in token.0.to_le_bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// The toy model: the token after `tokens` (a prompt and what was
/// generated after it), greedy or with a seed.
pub fn next_token(tokens: &[LlamaToken], seed: Option<u32>) -> LlamaToken {
    let prompt_len = tokens
        .iter()
        .position(|t| t.0 >= LETTERS)
        .unwrap_or(tokens.len());
    if tokens.len() - prompt_len >= reply_length(&tokens[..prompt_len]) {
        return EOS;
    }
    let seed = seed.map_or(0, |s| u64::from(s) + 1);
    LlamaToken(LETTERS + (fnv(tokens, seed) % LETTER_COUNT) as i32)
}

/// The toy model's logits after `tokens`, for beam search: greedy
/// [`next_token`] leads by 4, the other letters (and EOS) trail by 0 to 4
/// from a hash of the sequence with them, so beams diverge and rejoin;
/// prompt bytes cannot follow (−∞).
pub fn toy_logits(tokens: &[LlamaToken]) -> Vec<f32> {
    let mut logits = vec![f32::NEG_INFINITY; EOS.0 as usize + 1];
    let mut extended = tokens.to_vec();
    for token in (LETTERS..LETTERS + LETTER_COUNT as i32).chain([EOS.0]) {
        extended.push(LlamaToken(token));
        logits[token as usize] = -((fnv(&extended, 7) % 1024) as f32) / 256.0;
        extended.pop();
    }
    logits[next_token(tokens, None).0 as usize] = 4.0;
    logits
}

/// The toy model's reply to `prompt` decoded alone, token by token: what a
/// scheduler must give whatever else it runs alongside.
pub fn reply(
    prompt: &Prompt,
    sampling: &SamplingParams,
    max_tokens: u32,
    stop: &[String],
) -> (String, StopReason) {
    let mut tokens = tokenize(prompt);
    let seed = ToySampler::new(sampling).seed;
    let mut stops = StopMatcher::new(stop);
    let mut text = String::new();
    let mut generated = 0;
    loop {
        let token = next_token(&tokens, seed);
        if token == EOS {
            text.push_str(&stops.finish());
            return (text, StopReason::Eos);
        }
        generated += 1;
        tokens.push(token);
        let piece = String::from_utf8(piece(token)).expect("ASCII");
        match stops.push(&piece) {
            StopOutcome::Continue(shown) => text.push_str(&shown),
            StopOutcome::Stopped(shown) => {
                text.push_str(&shown);
                return (text, StopReason::StopString);
            }
        }
        if max_tokens > 0 && generated >= max_tokens {
            text.push_str(&stops.finish());
            return (text, StopReason::MaxTokens);
        }
    }
}

/// A request's sampling for the toy model: greedy, or a seed mixed into
/// every choice.
#[derive(Debug, Clone)]
pub struct ToySampler {
    seed: Option<u32>,
}

impl ToySampler {
    fn new(params: &SamplingParams) -> Self {
        Self {
            seed: (!params.is_greedy()).then_some(params.seed),
        }
    }
}

/// One token of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchEntry {
    pub token: LlamaToken,
    pub position: i32,
    pub seq: i32,
    pub logits: bool,
}

/// One call of [`Backend::decode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeCall {
    pub batch: Vec<BatchEntry>,
    /// Cells the sequences held after it, counting a copied token once per
    /// sequence (llama.cpp shares them: this is the most it can need).
    pub cells: usize,
    pub failed: bool,
}

/// The toy model and its KV cache, behind the scheduler's [`Backend`].
#[derive(Debug)]
pub struct ToyBackend {
    n_ctx: usize,
    n_batch: usize,
    n_seq_max: u32,
    /// Each sequence's tokens, position by position.
    kv: Vec<Vec<LlamaToken>>,
    batch: Vec<BatchEntry>,
    /// For each batch index of the last decode that asked for logits, the
    /// sequence's tokens up to it.
    outputs: HashMap<i32, Vec<LlamaToken>>,
    cached: Vec<LlamaToken>,
    /// Decode calls (1-based) that fail, as a llama.cpp decode that
    /// returns an error, after writing half of the batch.
    pub fail_decodes: HashSet<usize>,
    /// Every decode call, in order.
    pub decodes: Vec<DecodeCall>,
    /// Sequences given cells at positions they already hold (a beam
    /// search's graveyard): legal in llama.cpp, but such a sequence must
    /// never be decoded into until cleared.
    piles: HashSet<usize>,
}

impl ToyBackend {
    pub fn new(n_ctx: usize, n_batch: usize, n_seq_max: u32) -> Self {
        Self {
            n_ctx,
            n_batch,
            n_seq_max,
            kv: vec![Vec::new(); n_seq_max as usize],
            batch: Vec::new(),
            outputs: HashMap::new(),
            cached: Vec::new(),
            fail_decodes: HashSet::new(),
            piles: HashSet::new(),
            decodes: Vec::new(),
        }
    }

    /// The tokens sequence `seq` holds.
    pub fn sequence(&self, seq: i32) -> &[LlamaToken] {
        &self.kv[seq as usize]
    }

    /// Cells in use, a copied token counted once per sequence.
    pub fn cells(&self) -> usize {
        self.kv.iter().map(Vec::len).sum()
    }

    fn seq(&self, seq: i32) -> usize {
        assert!(
            (0..self.n_seq_max as i32).contains(&seq),
            "sequence {seq} of a context made for {} (llama.cpp aborts)",
            self.n_seq_max
        );
        seq as usize
    }

    /// Checks the batch as llama.cpp does before writing anything.
    fn check_batch(&self) -> Result<(), String> {
        let mut next: Vec<usize> = self.kv.iter().map(Vec::len).collect();
        for entry in &self.batch {
            let seq = self.seq(entry.seq);
            if entry.position as usize != next[seq] {
                return Err(format!(
                    "sequence {} holds positions up to {} but the batch puts a token at {}",
                    entry.seq,
                    next[seq] as i64 - 1,
                    entry.position
                ));
            }
            next[seq] += 1;
        }
        let cells: usize = next.iter().sum();
        if cells > self.n_ctx {
            return Err(format!(
                "no room in the KV cache: {cells} cells of {}",
                self.n_ctx
            ));
        }
        Ok(())
    }
}

impl Backend for ToyBackend {
    type Sampler = ToySampler;

    fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    fn n_batch(&self) -> usize {
        self.n_batch
    }

    fn n_seq_max(&self) -> u32 {
        self.n_seq_max
    }

    fn prompt_tokens(&self, prompt: &Prompt) -> Result<Vec<LlamaToken>, String> {
        Ok(tokenize(prompt))
    }

    fn sampler(&self, params: &SamplingParams) -> ToySampler {
        ToySampler::new(params)
    }

    fn sample(&mut self, sampler: &mut ToySampler, batch_index: i32) -> Result<LlamaToken, String> {
        let tokens = self.outputs.get(&batch_index).unwrap_or_else(|| {
            panic!("sampling batch index {batch_index}, which has no logits (llama.cpp aborts)")
        });
        Ok(next_token(tokens, sampler.seed))
    }

    /// The toy model's "distribution" is uniform over what it can generate
    /// (the 27 letters and EOS): enough to carry probabilities through the
    /// scheduler and the protocol.
    fn token_probs(
        &self,
        _batch_index: i32,
        token: LlamaToken,
        asked: Option<ProbsRequest>,
    ) -> (f32, Option<TokenProbs>) {
        let Some(asked) = asked else {
            return (0.0, None);
        };
        let mut logits = vec![f32::NEG_INFINITY; EOS.0 as usize + 1];
        for generated in (LETTERS..LETTERS + LETTER_COUNT as i32).chain([EOS.0]) {
            logits[generated as usize] = 0.0;
        }
        super::probs::of_sampled(&logits, token.0, Some(asked), |t| {
            String::from_utf8_lossy(&piece(LlamaToken(t))).into_owned()
        })
    }

    fn is_eog(&self, token: LlamaToken) -> bool {
        token == EOS
    }

    fn logits(&self, batch_index: i32) -> Vec<f32> {
        let tokens = self.outputs.get(&batch_index).unwrap_or_else(|| {
            panic!("logits of batch index {batch_index}, which has none (llama.cpp panics)")
        });
        toy_logits(tokens)
    }

    fn piece(&self, token: LlamaToken) -> Vec<u8> {
        piece(token)
    }

    fn batch_clear(&mut self) {
        self.batch.clear();
    }

    fn batch_add(
        &mut self,
        token: LlamaToken,
        position: i32,
        seq: i32,
        logits: bool,
    ) -> Result<(), String> {
        assert!(
            self.batch.len() < self.n_batch,
            "a batch of more than n_batch = {} tokens (llama.cpp aborts)",
            self.n_batch
        );
        assert!(
            !self.piles.contains(&self.seq(seq)),
            "decoding into sequence {seq}, which holds several cells at one position"
        );
        self.batch.push(BatchEntry {
            token,
            position,
            seq,
            logits,
        });
        Ok(())
    }

    fn batch_len(&self) -> i32 {
        self.batch.len() as i32
    }

    fn decode(&mut self) -> Result<(), String> {
        let call = self.decodes.len() + 1;
        self.outputs.clear();
        let checked = self.check_batch();
        let fail = self.fail_decodes.contains(&call);
        if fail {
            // Half the batch is written, as a decode that fails in its
            // second micro-batch leaves it.
            if checked.is_ok() {
                for entry in &self.batch[..self.batch.len() / 2] {
                    self.kv[entry.seq as usize].push(entry.token);
                }
            }
        } else if checked.is_ok() {
            for (index, entry) in self.batch.iter().enumerate() {
                let tokens = &mut self.kv[entry.seq as usize];
                tokens.push(entry.token);
                if entry.logits {
                    self.outputs.insert(index as i32, tokens.clone());
                }
            }
        }
        self.decodes.push(DecodeCall {
            batch: self.batch.clone(),
            cells: self.cells(),
            failed: fail || checked.is_err(),
        });
        if fail {
            return Err("a scripted decode failure".to_string());
        }
        checked
    }

    fn clear_seq(&mut self, seq: i32, from: Option<u32>, to: Option<u32>) -> bool {
        let seq = self.seq(seq);
        if from.is_none() && to.is_none() {
            self.piles.remove(&seq);
        }
        let tokens = &mut self.kv[seq];
        let from = from.map_or(0, |p| p as usize);
        let to = to.map_or(usize::MAX, |p| p as usize);
        if to < tokens.len() && from < to {
            // A hole: the toy cache keeps sequences without gaps.
            return false;
        }
        tokens.truncate(from.min(tokens.len()));
        true
    }

    fn copy_seq(&mut self, src: i32, dst: i32, from: Option<u32>, to: Option<u32>) -> bool {
        let (src, dst) = (self.seq(src), self.seq(dst));
        let from = from.map_or(0, |p| p as usize);
        let to = to
            .map_or(usize::MAX, |p| p as usize)
            .min(self.kv[src].len());
        if from == 0 && !self.kv[dst].is_empty() && !self.kv[src].is_empty() {
            // Cells piled onto cells at the same positions.
            self.piles.insert(dst);
            let copied = self.kv[src][..to].to_vec();
            self.kv[dst].extend(copied);
            return true;
        }
        assert_eq!(
            self.kv[dst].len(),
            from,
            "copying positions {from}..{to} into sequence {dst}, which holds {} tokens",
            self.kv[dst].len()
        );
        let copied = self.kv[src][from..to].to_vec();
        self.kv[dst].extend(copied);
        true
    }

    fn clear_all(&mut self) {
        for tokens in &mut self.kv {
            tokens.clear();
        }
        self.piles.clear();
    }

    fn take_cached(&mut self) -> Vec<LlamaToken> {
        std::mem::take(&mut self.cached)
    }

    fn put_cached(&mut self, tokens: Vec<LlamaToken>) {
        self.cached = tokens;
    }
}

/// What `whet engine` does under [`SCRIPT_ENV`]: a TOML file, every key
/// optional.
///
/// ```toml
/// abort_after = 3           # abort() once 3 requests have ended (Done or Error) in this worker
/// abort_on = "poison"       # abort() at the first token of a request whose prompt contains this
/// hang_after = 2            # stop answering once 2 requests have ended (0: at the first
///                           # generation); exit when stdin closes or at Shutdown
/// once = "/tmp/x/fired"     # only if this file does not exist; it is created when one fires
/// journal = "/tmp/x/log"    # one line per request received: its prompt text, as JSON
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    pub abort_after: Option<u32>,
    pub abort_on: Option<String>,
    pub hang_after: Option<u32>,
    pub once: Option<PathBuf>,
    pub journal: Option<PathBuf>,
}

impl Script {
    pub fn read(path: &Path) -> Result<Script, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the engine script {}: {e}", path.display()))?;
        toml::from_str(&text)
            .map_err(|e| format!("the engine script {} is not valid: {e}", path.display()))
    }

    /// Whether a failure may fire: always without `once`, else the first
    /// time only (the marker file is created).
    pub fn fire(&self) -> bool {
        match &self.once {
            None => true,
            Some(marker) => std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(marker)
                .is_ok(),
        }
    }

    /// Notes requests in the journal, if there is one.
    pub fn journal(&self, prompts: &[&Prompt]) {
        use std::io::Write;
        let Some(path) = &self.journal else { return };
        let mut lines = String::new();
        for prompt in prompts {
            lines.push_str(&super::protocol::encode_line(&prompt_text(prompt)));
            lines.push('\n');
        }
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut file| file.write_all(lines.as_bytes()));
        if let Err(e) = written {
            tracing::warn!("cannot write the engine journal {}: {e}", path.display());
        }
    }
}

/// What a scripted worker says it loaded.
pub fn model_info(request: &LoadRequest) -> ModelInfo {
    ModelInfo {
        path: request.model.clone(),
        file_size: std::fs::metadata(&request.model).map_or(0, |m| m.len()),
        architecture: Some("scripted".to_string()),
        name: Some("scripted toy model".to_string()),
        parameter_count: 0,
        quantization: None,
        n_ctx_train: None,
        n_ctx: request.n_ctx,
        n_batch: request.n_batch,
        threads: request.threads,
        n_vocab: EOS.0 as u32 + 1,
        chat_template_present: true,
        chat_format: ChatFormat::Model { builtin: None },
    }
}
