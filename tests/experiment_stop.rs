//! A run stopped mid-way (as the Experiments screen stops one: the running
//! future is dropped) keeps the cells it finished, and resuming it gives
//! the results of an uninterrupted run. On the scripted worker
//! (`WHET_ENGINE_SCRIPT`, src/engine/scripted.rs); one test in this file,
//! as it sets the variable for the workers it starts.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use whet::engine::scripted::SCRIPT_ENV;
use whet::engine::SpawnOptions;
use whet::experiment::launch::{new_run, prepare_run, resume_run, NewRun};
use whet::experiment::results::{read_results, CellResult};
use whet::experiment::run::{run_cells_reporting, Engine, Known};

fn outputs(results: &[CellResult]) -> BTreeMap<String, (String, Option<String>)> {
    results
        .iter()
        .map(|r| (r.key.clone(), (r.output.clone(), r.error.clone())))
        .collect()
}

async fn engine(model: &Path) -> Engine {
    let mut load = load_request(model.to_path_buf(), 4096);
    load.parallel = 3;
    Engine::start(SpawnOptions::local(whet_bin()), load)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_run_keeps_its_finished_cells_and_resumes_to_the_same_results() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("script.toml");
    // The only test in this binary: nothing else reads the environment.
    std::env::set_var(SCRIPT_ENV, &script);
    std::fs::write(
        dir.path().join("items.jsonl"),
        (0..5)
            .map(|i| format!("{{\"n\": \"{i}\"}}\n"))
            .collect::<String>(),
    )
    .unwrap();
    let file = dir.path().join("stop.toml");
    std::fs::write(
        &file,
        "name = \"stop\"\nprompt = \"Count to {{n}}.\"\ndataset = \"items.jsonl\"\n\
         metrics = [\"length\"]\n[[variants]]\nname = \"greedy\"\ntemperature = 0\n\
         max_tokens = 10\n[[variants]]\nname = \"sampled\"\ntemperature = 0.7\nmax_tokens = 10\n",
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
                parallel: 3,
                limit: None,
                repeats: None,
                use_cache: false,
            },
        )
        .unwrap()
    };

    // Uninterrupted.
    std::fs::write(&script, "").unwrap();
    let root = dir.path().join("uninterrupted");
    let mut launch = start(&root);
    let mut engine_a = engine(&model).await;
    let known = Known {
        done: &launch.done,
        cache: &launch.cache,
    };
    let all = run_cells_reporting(
        &mut engine_a,
        &launch.prepared,
        &launch.cells,
        known,
        &mut launch.log,
        3,
        |_, _| {},
    )
    .await
    .unwrap();
    engine_a.client.shutdown().await;
    assert_eq!(all.len(), 10);
    assert!(all.iter().all(|r| r.error.is_none()));

    // Stopped after 4 cells: the worker stops answering there, and the run
    // is dropped as the screen's stop does.
    std::fs::write(&script, "hang_after = 4\n").unwrap();
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
        _ = run_cells_reporting(&mut engine_b, &launch.prepared, &launch.cells, known, &mut launch.log, 3, |_, result| {
            seen += usize::from(result.is_some());
            if seen == 4 {
                let _ = stop.take().map(|s| s.send(()));
            }
        }) => panic!("the run ended although its worker hangs"),
        _ = stopped => {}
    }
    engine_b.client.shutdown().await;
    let run = root.join(&launch.info.id);
    let kept = read_results(&run).unwrap();
    assert_eq!(kept.len(), 4);
    let expected = outputs(&all);
    for result in &kept {
        assert_eq!(
            Some(&(result.output.clone(), result.error.clone())),
            expected.get(&result.key)
        );
    }

    // Resumed: the 6 others, and the whole is the uninterrupted run.
    std::fs::write(&script, "").unwrap();
    let mut launch = resume_run(&run, None, None, None).unwrap();
    assert_eq!(launch.done.len(), 4);
    let mut engine_c = engine(&model).await;
    let known = Known {
        done: &launch.done,
        cache: &launch.cache,
    };
    let rest = run_cells_reporting(
        &mut engine_c,
        &launch.prepared,
        &launch.cells,
        known,
        &mut launch.log,
        3,
        |_, _| {},
    )
    .await
    .unwrap();
    engine_c.client.shutdown().await;
    assert_eq!(rest.len(), 6);
    assert_eq!(outputs(&read_results(&run).unwrap()), expected);
}
