//! whet's beam search against transformers' `generate()` itself: the
//! expected sequences and scores come from
//! `tests/fixtures/beams/make_fixtures.py`, which runs transformers over a
//! fake model with the logit function [`fixture_logits`] repeats here.

use serde::Deserialize;

use super::{search, BeamModel, BeamOptions, EarlyStopping};

const EXPECTED: &str = include_str!("../../../tests/fixtures/beams/expected.json");
const VOCAB: usize = 12;
const EOS: usize = 0;

/// `fixture_logits` in make_fixtures.py: multiples of 1/1024, exact in f32.
fn fixture_logits(prefix: &[i32]) -> Vec<f32> {
    let mut h: u64 = 0;
    for &t in prefix {
        h = (h * 31 + t as u64 + 1) % 1_000_003;
    }
    let mut out: Vec<f64> = (0..VOCAB as u64)
        .map(|v| ((h * 7919 + v * 104_729 + (h % 97) * v * v) % 8192) as f64 / 1024.0)
        .collect();
    out[EOS] += 0.75 * prefix.len() as f64 - 5.0;
    out.into_iter().map(|x| x as f32).collect()
}

/// The fixture model as a [`BeamModel`]: it keeps each beam's tokens and
/// recomputes the logits from them, so a wrong parent shows.
struct FixtureModel {
    prompt: Vec<i32>,
    beams: Vec<Vec<i32>>,
}

impl BeamModel for FixtureModel {
    fn prompt_logits(&mut self) -> Result<Vec<f32>, String> {
        Ok(fixture_logits(&self.prompt))
    }

    fn advance(&mut self, parents: &[usize], tokens: &[i32]) -> Result<Vec<Vec<f32>>, String> {
        let old = std::mem::take(&mut self.beams);
        self.beams = parents
            .iter()
            .zip(tokens)
            .map(|(&p, &t)| {
                let mut seq = old.get(p).cloned().unwrap_or_else(|| self.prompt.clone());
                seq.push(t);
                seq
            })
            .collect();
        Ok(self.beams.iter().map(|s| fixture_logits(s)).collect())
    }
}

#[derive(Deserialize)]
struct Fixture {
    transformers: String,
    vocab: usize,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    prompt: Vec<i32>,
    eos: Vec<i32>,
    options: CaseOptions,
    returned: Vec<Returned>,
}

#[derive(Deserialize)]
struct CaseOptions {
    num_beams: usize,
    max_new_tokens: usize,
    #[serde(default = "one")]
    num_return_sequences: usize,
    #[serde(default = "one_f")]
    length_penalty: f32,
    #[serde(default)]
    early_stopping: Option<serde_json::Value>,
    #[serde(default)]
    no_repeat_ngram_size: usize,
}

fn one() -> usize {
    1
}

fn one_f() -> f32 {
    1.0
}

#[derive(Deserialize)]
struct Returned {
    tokens: Vec<i32>,
    score: f32,
}

fn early_stopping(value: &Option<serde_json::Value>) -> EarlyStopping {
    match value {
        None | Some(serde_json::Value::Bool(false)) => EarlyStopping::False,
        Some(serde_json::Value::Bool(true)) => EarlyStopping::True,
        Some(serde_json::Value::String(s)) if s == "never" => EarlyStopping::Never,
        Some(other) => panic!("unknown early_stopping {other}"),
    }
}

fn options_of(case: &Case) -> BeamOptions {
    BeamOptions {
        num_beams: case.options.num_beams,
        length_penalty: case.options.length_penalty,
        early_stopping: early_stopping(&case.options.early_stopping),
        num_return_sequences: case.options.num_return_sequences,
        no_repeat_ngram_size: case.options.no_repeat_ngram_size,
        max_new_tokens: case.options.max_new_tokens,
        eos: case.eos.clone(),
    }
}

#[test]
fn every_fixture_returns_what_transformers_returns() {
    let fixture: Fixture = serde_json::from_str(EXPECTED).expect("expected.json parses");
    assert_eq!(fixture.vocab, VOCAB);
    assert!(
        fixture.cases.len() >= 10,
        "transformers {}",
        fixture.transformers
    );
    for case in &fixture.cases {
        let mut model = FixtureModel {
            prompt: case.prompt.clone(),
            beams: Vec::new(),
        };
        let options = options_of(case);
        let result = search(&mut model, &case.prompt, &options)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let got: Vec<(Vec<i32>, f32)> = result
            .hypotheses
            .iter()
            .map(|h| (h.tokens.clone(), h.score))
            .collect();
        let want: Vec<(Vec<i32>, f32)> = case
            .returned
            .iter()
            .map(|r| (r.tokens.clone(), r.score))
            .collect();
        assert_eq!(
            got.iter().map(|g| &g.0).collect::<Vec<_>>(),
            want.iter().map(|w| &w.0).collect::<Vec<_>>(),
            "{}: sequences (got scores {:?}, want {:?})",
            case.name,
            got.iter().map(|g| g.1).collect::<Vec<_>>(),
            want.iter().map(|w| w.1).collect::<Vec<_>>()
        );
        for ((_, g), (_, w)) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-4, "{}: score {g} != {w}", case.name);
        }
    }
}

