//! The machine and revision a run measured, for the report.

use std::process::Command;

/// The hardware and software a run measured on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    pub cpu_model: String,
    pub cores: usize,
    pub memory_bytes: u64,
    pub kernel: String,
    pub rustc: String,
}

impl Machine {
    /// Reads /proc and asks `uname` and `rustc`; unknown values read
    /// "unknown".
    pub fn describe() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|line| line.starts_with("model name"))
            .and_then(|line| line.split_once(':'))
            .map_or_else(
                || "unknown".to_owned(),
                |(_, model)| model.trim().to_owned(),
            );
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_bytes = meminfo
            .lines()
            .find(|line| line.starts_with("MemTotal:"))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|kilobytes| kilobytes.parse::<u64>().ok())
            .map_or(0, |kilobytes| kilobytes * 1024);
        Self {
            cpu_model,
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            memory_bytes,
            kernel: command_output("uname", &["-sr"]),
            rustc: command_output("rustc", &["--version"]),
        }
    }
}

/// Reads the 1-, 5- and 15-minute load averages from /proc/loadavg, which
/// show whether other work shared the machine during a run.
pub fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let fields: Vec<&str> = text.split_whitespace().take(3).collect();
    (fields.len() == 3).then(|| fields.join(" "))
}

/// Returns the commit checked out at `repository`, with `-dirty` when the
/// work tree has changes.
pub fn git_commit(repository: &std::path::Path) -> String {
    let commit = Command::new("git")
        .arg("-C")
        .arg(repository)
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned());
    let Some(commit) = commit else {
        return "unknown".to_owned();
    };
    let dirty = Command::new("git")
        .arg("-C")
        .arg(repository)
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok()
        .is_some_and(|output| !output.stdout.is_empty());
    if dirty {
        format!("{commit}-dirty")
    } else {
        commit
    }
}

fn command_output(program: &str, arguments: &[&str]) -> String {
    Command::new(program)
        .args(arguments)
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map_or_else(
            || "unknown".to_owned(),
            |output| String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn machine_has_cores() {
        assert!(Machine::describe().cores >= 1);
    }
}
