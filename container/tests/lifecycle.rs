//! Tier 2/3: the OCI lifecycle verbs of the lean `vclab-container` binary
//! (create, start, state, kill, delete, list, run --detach) on real
//! namespaces and cgroups (needs root), on the lab rootfs and on a
//! `runc spec` bundle (terminal with a console socket, hooks, a bind mount).
//! The scenarios run in parallel threads, each with its own ids; the leak
//! check runs last, in the same test.

mod common;

use std::io::Read;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{busybox_rootfs, manifest_rootfs, need_root, show};

const BIN: &str = env!("CARGO_BIN_EXE_vclab-container");

type Check = Result<(), String>;

/// A named scenario.
type Scenario = (&'static str, fn(&Ctx) -> Check);

struct Ctx {
    prefix: String,
    rootfs: PathBuf,
    tmp: tempfile::TempDir,
}

impl Ctx {
    fn id(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

/// Runs a verb that does not start a container (its output is a pipe).
fn verb(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("spawn vclab-container")
}

/// Runs `create` or `run --detach`: the container inherits stdout and
/// stderr, so they go to files (a pipe would stay open while it runs).
/// Returns the launcher's status, and the paths of the two files.
fn detached(dir: &Path, name: &str, args: &[&str]) -> (Option<i32>, PathBuf, PathBuf) {
    let (out, err) = (
        dir.join(format!("{name}.out")),
        dir.join(format!("{name}.err")),
    );
    let status = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .status()
        .expect("spawn vclab-container");
    (status.code(), out, err)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

fn expect(cond: bool, what: &str, out: &Output) -> Check {
    if cond {
        Ok(())
    } else {
        Err(format!("{what}: {}", show(out)))
    }
}

fn status_of(id: &str) -> Result<serde_json::Value, String> {
    let out = verb(&["state", id]);
    if !out.status.success() {
        return Err(format!("state {id}: {}", show(&out)));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("state {id} is not JSON: {e}"))
}

/// Polls until `state ID` says `want` (or 10 s pass).
fn wait_status(id: &str, want: &str) -> Check {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let st = status_of(id)?;
        if st["status"] == want {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{id} never became {want}: {st}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One `vclab: ...` line on stderr naming `needle`, exit `code`.
fn one_line_error(out: &Output, code: i32, needle: &str, what: &str) -> Check {
    let err = String::from_utf8_lossy(&out.stderr);
    expect(
        out.status.code() == Some(code)
            && err.starts_with("vclab: ")
            && err.trim_end().lines().count() == 1
            && err.contains(needle),
        what,
        out,
    )
}

// ---- scenarios ----

/// create → created (pid alive, waiting) → start → running → kill → stopped
/// → delete → gone; the container's output went to create's stdout.
fn lifecycle_on_rootfs(c: &Ctx) -> Check {
    let id = c.id("life");
    let rootfs = c.rootfs.to_str().unwrap();
    let script = "echo started $$; exec sleep 30";
    let (code, out, err) = detached(
        c.tmp.path(),
        "life",
        &[
            "create", "--rootfs", rootfs, &id, "--", "/bin/sh", "-c", script,
        ],
    );
    if code != Some(0) {
        return Err(format!("create: {code:?} {}", read(&err)));
    }
    let st = status_of(&id)?;
    let pid = st["pid"].as_i64().unwrap_or(0);
    if st["status"] != "created" || pid <= 0 || st["ociVersion"].as_str().is_none() {
        return Err(format!("after create: {st}"));
    }
    if st["bundle"] != rootfs || !st["annotations"].is_object() {
        return Err(format!("bundle/annotations: {st}"));
    }
    if !read(&out).is_empty() {
        return Err("the program ran before start".into());
    }
    let o = verb(&["start", &id]);
    expect(o.status.success() && o.stdout.is_empty(), "start", &o)?;
    wait_status(&id, "running")?;
    let o = verb(&["start", &id]);
    one_line_error(&o, 1, "running", "second start refused")?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while read(&out).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if read(&out).trim() != "started 1" {
        return Err(format!("container output {:?}", read(&out)));
    }
    let o = verb(&["kill", &id, "KILL"]);
    expect(o.status.success(), "kill", &o)?;
    wait_status(&id, "stopped")?;
    let st = status_of(&id)?;
    if st["pid"] != 0 {
        return Err(format!("a stopped container has pid 0: {st}"));
    }
    let o = verb(&["kill", &id]);
    one_line_error(&o, 1, "not running", "kill of a stopped container")?;
    let o = verb(&["delete", &id]);
    expect(o.status.success(), "delete stopped", &o)?;
    let o = verb(&["state", &id]);
    one_line_error(&o, 1, "does not exist", "state after delete")?;
    let o = verb(&["delete", "--force", &id]);
    expect(o.status.success(), "delete --force of a missing id", &o)
}

/// A container whose program exits is `stopped`; delete of a running one is
/// refused without --force; a created one is deleted without (runc).
fn stopped_and_refused_delete(c: &Ctx) -> Check {
    let rootfs = c.rootfs.to_str().unwrap();
    let (short, long, fresh) = (c.id("short"), c.id("long"), c.id("fresh"));
    for (id, cmd) in [(&short, "true"), (&long, "sleep 30"), (&fresh, "true")] {
        let (code, _, err) = detached(
            c.tmp.path(),
            id,
            &[
                "create", "--rootfs", rootfs, "--id", id, "--", "/bin/sh", "-c", cmd,
            ],
        );
        if code != Some(0) {
            return Err(format!("create {id}: {}", read(&err)));
        }
    }
    for id in [&short, &long] {
        let o = verb(&["start", id]);
        expect(o.status.success(), "start", &o)?;
    }
    wait_status(&short, "stopped")?;
    wait_status(&long, "running")?;
    let o = verb(&["delete", &long]);
    one_line_error(&o, 1, "--force", "delete of a running container")?;
    if status_of(&long)?["status"] != "running" {
        return Err("a refused delete changed the container".into());
    }
    let o = verb(&["delete", "--force", &long]);
    expect(o.status.success(), "delete --force", &o)?;
    let o = verb(&["delete", &fresh]);
    expect(o.status.success(), "delete of a created container", &o)?;
    let o = verb(&["delete", &short]);
    expect(o.status.success(), "delete of a stopped container", &o)?;
    for id in [&short, &long, &fresh] {
        if Path::new("/run/vclab").join(id).exists() {
            return Err(format!("{id} left its state directory"));
        }
    }
    Ok(())
}

/// `run --detach` leaves no launcher; `list` shows the container (table and
/// JSON) and, once it exited, as stopped; delete removes it.
fn run_detach_and_list(c: &Ctx) -> Check {
    let id = c.id("det");
    let rootfs = c.rootfs.to_str().unwrap();
    let (code, out, err) = detached(
        c.tmp.path(),
        "det",
        &[
            "run",
            "--detach",
            "--json",
            "--id",
            &id,
            "--rootfs",
            rootfs,
            "--",
            "/bin/sh",
            "-c",
            "echo bye >&2; exec sleep 30",
        ],
    );
    if code != Some(0) {
        return Err(format!("run --detach: {code:?} {}", read(&err)));
    }
    let st: serde_json::Value =
        serde_json::from_str(read(&out).trim()).map_err(|e| format!("--json: {e}"))?;
    if st["status"] != "running" || st["id"] != id.as_str() {
        return Err(format!("run --detach --json: {st}"));
    }
    let o = verb(&["list"]);
    let table = String::from_utf8_lossy(&o.stdout).to_string();
    let row = table.lines().find(|l| l.starts_with(&format!("{id} ")));
    if !table.starts_with("ID ") || !row.is_some_and(|r| r.contains("running")) {
        return Err(format!("list table: {table}"));
    }
    let o = verb(&["kill", &id, "9"]);
    expect(o.status.success(), "kill 9", &o)?;
    wait_status(&id, "stopped")?;
    let o = verb(&["list", "--format", "json"]);
    let all: serde_json::Value =
        serde_json::from_slice(&o.stdout).map_err(|e| format!("list json: {e}"))?;
    let mine = all
        .as_array()
        .and_then(|a| a.iter().find(|s| s["id"] == id.as_str()).cloned())
        .ok_or(format!("{id} not in list --format json"))?;
    if mine["status"] != "stopped" {
        return Err(format!("exited detached container is stopped: {mine}"));
    }
    if read(&err).trim() != "bye" {
        return Err(format!("container stderr {:?}", read(&err)));
    }
    let o = verb(&["delete", &id]);
    expect(o.status.success(), "delete", &o)
}

/// A SIGKILLed attached launcher takes its container with it (also after
/// --user changed the credentials); `list` sweeps the dead launcher's state
/// directory and cgroups and does not show it.
fn killed_launcher_swept_by_list(c: &Ctx) -> Check {
    for (name, user) in [("pd", "0"), ("pdu", "1000:1000")] {
        let id = c.id(name);
        let mut child = Command::new(BIN)
            .args(["--id", &id, "--user", user, "--rootfs"])
            .arg(&c.rootfs)
            .args(["--", "sleep", "30"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        // The owner line of an attached run: launcher pid and start time,
        // then the container's.
        let record = Path::new("/run/vclab").join(&id).join("pid");
        let deadline = Instant::now() + Duration::from_secs(10);
        let pid = loop {
            let pid = std::fs::read_to_string(&record).ok().and_then(|t| {
                t.lines()
                    .next()?
                    .split_whitespace()
                    .nth(2)?
                    .parse::<i64>()
                    .ok()
            });
            if pid.is_some() || Instant::now() > deadline {
                break pid;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let Some(pid) = pid else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{id}: no container pid in the pid file"));
        };
        std::thread::sleep(Duration::from_millis(300));
        let o = verb(&["state", &id]);
        let st: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        if st["status"] != "running" || st["pid"] != pid {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("state of an attached run: {}", show(&o)));
        }
        let pid_file = std::fs::read_to_string(&record).unwrap_or_default();
        let cgroups: Vec<PathBuf> = pid_file.lines().skip(1).map(PathBuf::from).collect();
        child.kill().unwrap();
        child.wait().unwrap();
        // Dead: gone, or a zombie the host's init has not reaped yet.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|r| r.trim().chars().next());
            if matches!(state, None | Some('Z')) {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{id}: container {pid} outlived its launcher ({stat})"
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if !record.exists() || cgroups.is_empty() {
            return Err(format!("{id}: a SIGKILLed launcher leaves its state"));
        }
        let o = verb(&["list"]);
        expect(o.status.success(), "list", &o)?;
        if String::from_utf8_lossy(&o.stdout).contains(&id) {
            return Err(format!("{id}: list shows a dead launcher's container"));
        }
        let left: Vec<&PathBuf> = cgroups.iter().filter(|p| p.exists()).collect();
        if record.parent().is_some_and(|d| d.exists()) || !left.is_empty() {
            return Err(format!("{id}: list did not sweep (cgroups left {left:?})"));
        }
    }
    Ok(())
}

/// `-v HOST:CTR` is visible and writable, `:ro` read-only; nothing of it on
/// the host.
fn volumes(c: &Ctx) -> Check {
    let src = c.tmp.path().join("vol");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), "host data\n").unwrap();
    let file = c.tmp.path().join("single");
    std::fs::write(&file, "one file\n").unwrap();
    let ro = format!("{}:/ro:ro", src.display());
    let rw = format!("{}:/mnt/rw", src.display());
    let one = format!("{}:/etc/single:ro", file.display());
    let out = verb(&[
        "--id",
        &c.id("vol"),
        "-v",
        &ro,
        "-v",
        &rw,
        "--volume",
        &one,
        "--rootfs",
        c.rootfs.to_str().unwrap(),
        "--",
        "/bin/sh",
        "-c",
        "cat /ro/f /etc/single; echo x > /ro/new 2>/dev/null && echo ro-writable; \
         echo y > /mnt/rw/new && echo rw-ok",
    ]);
    let body = String::from_utf8_lossy(&out.stdout);
    expect(
        out.status.success() && body == "host data\none file\nrw-ok\n",
        "volumes visible, :ro read-only",
        &out,
    )?;
    if read(&src.join("new")) != "y\n" {
        return Err("write through -v did not reach the host".into());
    }
    let out = verb(&[
        "-v",
        "/nonexistent/vclab-src:/x",
        "--rootfs",
        c.rootfs.to_str().unwrap(),
        "--",
        "true",
    ]);
    one_line_error(&out, 1, "/nonexistent/vclab-src", "missing -v source")?;
    let out = verb(&[
        "-v",
        "/tmp:data",
        "--rootfs",
        c.rootfs.to_str().unwrap(),
        "--",
        "true",
    ]);
    one_line_error(&out, 1, "-v", "relative -v destination")
}

/// A `runc spec` bundle (terminal: true, its default) with a bind mount and
/// hooks: create with a console socket (a small receiver here gets the pty
/// master by SCM_RIGHTS), start, the output read from the pty; the hooks
/// ran in order with the state on stdin; delete. Then an attached run of the
/// same bundle relays the pty to stdout.
fn runc_spec_bundle(c: &Ctx) -> Check {
    let dir = c.tmp.path().join("bundle");
    std::fs::create_dir_all(dir.join("rootfs")).unwrap();
    let cp = Command::new("cp")
        .arg("-a")
        .arg(c.rootfs.join("."))
        .arg(dir.join("rootfs"))
        .status()
        .unwrap();
    let spec = Command::new("runc")
        .arg("spec")
        .current_dir(&dir)
        .status()
        .map_err(|e| format!("runc spec: {e} (apt-get install runc)"))?;
    if !cp.success() || !spec.success() {
        return Err("cp -a rootfs / runc spec failed".into());
    }
    let share = c.tmp.path().join("share");
    std::fs::create_dir_all(&share).unwrap();
    std::fs::write(share.join("hello"), "from the host\n").unwrap();
    let log = c.tmp.path().join("hooks.log");
    let hook = |name: &str| {
        serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c",
            format!("read -r state; echo \"{name} $state\" >> {}", log.display())],
            "timeout": 5})
    };
    let path = dir.join("config.json");
    let mut v: serde_json::Value = serde_json::from_str(&read(&path)).unwrap();
    if v["process"]["terminal"] != true {
        return Err("runc spec's default bundle asks for a terminal".into());
    }
    v["process"]["args"] = serde_json::json!(["/bin/sh", "-c", "tty; cat /share/hello"]);
    v["mounts"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"destination": "/share", "type": "bind",
            "source": share, "options": ["rbind", "ro"]}));
    v["hooks"] = serde_json::json!({
        "createRuntime": [hook("createRuntime")],
        "poststart": [hook("poststart")],
        "poststop": [hook("poststop")],
    });
    v["annotations"] = serde_json::json!({"lab": "vclab"});
    std::fs::write(&path, v.to_string()).unwrap();

    let sock = c.tmp.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let receiver = std::thread::spawn(move || -> Result<String, String> {
        let (conn, _) = listener.accept().map_err(|e| e.to_string())?;
        let master =
            vclab_container::console::receive_fd(conn.as_fd()).map_err(|e| e.to_string())?;
        let mut f = std::fs::File::from(master);
        let mut out = Vec::new();
        // EIO ends it: every slave closed, the container is gone.
        let _ = f.read_to_end(&mut out);
        Ok(String::from_utf8_lossy(&out).into_owned())
    });
    let id = c.id("runc");
    let (code, _, err) = detached(
        c.tmp.path(),
        "runc",
        &[
            "create",
            "--bundle",
            dir.to_str().unwrap(),
            "--console-socket",
            sock.to_str().unwrap(),
            &id,
        ],
    );
    if code != Some(0) {
        return Err(format!("create --console-socket: {code:?} {}", read(&err)));
    }
    let st = status_of(&id)?;
    if st["status"] != "created" || st["annotations"]["lab"] != "vclab" {
        return Err(format!("state after create: {st}"));
    }
    let o = verb(&["start", &id]);
    expect(o.status.success(), "start", &o)?;
    wait_status(&id, "stopped")?;
    let o = verb(&["delete", &id]);
    expect(o.status.success(), "delete", &o)?;
    let pty = receiver.join().map_err(|_| "receiver panicked")??;
    if pty != "/dev/pts/0\r\nfrom the host\r\n" {
        return Err(format!("pty output {pty:?}"));
    }
    let lines: Vec<String> = read(&log).lines().map(str::to_string).collect();
    let kinds: Vec<&str> = lines
        .iter()
        .map(|l| l.split(' ').next().unwrap_or(""))
        .collect();
    if kinds != ["createRuntime", "poststart", "poststop"] {
        return Err(format!("hooks ran as {lines:?}"));
    }
    for (line, status) in lines.iter().zip(["creating", "running", "stopped"]) {
        let json = line.split_once(' ').map(|x| x.1).unwrap_or("");
        let st: serde_json::Value =
            serde_json::from_str(json).map_err(|e| format!("hook stdin {json:?}: {e}"))?;
        if st["status"] != status
            || st["id"] != id.as_str()
            || st["bundle"] != dir.to_str().unwrap()
        {
            return Err(format!("hook saw {st}, want {status}"));
        }
    }
    // Attached: the pty relayed to stdout, the report last.
    let out = verb(&[
        "--json",
        "--id",
        &c.id("runc-att"),
        "--bundle",
        dir.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    expect(
        out.status.success()
            && text.starts_with("/dev/pts/0\r\nfrom the host\r\n")
            && text
                .lines()
                .last()
                .is_some_and(|l| l.starts_with("{\"id\"")),
        "attached terminal relayed",
        &out,
    )?;
    // Detached without a console socket: refused, as runc.
    let (code, _, err) = detached(
        c.tmp.path(),
        "runc-nosock",
        &["create", "--bundle", dir.to_str().unwrap(), &c.id("nosock")],
    );
    if code != Some(1) || !read(&err).contains("--console-socket") {
        return Err(format!(
            "create of a terminal bundle without socket: {code:?} {}",
            read(&err)
        ));
    }
    Ok(())
}

/// A failing createRuntime hook fails the create (125, one line) and leaves
/// nothing; poststop still runs.
fn failing_hook_cleans_up(c: &Ctx) -> Check {
    let dir = c.tmp.path().join("hookfail");
    std::fs::create_dir_all(&dir).unwrap();
    let mark = c.tmp.path().join("hookfail.poststop");
    let spec = serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {"terminal": false, "user": {"uid": 0, "gid": 0}, "args": ["true"], "cwd": "/"},
        "root": {"path": c.rootfs},
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]},
        "hooks": {
            "createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "echo nope >&2; exit 3"]}],
            "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", format!("touch {}", mark.display())]}]
        }
    });
    std::fs::write(dir.join("config.json"), spec.to_string()).unwrap();
    let id = c.id("hookfail");
    let (code, _, err) = detached(
        c.tmp.path(),
        "hookfail",
        &["create", "--bundle", dir.to_str().unwrap(), &id],
    );
    let err = read(&err);
    let vclab_lines: Vec<&str> = err.lines().filter(|l| l.starts_with("vclab: ")).collect();
    if code != Some(125) || vclab_lines.len() != 1 || !vclab_lines[0].contains("createRuntime") {
        return Err(format!("failing createRuntime hook: {code:?} {err:?}"));
    }
    if !mark.exists() {
        return Err("poststop did not run after the failed create".into());
    }
    let left = common::leftovers(&id);
    if !left.is_empty() {
        return Err(format!("failed create left {left:?}"));
    }
    Ok(())
}

