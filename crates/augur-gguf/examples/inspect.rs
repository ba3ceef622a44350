//! Prints what a GGUF header says: `cargo run -p augur-gguf --example inspect -- FILE [--json]`.
//! With two files, checks whether the second can draft for the first.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let files: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let mut ok = true;
    for f in &files {
        let start = Instant::now();
        match augur_gguf::validate(Path::new(f)) {
            Ok(info) if json => match serde_json::to_string_pretty(&info) {
                Ok(s) => println!("{s}"),
                Err(e) => {
                    eprintln!("{e}");
                    ok = false;
                }
            },
            Ok(info) => println!("{}(read in {:?})\n", info.render_text(), start.elapsed()),
            Err(e) => {
                eprintln!("{e}");
                ok = false;
            }
        }
    }
    if let [target, draft] = files[..] {
        let start = Instant::now();
        match augur_gguf::check_draft_compatible(Path::new(target), Path::new(draft)) {
            Ok(()) => println!("draft is compatible ({:?})", start.elapsed()),
            Err(e) => {
                println!("{e}");
                ok = false;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
