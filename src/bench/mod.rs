//! `whet bench` (being written).
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {}

pub async fn run(_args: BenchArgs) -> Result<ExitCode, String> {
    Err("bench: not written yet".into())
}