/// A stop signal that reaches `create` during its set-up (here from a
/// createRuntime hook, so it lands while the container is being made) ends
/// the create with 128 + the signal and one line, and nothing is kept.
fn interrupted_create_cleans_up(c: &Ctx) -> Check {
    let dir = c.tmp.path().join("hookint");
    std::fs::create_dir_all(&dir).unwrap();
    let spec = serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {"terminal": false, "user": {"uid": 0, "gid": 0}, "args": ["sleep", "30"], "cwd": "/"},
        "root": {"path": c.rootfs},
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]},
        "hooks": {
            "createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "kill -INT $PPID"]}]
        }
    });
    std::fs::write(dir.join("config.json"), spec.to_string()).unwrap();
    let id = c.id("hookint");
    let (code, _, err) = detached(
        c.tmp.path(),
        "hookint",
        &["create", "--bundle", dir.to_str().unwrap(), &id],
    );
    let err = read(&err);
    let vclab_lines: Vec<&str> = err.lines().filter(|l| l.starts_with("vclab: ")).collect();
    let left = common::leftovers(&id);
    if !left.is_empty() {
        let _ = verb(&["delete", "--force", &id]);
    }
    if code != Some(130) || vclab_lines.len() != 1 || !vclab_lines[0].contains("interrupted") {
        return Err(format!("create interrupted by SIGINT: {code:?} {err:?}"));
    }
    if !left.is_empty() {
        return Err(format!("interrupted create left {left:?}"));
    }
    Ok(())
}

