//! `augur models`: pull, list, convert.

use std::path::PathBuf;

use anyhow::{bail, Context};
use augur::models::{self, PullEvent};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};

/// `augur models` subcommands.
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Download default models into the cache (~/.cache/augur/models, or
    /// $AUGUR_MODELS_DIR), verified by sha256. Idempotent.
    Pull {
        /// Catalog names (see `augur models list`).
        names: Vec<String>,
        /// Pull every model in the catalog.
        #[arg(long)]
        all: bool,
    },
    /// Show the catalog and which models are present.
    List,
    /// Re-quantize a GGUF file through llama.cpp (e.g. to F16, where decoding is
    /// memory-bound and batched verification cheap).
    Convert {
        /// Source GGUF file or catalog name.
        src: String,
        /// Destination file (a bare file name goes into the models directory).
        dst: PathBuf,
        /// Weight type: f16, q8_0 or q4_0.
        #[arg(long = "type", value_name = "TYPE")]
        to: String,
        /// Threads (0 = all cores).
        #[arg(short = 't', long, default_value_t = 0)]
        threads: usize,
    },
}

/// Runs an `augur models` subcommand.
pub fn run(cmd: &ModelsCommand) -> anyhow::Result<()> {
    match cmd {
        ModelsCommand::Pull { names, all } => pull(names, *all),
        ModelsCommand::List => {
            list();
            Ok(())
        }
        ModelsCommand::Convert {
            src,
            dst,
            to,
            threads,
        } => convert(src, dst, to, *threads),
    }
}

fn pull(names: &[String], all: bool) -> anyhow::Result<()> {
    let entries: Vec<&models::CatalogEntry> = if all {
        models::catalog().iter().collect()
    } else if names.is_empty() {
        bail!("name the models to pull (see `augur models list`) or pass --all");
    } else {
        names
            .iter()
            .map(|n| {
                models::find(n)
                    .with_context(|| format!("unknown model '{n}'; see `augur models list`"))
            })
            .collect::<anyhow::Result<_>>()?
    };
    for entry in entries {
        let bar = ProgressBar::new(entry.size);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:32} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        let name = entry.name;
        let path = models::pull(entry, &mut |event| match event {
            PullEvent::Checking { bytes, .. } => {
                bar.set_message(format!("{name}: verifying"));
                bar.set_position(bytes);
            }
            PullEvent::Downloading { part, parts, .. } => {
                bar.set_message(format!("{name}: fetching part {part}/{parts}"));
            }
            PullEvent::Writing {
                part, parts, bytes, ..
            } => {
                bar.set_message(format!("{name}: writing part {part}/{parts}"));
                bar.set_position(bytes);
            }
            PullEvent::Present { .. } | PullEvent::Done { .. } => {}
        })?;
        bar.finish_and_clear();
        eprintln!("{name}: {}", path.display());
    }
    Ok(())
}

fn list() {
    println!("models directory: {}", models::models_dir().display());
    for status in models::list() {
        let size = status
            .size
            .map_or_else(|| "-".to_string(), |s| format!("{:.0} MB", s as f64 / 1e6));
        let role = status.entry.map_or("local", |e| e.role.label());
        println!(
            "  {:<22} {:<8} {:<12} {:>8}  {}",
            status.name,
            role,
            format!("{:?}", status.state).to_lowercase(),
            size,
            status.path.display()
        );
    }
}

fn convert(src: &str, dst: &std::path::Path, to: &str, threads: usize) -> anyhow::Result<()> {
    let to_type = augur::llama::QuantType::parse(to)
        .with_context(|| format!("unknown type '{to}'; choose f16, q8_0 or q4_0"))?;
    let src = models::resolve(src)?;
    augur::gguf::validate(&src)?;
    let dst = if dst.components().count() == 1 {
        models::models_dir().join(dst)
    } else {
        dst.to_path_buf()
    };
    if let Some(parent) = dst.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    eprintln!("converting {} -> {} ({to})", src.display(), dst.display());
    let spinner = ProgressBar::new_spinner();
    spinner.set_message("re-quantizing");
    spinner.enable_steady_tick(std::time::Duration::from_millis(200));
    // Write next to the destination, then rename: a failed or interrupted
    // conversion never leaves a half-written file under the final name.
    let tmp = dst.with_extension("gguf.partial");
    let result = augur::llama::quantize(&src, &tmp, to_type, threads);
    spinner.finish_and_clear();
    result?;
    std::fs::rename(&tmp, &dst).with_context(|| format!("renaming to {}", dst.display()))?;
    eprintln!("wrote {}", dst.display());
    Ok(())
}
