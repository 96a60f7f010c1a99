//! Tier 3: runc's two container-escape CVEs as regressions against the real
//! `vclab-container` binary, on the lab rootfs with busybox (needs root).
//!
//! - CVE-2019-5736: a process in one container takes an O_PATH descriptor of
//!   `/proc/1/exe` (an `--init` PID 1, which runs the launcher's binary for
//!   the container's whole life) and hands it to a process in a second,
//!   detached container; once no launcher runs, that process reopens it for
//!   writing and overwrites it. And a `#!/proc/self/exe` script as the
//!   command runs the launcher's binary inside the container. The host
//!   binary (a copy, so a failure does not damage the build) keeps its
//!   sha256 and the write fails.
//! - CVE-2024-21626: the launcher is started with descriptors 3–10 open on
//!   host directories (not close-on-exec); none reaches the container (the
//!   fd tables of PID 1, of a child and of an `--init` PID 1), and a working
//!   directory `/proc/self/fd/N` cannot reach the host.

mod common;
#[path = "fixtures/probe_build.rs"]
mod probe_build;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{assert_nothing_left, busybox_rootfs, manifest_rootfs, need_root, show};

const BIN: &str = env!("CARGO_BIN_EXE_vclab-container");

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Deletes a created container when dropped (also when an assertion fails).
struct Delete(String);

