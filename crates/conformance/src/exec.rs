//! Running an implementation under test: a command with no standard input, a time limit, and
//! its exit status told apart from a crash (a signal) and a hang (killed at the limit).

use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How a run ended.
#[derive(Debug, Clone)]
pub struct Ran {
    /// The exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    /// Killed at the time limit.
    pub hung: bool,
    /// The first lines of its standard error.
    pub stderr: String,
    /// Wall time.
    pub seconds: f64,
}

impl Ran {
    /// Why the run did not succeed, if it did not.
    pub fn failure(&self) -> Option<String> {
        match (self.hung, self.code) {
            (true, _) => Some("hung: killed at the time limit".into()),
            (false, Some(0)) => None,
            (false, Some(c)) => Some(format!("exit code {c}: {}", self.stderr)),
            (false, None) => Some(format!("crashed (killed by a signal): {}", self.stderr)),
        }
    }
}

/// Runs `program args`, killing it after `limit`.
pub fn run(program: &str, args: &[String], limit: Duration) -> Result<Ran, String> {
    let started = Instant::now();
    let err = tempfile::tempfile().map_err(|e| format!("a file for standard error: {e}"))?;
    // Its own process group, so a hung run is killed with everything it started (a reader's
    // daemon, a copy filling the disk from an endless file).
    let mut child = Command::new(program)
        .args(args)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err.try_clone().map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| format!("running {program}: {e}"))?;
    let mut hung = false;
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            break st;
        }
        if started.elapsed() > limit {
            if let Some(group) = i32::try_from(child.id())
                .ok()
                .and_then(rustix::process::Pid::from_raw)
            {
                let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
            }
            let _ = child.kill();
            hung = true;
            break child.wait().map_err(|e| e.to_string())?;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = first_lines(err);
    Ok(Ran {
        code: status.code(),
        hung,
        stderr,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn first_lines(mut f: std::fs::File) -> String {
    use std::io::{Read, Seek};
    let mut text = String::new();
    let _ = f.rewind();
    let _ = f.take(4096).read_to_string(&mut text);
    let text = strip_colours(&text);
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .take(3)
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Text without ANSI colour sequences (`ESC [ ... m`).
fn strip_colours(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
