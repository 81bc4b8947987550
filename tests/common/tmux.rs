//! A tmux session on its own server (socket named after the session), for the tests that drive the real binary in a
//! real terminal. Tests running in parallel never race one shared server starting up or shutting down.

use std::process::Command;
use std::time::{Duration, Instant};

pub struct Session {
    pub name: String,
}

impl Session {
    /// Start `cmd` (program and arguments) in a detached `w × h` session whose name starts with `prefix`.
    pub fn start(prefix: &str, w: u16, h: u16, cmd: &[&str]) -> Session {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("{prefix}-{}-{nanos}", std::process::id());
        let (w, h) = (w.to_string(), h.to_string());
        let ok = Command::new("tmux")
            .args([
                "-L",
                &name,
                "new-session",
                "-d",
                "-s",
                &name,
                "-x",
                &w,
                "-y",
                &h,
            ])
            .args(cmd)
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux new-session failed");
        Session { name }
    }
    /// A tmux command on this session's own server.
    pub fn tmux(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.name]);
        c
    }
    /// Send keys by their tmux names (`Enter`, `Tab`, `q`).
    pub fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.name];
        args.extend(keys);
        assert!(self.tmux().args(&args).status().unwrap().success());
    }
    /// Type `text` literally.
    pub fn type_text(&self, text: &str) {
        assert!(
            self.tmux()
                .args(["send-keys", "-t", &self.name, "-l", text])
                .status()
                .unwrap()
                .success()
        );
    }
    /// A tmux format of the pane (`#{alternate_on}`, `#{pane_pid}`).
    pub fn format(&self, f: &str) -> String {
        let o = self
            .tmux()
            .args(["display-message", "-p", "-t", &self.name, f])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }
    pub fn capture(&self) -> String {
        let o = self
            .tmux()
            .args(["capture-pane", "-p", "-t", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
    pub fn alive(&self) -> bool {
        self.tmux()
            .args(["has-session", "-t", &self.name])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }
    /// Wait until every needle is on screen; panics with the screen after `secs`.
    pub fn wait_for(&self, needles: &[&str], secs: u64) -> String {
        let start = Instant::now();
        loop {
            let s = self.capture();
            if needles.iter().all(|n| s.contains(n)) {
                return s;
            }
            if start.elapsed() > Duration::from_secs(secs) {
                panic!("timed out waiting for {needles:?}; the screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").output();
    }
}

/// Whether tmux is installed. Without it a test prints a note and passes, unless ATTN_REQUIRE_TMUX=1 (then it fails).
pub fn tmux_ok() -> bool {
    let found = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var("ATTN_REQUIRE_TMUX").is_ok_and(|v| v == "1") {
            panic!("ATTN_REQUIRE_TMUX=1 but tmux is not installed (apt-get install -y tmux)");
        }
        eprintln!(
            "note: tmux is not installed; skipping a terminal test (ATTN_REQUIRE_TMUX=1 makes it fail)"
        );
    }
    found
}
