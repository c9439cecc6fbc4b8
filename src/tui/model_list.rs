//! What the model picker lists: the GGUF files in the models folder, and
//! the models of every backend in `<config>/backends.toml`, each asked
//! whether it answers. Local files are listed at once; a backend stands in
//! as "asking…" until its answer replaces it, so a slow or dead server never
//! holds the picker up.

use std::path::{Path, PathBuf};

use tokio::sync::mpsc::UnboundedSender;

use super::app::Msg;
use super::picker::PickerItem;
use crate::engine::remote::probe::{self, ServerInfo};
use crate::engine::remote::{http, Backend, Backends, RemoteModel};

/// Installed models (the models folder) and the local model in use,
/// wherever it is (`current` is none when the chat's model is remote).
pub fn local_items(models_dir: Option<&Path>, current: Option<&Path>) -> Vec<PickerItem> {
    let mut paths: Vec<PathBuf> = models_dir
        .and_then(|dir| std::fs::read_dir(dir).ok())
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "gguf") && path.is_file())
        .collect();
    // `--model` may name an installed file through a symlink or another
    // spelling of its path: the same file is listed once.
    let same_file = |a: &Path, b: &Path| {
        a == b
            || matches!(
                (std::fs::canonicalize(a), std::fs::canonicalize(b)),
                (Ok(a), Ok(b)) if a == b
            )
    };
    let current = current.map(|current| {
        paths
            .iter()
            .find(|p| same_file(p, current))
            .cloned()
            .unwrap_or_else(|| {
                paths.push(current.to_path_buf());
                current.to_path_buf()
            })
    });
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let file_name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            let known = crate::models::catalog::by_file_name(&file_name)
                .map(|m| format!(" · {}", m.description))
                .unwrap_or_default();
            PickerItem {
                key: path.to_string_lossy().into_owned(),
                label: file_name,
                detail: format!("{:.0} MB{known}", size as f64 / 1e6),
                current: current.as_deref() == Some(path.as_path()),
                problem: (!path.is_file()).then(|| "the file is missing".to_string()),
                remote: None,
            }
        })
        .collect()
}

/// One "asking…" line per backend of the file, or the file's own problem.
/// A remote model in use that the file no longer has (a URL given with
/// `--backend`) is listed too.
pub fn backend_stand_ins(
    backends: &Result<Backends, String>,
    current: Option<&RemoteModel>,
) -> Vec<PickerItem> {
    let mut names: Vec<String> = match backends {
        Ok(backends) => backends.backends.keys().cloned().collect(),
        Err(problem) => {
            return vec![PickerItem {
                key: "backends.toml".into(),
                label: "remote backends".into(),
                detail: String::new(),
                current: false,
                problem: Some(problem.clone()),
                remote: None,
            }]
        }
    };
    if let Some(current) = current {
        if !names.contains(&current.backend) {
            names.push(current.backend.clone());
        }
    }
    names
        .into_iter()
        .map(|name| {
            let remote = RemoteModel {
                backend: name.clone(),
                model: None,
            };
            PickerItem {
                key: remote_key(&remote),
                label: remote.label(),
                detail: "remote · asking…".into(),
                current: current.is_some_and(|c| c.backend == name),
                problem: None,
                remote: Some(remote),
            }
        })
        .collect()
}