/// Bad verb input: one line, exit 1, nothing made.
fn bad_verb_input(c: &Ctx) -> Check {
    one_line_error(&verb(&["start"]), 1, "container id", "start without id")?;
    one_line_error(
        &verb(&["state", &c.id("none")]),
        1,
        "does not exist",
        "state of nothing",
    )?;
    one_line_error(
        &verb(&["kill", &c.id("none"), "NOPE"]),
        1,
        "NOPE",
        "bad signal",
    )?;
    one_line_error(&verb(&["delete", "a", "b"]), 1, "\"b\"", "extra argument")?;
    one_line_error(&verb(&["list", "--format", "xml"]), 1, "xml", "bad format")?;
    let rootfs = c.rootfs.to_str().unwrap();
    let (code, _, err) = detached(
        c.tmp.path(),
        "nf",
        &[
            "create",
            "--rootfs",
            rootfs,
            &c.id("nf"),
            "--",
            "no-such-cmd-xyz",
        ],
    );
    if code != Some(127) || !read(&err).contains("no-such-cmd-xyz") {
        return Err(format!(
            "create of a missing command: {code:?} {}",
            read(&err)
        ));
    }
    let (code, _, err) = detached(
        c.tmp.path(),
        "twice",
        &["create", "--id", "a", "--rootfs", rootfs, "b", "--", "true"],
    );
    if code != Some(1) || !read(&err).contains("once") {
        return Err(format!("id given twice: {code:?} {}", read(&err)));
    }
    Ok(())
}

