//! The `themes/` directory and the themes compiled into the binary agree:
//! a theme file added to the directory but not to `SHIPPED` would otherwise
//! never reach users.

use std::path::Path;

use whet::tui::theme;

#[test]
fn every_file_in_themes_is_shipped_and_loads_cleanly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("themes");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .map(|path| path.file_stem().unwrap().to_str().unwrap().to_string())
        .collect();
    on_disk.sort();
    assert_eq!(theme::available(None), on_disk);
    for name in ["dark", "light", "high-contrast"] {
        assert!(on_disk.iter().any(|n| n == name), "{name} is missing");
    }
    for name in &on_disk {
        // Loading the directory as a user dir layers each file over its
        // shipped namesake: no warnings either way.
        let loaded = theme::load(name, Some(&dir)).unwrap();
        assert!(loaded.warnings.is_empty(), "{name}: {:?}", loaded.warnings);
        let shipped = theme::load(name, None).unwrap();
        assert_eq!(loaded.theme, shipped.theme, "{name}");
    }
}
