//! Issue 8 item 11: the explorer and signals, in a real terminal (tmux) under a job-control shell. SIGINT, SIGQUIT,
//! SIGTERM and SIGHUP leave the alternate screen and mouse reporting and exit with 128 + n; SIGTSTP gives the
//! terminal back to the shell, and `fg` brings the explorer back, redrawn and answering keys.
//!
//! Without tmux the test prints a note and passes, unless ATTN_REQUIRE_TMUX=1 (then it fails).

use std::process::Command;
use std::time::{Duration, Instant};

struct Session {
    name: String,
}

impl Session {
    fn tmux(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.name]);
        c
    }
    fn start() -> Session {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("attn-sig-{}-{nanos}", std::process::id());
        let ok = Command::new("tmux")
            .args([
                "-L",
                &name,
                "new-session",
                "-d",
                "-s",
                &name,
                "-x",
                "110",
                "-y",
                "35",
            ])
            .args(["env", "PS1=$ ", "bash", "--norc", "--noprofile", "-i"])
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux new-session failed");
        Session { name }
    }
    fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.name];
        args.extend(keys);
        assert!(self.tmux().args(&args).status().unwrap().success());
    }
    fn line(&self, text: &str) {
        assert!(
            self.tmux()
                .args(["send-keys", "-t", &self.name, "-l", text])
                .status()
                .unwrap()
                .success()
        );
        self.send(&["Enter"]);
    }
    fn format(&self, f: &str) -> String {
        let o = self
            .tmux()
            .args(["display-message", "-p", "-t", &self.name, f])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }
    fn capture(&self) -> String {
        let o = self
            .tmux()
            .args(["capture-pane", "-p", "-t", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
    /// Wait until `ok(screen, alternate_on, mouse_any_flag)`; panics with the screen after 30 s.
    fn wait(&self, what: &str, ok: impl Fn(&str, &str, &str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.capture();
            let (alt, mouse) = (
                self.format("#{alternate_on}"),
                self.format("#{mouse_any_flag}"),
            );
            if ok(&s, &alt, &mouse) {
                return s;
            }
            if start.elapsed() > Duration::from_secs(30) {
                panic!(
                    "timed out waiting for {what} (alternate_on={alt}, mouse={mouse}); the screen:\n{s}"
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    /// The pid of the shell's child (the explorer).
    fn child_pid(&self) -> i32 {
        let shell = self.format("#{pane_pid}");
        let start = Instant::now();
        loop {
            let kids = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
                .unwrap_or_default();
            if let Some(p) = kids.split_whitespace().next() {
                return p.parse().unwrap();
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no child of the shell"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").output();
    }
}

fn tmux_ok() -> bool {
    let found = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var("ATTN_REQUIRE_TMUX").is_ok_and(|v| v == "1") {
            panic!("ATTN_REQUIRE_TMUX=1 but tmux is not installed (apt-get install -y tmux)");
        }
        eprintln!("note: tmux is not installed; skipping the signal test");
    }
    found
}

fn kill(pid: i32, sig: i32) {
    // SAFETY: signalling the explorer this test started.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
}

#[test]
fn signals_give_the_terminal_back_and_ctrl_z_fg_resumes() {
    if !tmux_ok() {
        return;
    }
    let s = Session::start();
    s.wait("the shell", |scr, _, _| scr.contains('$'));
    let run = format!(
        "ATTN_MODELS_DIR=/nonexistent {} --model textbook --layers 2 --heads 4 --d-model 32; echo EXIT=$?",
        env!("CARGO_BIN_EXE_attn")
    );
    let explorer_up = |s: &Session, what: &str| {
        s.wait(what, |scr, alt, mouse| {
            scr.contains("Layer 0 of 0–1 · Head 0 of 0–3") && alt == "1" && mouse == "1"
        })
    };

    // SIGTSTP, then fg: back in the shell with the terminal restored; then redrawn and answering keys.
    s.line(run.split(';').next().unwrap());
    explorer_up(&s, "the explorer");
    let pid = s.child_pid();
    kill(pid, libc::SIGTSTP);
    s.wait("the shell after SIGTSTP", |scr, alt, mouse| {
        scr.contains("Stopped") && alt == "0" && mouse == "0"
    });
    // `fg` reports the job's exit status when it ends.
    s.line("fg; echo EXIT=$?");
    explorer_up(&s, "the explorer after fg");
    s.send(&["Tab", "Right"]);
    s.wait("a key after fg", |scr, _, _| scr.contains("Head 1 of 0–3"));

    // Each quitting signal: terminal restored, exit status 128 + n.
    for (i, (sig, code)) in [
        (libc::SIGINT, 130),
        (libc::SIGQUIT, 131),
        (libc::SIGTERM, 143),
        (libc::SIGHUP, 129),
    ]
    .into_iter()
    .enumerate()
    {
        if i > 0 {
            s.line("clear");
            s.line(&run);
            explorer_up(&s, "the explorer");
        }
        let pid = s.child_pid();
        kill(pid, sig);
        let want = format!("EXIT={code}");
        s.wait(&want, |scr, alt, mouse| {
            scr.contains(&want) && alt == "0" && mouse == "0"
        });
    }
}
