//! Issue 8 item 11: the explorer and signals, in a real terminal (tmux) under a job-control shell. SIGINT, SIGQUIT,
//! SIGTERM and SIGHUP leave the alternate screen and mouse reporting and exit with 128 + n; SIGTSTP gives the
//! terminal back to the shell, and `fg` brings the explorer back, redrawn and answering keys.
//!
//! Without tmux the test prints a note and passes, unless ATTN_REQUIRE_TMUX=1 (then it fails).

mod common;

use common::tmux::{Session, tmux_ok};
use std::time::{Duration, Instant};

/// What the signal test needs beyond the shared session: typing a shell line, waiting on the pane's modes, the
/// explorer's pid.
trait Shell {
    fn line(&self, text: &str);
    fn wait(&self, what: &str, ok: impl Fn(&str, &str, &str) -> bool) -> String;
    fn child_pid(&self) -> i32;
}

impl Shell for Session {
    fn line(&self, text: &str) {
        self.type_text(text);
        self.send(&["Enter"]);
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

fn kill(pid: i32, sig: i32) {
    // SAFETY: signalling the explorer this test started.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
}

#[test]
fn signals_give_the_terminal_back_and_ctrl_z_fg_resumes() {
    if !tmux_ok() {
        return;
    }
    let s = Session::start(
        "attn-sig",
        110,
        35,
        &["env", "PS1=$ ", "bash", "--norc", "--noprofile", "-i"],
    );
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