impl Drop for Delete {
    fn drop(&mut self) {
        let _ = Command::new(BIN)
            .args(["delete", "--force", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while !ready() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn cve_2019_5736_the_launcher_binary_cannot_be_overwritten() {
    need_root();
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = manifest_rootfs().unwrap_or_else(|| busybox_rootfs(tmp.path()));
    let rootfs = rootfs.to_str().unwrap();
    let probe_dir = tmp.path().join("probe");
    let share = tmp.path().join("share");
    let bin_dir = tmp.path().join("bin");
    for d in [&probe_dir, &share, &bin_dir] {
        std::fs::create_dir(d).unwrap();
    }
    std::fs::set_permissions(&share, std::fs::Permissions::from_mode(0o777)).unwrap();
    probe_build::build_probe(&probe_dir);
    let launcher = bin_dir.join("vclab-container");
    std::fs::copy(BIN, &launcher).unwrap();
    let before = sha256(&launcher);
    assert_eq!(before.len(), 64);

    let prefix = format!("cve1-{}-", std::process::id());
    let (recv_id, send_id, script_id) = (
        format!("{prefix}recv"),
        format!("{prefix}send"),
        format!("{prefix}script"),
    );
    let vols = [
        "-v".to_string(),
        format!("{}:/share", share.display()),
        "-v".to_string(),
        format!("{}:/probe:ro", probe_dir.display()),
    ];
    // The receiver: detached, so no launcher process stays for it.
    let receiver = Delete(recv_id.clone());
    let out = Command::new(&launcher)
        .args(["create", "--id", &recv_id])
        .args(&vols)
        .args(["--rootfs", rootfs, "--"])
        .args(["/probe/probe", "exe-recv", "/share/sock", "5", "/share/out"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(out.success(), "create the receiver");
    let started = Command::new(&launcher)
        .args(["start", &recv_id])
        .status()
        .unwrap();
    assert!(started.success(), "start the receiver");
    wait_for("the receiver's socket", Duration::from_secs(10), || {
        share.join("sock").exists()
    });

    // The sender: --init, so PID 1 runs the launcher's binary.
    let sent = Command::new(&launcher)
        .args(["--id", &send_id, "--init"])
        .args(&vols)
        .args(["--rootfs", rootfs, "--"])
        .args(["/probe/probe", "exe-send", "/share/sock"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&sent.stdout).into_owned();
    assert!(sent.status.success(), "{}", show(&sent));
    assert!(
        text.contains("open ok"),
        "the probe got /proc/1/exe: {}",
        show(&sent)
    );
    assert!(
        text.contains("reopen err"),
        "writable from the container: {}",
        show(&sent)
    );
    assert!(text.contains("send ok"), "{}", show(&sent));

    // No launcher runs now; the receiver tries for up to 5 s.
    let out_file = share.join("out");
    wait_for("the receiver's verdict", Duration::from_secs(15), || {
        std::fs::read_to_string(&out_file).is_ok_and(|t| t.contains("write"))
    });
    let verdict = std::fs::read_to_string(&out_file).unwrap();
    drop(receiver);
    assert!(
        verdict.contains("recv ok") && verdict.contains("write err 30"),
        "want EROFS (30) on the write: {verdict}"
    );
    assert_eq!(sha256(&launcher), before, "the host binary changed");

    // A `#!/proc/self/exe` script as the command runs the launcher's binary
    // inside the container.
    let script = share.join("exe.sh");
    std::fs::write(&script, "#!/proc/self/exe --version\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let ran = Command::new(&launcher)
        .args(["--id", &script_id])
        .args(&vols)
        .args(["--rootfs", rootfs, "--", "/share/exe.sh"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    // Protected, the launcher's binary is on a detached mount that a path
    // lookup in the container does not reach: the script's interpreter is
    // not found (127). Unprotected, the script runs the binary (it prints
    // its version).
    let ran_text = String::from_utf8_lossy(&ran.stdout);
    assert!(
        ran.status.code() == Some(127) || ran_text.contains("vclab-container"),
        "the script: {}",
        show(&ran)
    );
    assert_eq!(sha256(&launcher), before, "the host binary changed");
    assert_nothing_left(&prefix);
}

/// Runs the launcher with descriptors 3..=10 open (not close-on-exec) on
/// host directories, `host` among them.
fn launch_with_host_fds(host: &Path, args: &[&str]) -> Output {
    let d = host.display();
    let opens = format!(
        "exec 3<'{d}' 4</ 5</etc 6</sys/fs/cgroup 7</proc 8<'{d}' 9<'{d}' 10<'{d}'; exec \"$@\""
    );
    Command::new("bash")
        .args(["-c", &opens, "bash", BIN])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("bash")
}

/// `ls -l` lines of a /proc/PID/fd listing: (fd, target).
fn fd_table(text: &str, section: &str) -> Vec<(u32, String)> {
    let body = text
        .split(&format!("== {section}\n"))
        .nth(1)
        .unwrap_or("")
        .split("== ")
        .next()
        .unwrap_or("");
    body.lines()
        .filter_map(|l| {
            let (left, target) = l.split_once(" -> ")?;
            let fd = left.split_whitespace().last()?.parse().ok()?;
            Some((fd, target.to_string()))
        })
        .collect()
}

#[test]
fn cve_2024_21626_no_host_descriptor_reaches_the_container() {
    need_root();
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = manifest_rootfs().unwrap_or_else(|| busybox_rootfs(tmp.path()));
    let rootfs = rootfs.to_str().unwrap();
    let host = tmp.path().join("host-dir");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("HOST-MARKER"), "host").unwrap();
    let prefix = format!("cve2-{}-", std::process::id());

    // The fd tables of PID 1 and of a child; then of an --init PID 1.
    let script =
        "echo '== pid1'; ls -l /proc/1/fd; sleep 1 & echo '== child'; ls -l /proc/$!/fd; wait";
    let out = launch_with_host_fds(
        &host,
        &[
            "--id",
            &format!("{prefix}plain"),
            "--rootfs",
            rootfs,
            "--",
            "/bin/sh",
            "-c",
            script,
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    for section in ["pid1", "child"] {
        let table = fd_table(&text, section);
        let fds: Vec<u32> = table.iter().map(|(fd, _)| *fd).collect();
        assert_eq!(fds, [0, 1, 2], "{section}: {table:?}\n{text}");
    }
    let out = launch_with_host_fds(
        &host,
        &[
            "--id",
            &format!("{prefix}init"),
            "--init",
            "--rootfs",
            rootfs,
            "--",
            "/bin/sh",
            "-c",
            "echo '== init'; ls -l /proc/1/fd",
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let table = fd_table(&text, "init");
    assert!(table.len() >= 3, "{text}");
    for (fd, target) in &table {
        // 0-2, and the attached init's status pipe to the launcher.
        assert!(
            *fd <= 2 || target.starts_with("pipe:["),
            "the init holds {fd} -> {target}: {text}"
        );
        assert!(
            !target.starts_with('/') || target.starts_with("/dev/"),
            "{fd} -> {target}"
        );
    }

    // cwd through a descriptor: refused, never the host directory.
    for n in 3..=10 {
        let cwd = format!("/proc/self/fd/{n}");
        let out = launch_with_host_fds(
            &host,
            &[
                "--id",
                &format!("{prefix}cwd{n}"),
                "-w",
                &cwd,
                "--rootfs",
                rootfs,
                "--",
                "/bin/sh",
                "-c",
                "pwd; ls",
            ],
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            !text.contains("HOST-MARKER"),
            "cwd {cwd} reached the host: {}",
            show(&out)
        );
        assert!(
            !out.status.success(),
            "cwd {cwd} was accepted: {}",
            show(&out)
        );
    }
    assert_nothing_left(&prefix);
}
