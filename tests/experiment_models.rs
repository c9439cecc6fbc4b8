//! Variants on their own models, with the real catalog models: an
//! experiment whose variants run on SmolLM2 (the run's model) and Gemma 3
//! 270M (a variant's `model`) decodes each variant on its model, one worker
//! at a time, and every greedy output equals a single generation of the
//! same messages on that model; a variant whose model file is missing is
//! refused before anything runs.

mod common;

use common::*;
use whet::engine::SpawnOptions;
use whet::experiment::launch::{self, NewRun};
use whet::experiment::results::read_results;
use whet::experiment::run::{run_cells, Engine, Known};

fn experiment(dir: &std::path::Path, gemma: &std::path::Path) -> std::path::PathBuf {
    std::fs::write(
        dir.join("q.jsonl"),
        "{\"question\": \"What is the capital of France?\", \"reference\": \"Paris\"}\n{\"question\": \"What colour is the sky on a clear day?\", \"reference\": \"Blue\"}\n",
    )
    .unwrap();
    let file = dir.join("models.toml");
    std::fs::write(
        &file,
        format!(
            "name = \"models\"\nprompt = \"Answer in a few words: {{{{question}}}}\"\ndataset = \"q.jsonl\"\nmetrics = [\"chrf\", \"length\"]\n\
             [[variants]]\nname = \"smollm2\"\ntemperature = 0\nmax_tokens = 12\n\
             [[variants]]\nname = \"gemma\"\nmodel = {:?}\nchat_format = \"gemma\"\ntemperature = 0\nmax_tokens = 12\n",
            gemma.display().to_string()
        ),
    )
    .unwrap();
    file
}

#[tokio::test]
async fn each_variant_runs_on_its_own_model_and_equals_a_single_generation() {
    let dir = tempfile::tempdir().unwrap();
    let file = experiment(dir.path(), &gemma3());
    let prepared = launch::prepare_run(&file, None, None, None).unwrap();
    let root = dir.path().join("experiments");
    let mut started = launch::new_run(
        &root,
        NewRun {
            prepared,
            model: &smollm2(),
            remote: None,
            parallel: 1,
            limit: None,
            repeats: None,
            use_cache: false,
        },
    )
    .unwrap();
    assert_eq!(started.cells.len(), 4);
    let gemma_cells: Vec<_> = started.cells.iter().filter(|c| c.model.is_some()).collect();
    assert_eq!(gemma_cells.len(), 2);
    assert!(gemma_cells.iter().all(|c| c.variant == 1));
    let spawn = SpawnOptions::local(whet_bin());
    let mut engine = Engine::start(spawn, load_request(smollm2(), 2048))
        .await
        .unwrap();
    let results = run_cells(
        &mut engine,
        &started.prepared,
        &started.cells,
        Known {
            done: &started.done,
            cache: &started.cache,
        },
        &mut started.log,
        1,
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(
        engine.load.model,
        gemma3(),
        "the worker ends on the last model"
    );
    engine.client.shutdown().await;
    assert_eq!(results.len(), 4);
    assert!(results.iter().all(|r| r.error.is_none()), "{results:?}");
    assert_eq!(read_results(&started.log.dir).unwrap().len(), 4);
    // Each output is what its model says to the same messages alone.
    for (model, variant, format) in [
        (smollm2(), "smollm2", None),
        (gemma3(), "gemma", Some("gemma")),
    ] {
        let mut single = whet::engine::EngineClient::spawn(&SpawnOptions::local(whet_bin()))
            .await
            .unwrap();
        let mut load = load_request(model, 2048);
        load.chat_format = format.map(str::to_string);
        single.load(load).await.unwrap();
        for (cell, result) in started
            .cells
            .iter()
            .zip(&results)
            .filter(|(c, _)| started.prepared.experiment.variants[c.variant].name == variant)
        {
            let wanted = results.iter().find(|r| r.key == cell.key).unwrap();
            let alone = single.generate(cell.request(), |_| {}).await.unwrap();
            assert_eq!(alone.text, wanted.output, "{variant}, item {}", result.item);
        }
        single.shutdown().await;
    }
    let smol = results.iter().find(|r| r.variant == "smollm2").unwrap();
    let gemma = results
        .iter()
        .find(|r| r.variant == "gemma" && r.item == smol.item)
        .unwrap();
    assert_ne!(smol.output, gemma.output, "two models, two answers");
}

#[test]
fn a_variant_model_that_is_not_there_is_refused_before_running() {
    let dir = tempfile::tempdir().unwrap();
    let file = experiment(dir.path(), &dir.path().join("missing.gguf"));
    let prepared = launch::prepare_run(&file, None, None, None);
    // `prepare` checks the model names a file or a catalog model.
    let error = match prepared {
        Err(error) => error,
        Ok(prepared) => launch::new_run(
            &dir.path().join("experiments"),
            NewRun {
                prepared,
                model: &smollm2(),
                remote: None,
                parallel: 1,
                limit: None,
                repeats: None,
                use_cache: false,
            },
        )
        .err()
        .expect("refused"),
    };
    assert!(error.contains("missing.gguf"), "{error}");
    assert!(!dir.path().join("experiments").exists(), "no run folder");
}
