//! A run with a refined variant stopped mid-loop as the Experiments screen
//! stops one (the running future is dropped) keeps the cells it finished,
//! loses only the loop in progress, and resuming it gives the results of an
//! uninterrupted run. On the scripted worker (`WHET_ENGINE_SCRIPT`,
//! src/engine/scripted.rs); one test in this file, as it sets the variable
//! for the workers it starts.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use whet::engine::scripted::SCRIPT_ENV;
use whet::engine::SpawnOptions;
use whet::experiment::launch::{new_run, prepare_run, resume_run, Launch, NewRun};
use whet::experiment::results::{read_results, CellResult};
use whet::experiment::run::{run_cells_reporting, Engine, Known};

/// Each cell's output and its passes, by key.
fn outputs(results: &[CellResult]) -> BTreeMap<String, (String, Option<Vec<String>>)> {
    results
        .iter()
        .map(|r| {
            let passes = r
                .refine
                .as_ref()
                .map(|f| f.passes.iter().map(|p| p.output.clone()).collect());
            (r.key.clone(), (r.output.clone(), passes))
        })
        .collect()
}

async fn engine(model: &Path) -> Engine {
    let mut load = load_request(model.to_path_buf(), 4096);
    load.parallel = 2;
    Engine::start(SpawnOptions::local(whet_bin()), load)
        .await
        .unwrap()
}

async fn run_all(launch: &mut Launch, model: &Path) -> Vec<CellResult> {
    let mut engine = engine(model).await;
    let known = Known {
        done: &launch.done,
        cache: &launch.cache,
    };
    let results = run_cells_reporting(
        &mut engine,
        &launch.prepared,
        &launch.cells,
        known,
        &mut launch.log,
        2,
        |_, _| {},
    )
    .await
    .unwrap();
    engine.client.shutdown().await;
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stopped_inside_a_loop_keeps_finished_cells_and_resumes_to_the_same_results() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("script.toml");
    // The only test in this binary: nothing else reads the environment.
    std::env::set_var(SCRIPT_ENV, &script);
    std::fs::write(
        dir.path().join("items.jsonl"),
        "{\"n\": \"1\", \"reference\": \"one\"}\n{\"n\": \"2\", \"reference\": \"two\"}\n",
    )
    .unwrap();
    let file = dir.path().join("stop.toml");
    std::fs::write(
        &file,
        "name = \"stop\"\nprompt = \"Count to {{n}}.\"\ndataset = \"items.jsonl\"\n\
         metrics = [\"chrf\"]\n[[variants]]\nname = \"plain\"\ntemperature = 0\nmax_tokens = 10\n\
         [[variants]]\nname = \"refined\"\ntemperature = 0\nmax_tokens = 10\n\
         refine = { rounds = 1, keep = \"best\", stop_phrase = \"\" }\n",
    )
    .unwrap();
    let model = dir.path().join("model.gguf");
    std::fs::write(&model, "not a real model").unwrap();
    let start = |root: &Path| {
        let prepared = prepare_run(&file, None, None, None).unwrap();
        new_run(
            root,
            NewRun {
                prepared,
                model: &model,
                remote: None,
                parallel: 2,
                limit: None,
                repeats: None,
                use_cache: false,
            },
        )
        .unwrap()
    };

    std::fs::write(&script, "").unwrap();
    let all = run_all(&mut start(&dir.path().join("uninterrupted")), &model).await;
    assert_eq!(all.len(), 4);
    assert!(all.iter().all(|r| r.error.is_none()));
    let expected = outputs(&all);

    // The worker stops answering in the second loop (after the 2 plain
    // generations, the first loop's 3 and the second's draft); the run is
    // dropped once the first loop's cell is saved, as the screen's stop does.
    std::fs::write(&script, "hang_after = 6\n").unwrap();
    let root = dir.path().join("stopped");
    let mut launch = start(&root);
    let mut engine_b = engine(&model).await;
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let mut stop = Some(stop);
    let mut seen = 0;
    let known = Known {
        done: &launch.done,
        cache: &launch.cache,
    };
    tokio::select! {
        _ = run_cells_reporting(&mut engine_b, &launch.prepared, &launch.cells, known, &mut launch.log, 2, |_, result| {
            seen += usize::from(result.is_some());
            if seen == 3 {
                let _ = stop.take().map(|s| s.send(()));
            }
        }) => panic!("the run ended although its worker hangs"),
        _ = stopped => {}
    }
    engine_b.client.shutdown().await;
    let run = root.join(&launch.info.id);
    let kept = read_results(&run).unwrap();
    assert_eq!(kept.len(), 3, "the plain cells and the first loop's");
    assert_eq!(kept.iter().filter(|r| r.refine.is_some()).count(), 1);
    for (key, value) in outputs(&kept) {
        assert_eq!(Some(&value), expected.get(&key));
    }

    // Resumed: the loop that was stopped runs again, whole.
    std::fs::write(&script, "").unwrap();
    let mut launch = resume_run(&run, None, None, None).unwrap();
    assert_eq!(launch.done.len(), 3);
    let rest = run_all(&mut launch, &model).await;
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].refine.as_ref().map(|f| f.passes.len()), Some(2));
    assert_eq!(outputs(&read_results(&run).unwrap()), expected);
}