#[test]
fn lifecycle_suite() {
    need_root();
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = manifest_rootfs().unwrap_or_else(|| busybox_rootfs(tmp.path()));
    let c = Ctx {
        prefix: format!("lc{}-", std::process::id()),
        rootfs,
        tmp,
    };
    let scenarios: [Scenario; 9] = [
        ("lifecycle_on_rootfs", lifecycle_on_rootfs),
        ("stopped_and_refused_delete", stopped_and_refused_delete),
        ("run_detach_and_list", run_detach_and_list),
        (
            "killed_launcher_swept_by_list",
            killed_launcher_swept_by_list,
        ),
        ("volumes", volumes),
        ("runc_spec_bundle", runc_spec_bundle),
        ("failing_hook_cleans_up", failing_hook_cleans_up),
        ("interrupted_create_cleans_up", interrupted_create_cleans_up),
        ("bad_verb_input", bad_verb_input),
    ];
    let mut failures = Vec::new();
    std::thread::scope(|s| {
        let handles: Vec<_> = scenarios
            .iter()
            .map(|(name, f)| (name, s.spawn(|| f(&c))))
            .collect();
        for (name, h) in handles {
            match h.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failures.push(format!("{name}: {e}")),
                Err(_) => failures.push(format!("{name}: panicked")),
            }
        }
    });
    let left = common::leftovers(&c.prefix);
    if !left.is_empty() {
        failures.push(format!("leak check: left behind {left:?}"));
    }
    assert!(
        failures.is_empty(),
        "failed scenarios:\n{}",
        failures.join("\n")
    );
}