#[test]
fn returned_scores_are_the_summed_logprobs_over_length_to_the_penalty() {
    let fixture: Fixture = serde_json::from_str(EXPECTED).expect("expected.json parses");
    for case in &fixture.cases {
        let mut model = FixtureModel {
            prompt: case.prompt.clone(),
            beams: Vec::new(),
        };
        let options = options_of(case);
        let result = search(&mut model, &case.prompt, &options).unwrap();
        for h in &result.hypotheses {
            // Recompute the summed log-probability token by token.
            let mut seq = case.prompt.clone();
            let mut sum = 0.0f64;
            for &t in &h.tokens {
                let logits = fixture_logits(&seq);
                let max = logits.iter().cloned().fold(f32::MIN, f32::max) as f64;
                let log_sum = logits
                    .iter()
                    .map(|&l| (l as f64 - max).exp())
                    .sum::<f64>()
                    .ln();
                sum += logits[t as usize] as f64 - max - log_sum;
                seq.push(t);
            }
            let length = h.tokens.len() as f64;
            let score = sum / length.powf(f64::from(options.length_penalty));
            assert!((h.logprob as f64 - sum).abs() < 1e-4, "{}", case.name);
            assert!((h.score as f64 - score).abs() < 1e-4, "{}", case.name);
        }
    }
}

/// Greedy decoding over the fixture model: the most likely token until an
/// EOS token or `max_new_tokens`.
fn greedy(prompt: &[i32], eos: &[i32], max_new_tokens: usize) -> Vec<i32> {
    let mut seq = prompt.to_vec();
    let mut out = Vec::new();
    while out.len() < max_new_tokens {
        let logits = fixture_logits(&seq);
        let best = (0..logits.len())
            .max_by(|&a, &b| logits[a].total_cmp(&logits[b]).then(b.cmp(&a)))
            .unwrap() as i32;
        out.push(best);
        seq.push(best);
        if eos.contains(&best) {
            break;
        }
    }
    out
}

#[test]
fn one_beam_is_greedy_decoding_whatever_early_stopping_says() {
    for prompt in [vec![5, 2, 6], vec![8, 9, 7], vec![1], vec![4, 4, 1]] {
        for early in [
            EarlyStopping::True,
            EarlyStopping::False,
            EarlyStopping::Never,
        ] {
            let options = BeamOptions {
                early_stopping: early,
                length_penalty: 2.0,
                ..BeamOptions::new(1, 9, vec![0])
            };
            let mut model = FixtureModel {
                prompt: prompt.clone(),
                beams: Vec::new(),
            };
            let result = search(&mut model, &prompt, &options).unwrap();
            assert_eq!(result.hypotheses.len(), 1);
            assert_eq!(
                result.hypotheses[0].tokens,
                greedy(&prompt, &[0], 9),
                "{prompt:?}"
            );
        }
    }
}

/// A model that fails or gives unusable logits on request.
struct BrokenModel {
    prompt: Vec<f32>,
    advance: Result<Vec<Vec<f32>>, String>,
}

impl BeamModel for BrokenModel {
    fn prompt_logits(&mut self) -> Result<Vec<f32>, String> {
        Ok(self.prompt.clone())
    }

    fn advance(&mut self, _: &[usize], _: &[i32]) -> Result<Vec<Vec<f32>>, String> {
        self.advance.clone()
    }
}

#[test]
fn bad_logits_and_model_errors_end_the_search_with_a_reason() {
    let options = BeamOptions::new(2, 5, vec![0]);
    let mut cases = vec![
        (vec![0.5], Ok(vec![]), "too small"),
        (vec![f32::NAN; 4], Ok(vec![]), "NaN"),
        (vec![f32::NEG_INFINITY; 4], Ok(vec![]), "no finite"),
        (
            vec![0.0, 1.0, 2.0, 3.0],
            Err("decode failed".to_string()),
            "decode failed",
        ),
        (
            vec![0.0, 1.0, 2.0, 3.0],
            Ok(vec![vec![0.0; 4]]),
            "logits for 1 beams",
        ),
    ];
    for (prompt, advance, reason) in cases.drain(..) {
        let mut model = BrokenModel { prompt, advance };
        let err = search(&mut model, &[1], &options).unwrap_err();
        assert!(err.contains(reason), "{err}");
    }
    let bad = BeamOptions::new(2, 5, vec![0]);
    let err = search(
        &mut FixtureModel {
            prompt: vec![1],
            beams: vec![],
        },
        &[1],
        &BeamOptions {
            num_return_sequences: 3,
            ..bad
        },
    )
    .unwrap_err();
    assert!(err.contains("num_return_sequences"), "{err}");
}