/// The backend's models as the server listed them, or one line saying why
/// it cannot be used.
pub fn backend_items(
    backend: &str,
    answer: &Result<ServerInfo, String>,
    current: Option<&RemoteModel>,
) -> Vec<PickerItem> {
    let info = match answer {
        Ok(info) => info,
        Err(problem) => {
            let remote = RemoteModel {
                backend: backend.to_string(),
                model: None,
            };
            return vec![PickerItem {
                key: remote_key(&remote),
                label: remote.label(),
                detail: "remote · not reachable".into(),
                current: current.is_some_and(|c| c.backend == backend),
                problem: Some(format!(
                    "backend '{backend}' is not reachable: {}",
                    problem
                        .strip_prefix(&format!("backend '{backend}': "))
                        .unwrap_or(problem)
                )),
                remote: Some(remote),
            }];
        }
    };
    let mut models = info.models.clone();
    if !models.contains(&info.model) {
        models.insert(0, info.model.clone());
    }
    let mut about = vec!["remote".to_string(), info.kind.name().to_string()];
    if let Some(n_ctx) = info.n_ctx {
        about.push(format!("{n_ctx} ctx"));
    }
    if let Some(slots) = info.slots {
        about.push(format!("{slots} slot{}", if slots == 1 { "" } else { "s" }));
    }
    about.push(format!("{:.0} ms", info.latency_ms));
    let capabilities = info.capabilities.describe();
    if !capabilities.is_empty() {
        about.push(capabilities);
    }
    let detail = about.join(" · ");
    models
        .into_iter()
        .map(|model| {
            let in_use = current.is_some_and(|c| {
                c.backend == backend && c.model.as_deref().unwrap_or(&info.model) == model
            });
            let remote = RemoteModel {
                backend: backend.to_string(),
                model: Some(model),
            };
            PickerItem {
                key: remote_key(&remote),
                label: remote.label(),
                detail: detail.clone(),
                current: in_use,
                problem: None,
                remote: Some(remote),
            }
        })
        .collect()
}

/// Distinct from every file path and session name.
fn remote_key(remote: &RemoteModel) -> String {
    format!(
        "remote\u{1f}{}\u{1f}{}",
        remote.backend,
        remote.model.as_deref().unwrap_or("")
    )
}

/// Asks every backend at once; each answer arrives as its own message.
/// The remote model in use is asked too when the file does not have its
/// backend (a URL given with `--backend`, a backend since removed).
pub fn ask_backends(
    backends: Backends,
    current: Option<RemoteModel>,
    answers: UnboundedSender<Msg>,
) {
    if let Some(current) = &current {
        if !backends.backends.contains_key(&current.backend) {
            match backends.resolve(&current.backend) {
                Ok(backend) => spawn_ask(backend, Some(current.clone()), answers.clone()),
                Err(problem) => {
                    let items = backend_items(&current.backend, &Err(problem), Some(current));
                    let _ = answers.send(Msg::BackendItems {
                        backend: current.backend.clone(),
                        items,
                    });
                }
            }
        }
    }
    for backend in backends.backends.into_values() {
        spawn_ask(backend, current.clone(), answers.clone());
    }
}

