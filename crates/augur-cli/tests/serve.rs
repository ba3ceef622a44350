//! End-to-end tests of `augur serve` and `augur chat` on SmolLM2-135M: the
//! real binary on a free loopback port, driven by the official `openai`
//! Python client (tests/serve/openai_client.py), and `augur chat` through a
//! pseudo-terminal (tests/serve/chat_pty.py). A failing script fails its test.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// One scenario at a time: they share the machine's cores, and some time
/// how promptly the server answers.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn script(name: &str) -> String {
    format!("{}/tests/serve/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Waits for `child` up to `limit`; kills it past that.
fn wait_for(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// A running `augur serve`; killed if a test fails before stopping it.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_augur"))
            .args(["serve", "-m", &common::smol(), "--port", "0"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("augur serve starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[serve] {line}");
                let _ = tx.send(line);
            }
        });
        // Loading SmolLM2 takes a second or two; the first drafting request
        // may calibrate, but that happens later.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.split("serving on ").nth(1) {
                        let url = rest.split_whitespace().next().unwrap().to_owned();
                        return Server { child, url };
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("augur serve did not start listening");
                }
            }
        }
    }

    /// Runs `python3 openai_client.py scenario` against the server.
    fn drive(&self, scenario: &str, env: &[(&str, String)]) {
        let mut child = Command::new("python3")
            .arg(script("openai_client.py"))
            .arg(scenario)
            .env("AUGUR_URL", &self.url)
            .env("AUGUR_BIN", env!("CARGO_BIN_EXE_augur"))
            .env("AUGUR_MODEL", common::smol())
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .spawn()
            .expect("python3 runs");
        let status = wait_for(&mut child, Duration::from_secs(1200));
        assert!(
            status.is_some_and(|s| s.success()),
            "the {scenario} scenario failed ({status:?}); its reason is printed above"
        );
    }

    /// SIGTERM; the server must exit with status 0 within a few seconds.
    fn stop(mut self) {
        let t0 = Instant::now();
        terminate(&self.child);
        let status = wait_for(&mut self.child, Duration::from_secs(15));
        assert!(
            status.is_some_and(|s| s.success()),
            "augur serve's exit after SIGTERM: {status:?}"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(8),
            "augur serve took {:?} to stop",
            t0.elapsed()
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn terminate(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -TERM failed");
}

#[test]
fn openai_client_chat_and_completions_match_augur_run() {
    let _one = serial();
    let server = Server::start(&[]);
    server.drive("basics", &[]);
    server.stop();
}

#[test]
fn a_conversation_evaluates_only_each_turns_new_tokens() {
    let _one = serial();
    let server = Server::start(&[]);
    server.drive("conversation", &[]);
    server.stop();
}

#[test]
fn concurrent_clients_are_served_in_turn_and_a_client_that_leaves_frees_the_model() {
    let _one = serial();
    let server = Server::start(&["--max-queue", "8"]);
    server.drive("concurrency", &[]);
    server.stop();
}

#[test]
fn beyond_the_queue_limit_the_server_answers_503() {
    let _one = serial();
    let server = Server::start(&["--max-queue", "1"]);
    server.drive("queue_limit", &[]);
    server.stop();
}

#[test]
fn bad_input_gets_openai_errors_and_the_server_goes_on() {
    let _one = serial();
    let server = Server::start(&["--api-key", "sekret", "-c", "256", "--max-body", "65536"]);
    server.drive("bad_input", &[("AUGUR_KEY", "sekret".into())]);
    server.stop();
}

#[test]
fn sigterm_during_a_stream_ends_it_and_exits_0() {
    let _one = serial();
    let mut server = Server::start(&[]);
    let pid = server.child.id().to_string();
    server.drive("shutdown", &[("AUGUR_SERVER_PID", pid)]);
    // The script sent SIGTERM; the server must be gone, cleanly, soon after.
    let status = wait_for(&mut server.child, Duration::from_secs(8));
    assert!(
        status.is_some_and(|s| s.success()),
        "augur serve's exit after SIGTERM mid-stream: {status:?}"
    );
}

#[test]
fn chat_in_a_terminal_streams_keeps_the_conversation_and_survives_ctrl_c() {
    let _one = serial();
    let mut child = Command::new("python3")
        .arg(script("chat_pty.py"))
        .env("AUGUR_BIN", env!("CARGO_BIN_EXE_augur"))
        .env("AUGUR_MODEL", common::smol())
        .spawn()
        .expect("python3 runs");
    let status = wait_for(&mut child, Duration::from_secs(600));
    assert!(
        status.is_some_and(|s| s.success()),
        "the chat terminal test failed ({status:?}); the screen is printed above"
    );
}

#[test]
fn help_says_one_generation_runs_at_a_time_and_a_taken_port_is_a_clear_error() {
    let help = common::augur(&["serve", "--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(help.status.success());
    for needle in [
        "One generation runs at a time per model",
        "--max-queue",
        "--api-key",
        "--no-prompt-reuse",
        "/v1/chat/completions",
    ] {
        assert!(
            text.contains(needle),
            "serve --help lacks {needle}:\n{text}"
        );
    }
    let help = common::augur(&["chat", "--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    for needle in ["/reset", "/stats", "Ctrl-C", "--system"] {
        assert!(text.contains(needle), "chat --help lacks {needle}:\n{text}");
    }

    // The port is bound before the model loads, so this fails at once.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let o = common::augur(&["serve", "-m", &common::smol(), "--port", &port]);
    assert!(!o.status.success());
    let err = common::stderr(&o);
    assert!(
        err.contains("could not listen on 127.0.0.1:") && err.contains(&port),
        "{err}"
    );
}