fn spawn_ask(backend: Backend, current: Option<RemoteModel>, answers: UnboundedSender<Msg>) {
    tokio::spawn(async move {
        let answer = match http::client(&backend) {
            Ok(client) => probe::probe(&client, &backend).await,
            Err(problem) => Err(problem),
        };
        let items = backend_items(&backend.name, &answer, current.as_ref());
        let _ = answers.send(Msg::BackendItems {
            backend: backend.name,
            items,
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::remote::probe::Capabilities;
    use crate::engine::remote::Kind;
    use crate::tui::picker::{Picker, PickerKind};

    #[test]
    fn a_model_named_through_a_symlink_is_listed_once_as_current() {
        let dir = tempfile::tempdir().unwrap();
        let models = dir.path().join("models");
        std::fs::create_dir_all(&models).unwrap();
        let installed = models.join("a.gguf");
        std::fs::write(&installed, b"GGUF").unwrap();
        std::fs::write(models.join("b.gguf"), b"GGUF").unwrap();
        let link = dir.path().join("link.gguf");
        std::os::unix::fs::symlink(&installed, &link).unwrap();

        let items = local_items(Some(&models), Some(&link));
        let labels: Vec<&str> = items.iter().map(|i| i.label.as_str()).collect();
        assert_eq!(labels, ["a.gguf", "b.gguf"]);
        assert!(items[0].current && !items[1].current);

        // A model outside the folder is added, once.
        let elsewhere = dir.path().join("c.gguf");
        std::fs::write(&elsewhere, b"GGUF").unwrap();
        let items = local_items(Some(&models), Some(&elsewhere));
        assert_eq!(items.len(), 3);
        assert_eq!(items.iter().filter(|i| i.current).count(), 1);
    }

    #[test]
    fn a_remote_model_in_use_marks_no_file_current() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.gguf"), b"GGUF").unwrap();
        let items = local_items(Some(dir.path()), None);
        assert_eq!(items.len(), 1);
        assert!(!items[0].current);
    }

    fn server(models: &[&str], model: &str) -> ServerInfo {
        ServerInfo {
            kind: Kind::LlamaServer,
            kind_detected: true,
            model: model.into(),
            models: models.iter().map(|m| m.to_string()).collect(),
            n_ctx: Some(2048),
            slots: Some(4),
            version: None,
            capabilities: Capabilities::of(Kind::LlamaServer),
            latency_ms: 3.2,
        }
    }

    fn backends(names: &[&str]) -> Backends {
        let text: String = names
            .iter()
            .map(|n| format!("[{n}]\nurl = \"http://127.0.0.1:9/v1\"\n"))
            .collect();
        crate::engine::remote::config::parse("backends.toml", &text).unwrap()
    }

    #[test]
    fn each_backend_stands_in_until_it_answers() {
        let current = RemoteModel {
            backend: "http://10.0.0.1:8080/v1".into(),
            model: None,
        };
        let items = backend_stand_ins(&Ok(backends(&["gpu", "laptop"])), Some(&current));
        let labels: Vec<&str> = items.iter().map(|i| i.label.as_str()).collect();
        assert_eq!(labels, ["gpu", "laptop", "http://10.0.0.1:8080/v1"]);
        assert!(items.iter().all(|i| i.detail == "remote · asking…"));
        assert_eq!(items.iter().filter(|i| i.current).count(), 1);
        assert!(items[2].current);

        let broken = backend_stand_ins(&Err("backends.toml:3:1: bad".into()), None);
        assert_eq!(broken.len(), 1);
        assert_eq!(broken[0].problem.as_deref(), Some("backends.toml:3:1: bad"));
    }

    #[test]
    fn an_answer_lists_the_servers_models_with_what_it_can_do() {
        let current = RemoteModel {
            backend: "gpu".into(),
            model: None,
        };
        let items = backend_items("gpu", &Ok(server(&["small", "big"], "big")), Some(&current));
        let labels: Vec<&str> = items.iter().map(|i| i.label.as_str()).collect();
        assert_eq!(labels, ["small @ gpu", "big @ gpu"]);
        // No model chosen: the server's own is the one in use.
        assert!(!items[0].current && items[1].current);
        assert!(
            items[0]
                .detail
                .starts_with("remote · llama-server · 2048 ctx · 4 slots · 3 ms · logprobs"),
            "{}",
            items[0].detail
        );
        assert_eq!(
            items[0].remote,
            Some(RemoteModel {
                backend: "gpu".into(),
                model: Some("small".into())
            })
        );

        let down = backend_items("gpu", &Err("connection refused".into()), None);
        assert_eq!(down.len(), 1);
        assert_eq!(
            down[0].problem.as_deref(),
            Some("backend 'gpu' is not reachable: connection refused")
        );
    }

    #[test]
    fn an_answer_replaces_its_stand_in_and_the_selection_follows() {
        let mut picker = Picker::new(PickerKind::Models);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.gguf"), b"GGUF").unwrap();
        let mut items = local_items(Some(dir.path()), None);
        items.extend(backend_stand_ins(&Ok(backends(&["gpu", "laptop"])), None));
        picker.set_items(items);
        picker.move_selection(true); // on "gpu", still asking
        assert_eq!(picker.selected_item().unwrap().label, "gpu");

        picker.replace_backend(
            "laptop",
            backend_items("laptop", &Err("refused".into()), None),
        );
        assert_eq!(picker.selected_item().unwrap().label, "gpu");
        picker.replace_backend(
            "gpu",
            backend_items("gpu", &Ok(server(&["x", "y"], "x")), None),
        );
        let labels: Vec<&str> = picker.items.iter().map(|i| i.label.as_str()).collect();
        assert_eq!(labels, ["a.gguf", "x @ gpu", "y @ gpu", "laptop"]);
        assert_eq!(picker.selected_item().unwrap().label, "x @ gpu");
    }
}
