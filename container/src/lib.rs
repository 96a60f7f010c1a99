//! The vclab container launcher: a daemonless runtime that starts a process
//! in new namespaces (PID, mount, UTS, IPC, network, cgroup) on an overlay of
//! the shared rootfs, with cgroup v1, v2 or hybrid resource limits and
//! accounting, and OCI bundle support.
//!
//! [`run`] is the recipe: seccomp filter compiled ([`seccomp`]) → sweep
//! stale state → state directory → cgroup →
//! mount plan → [`process::clone_child`] (clone — into the cgroup on v2) →
//! state record, createRuntime hooks → [`process::Child::start`] (cgroup
//! migration, mounts, exec) → poststart hooks → wait → usage from the cgroup
//! → clean-up → poststop hooks. [`run_on`] is the same with the cgroup
//! hierarchies given explicitly. [`create`] is the same recipe up to the
//! exec, where the container's process waits on its `exec.fifo` and the
//! launcher exits; [`lifecycle`] has the other OCI verbs (start, state, kill,
//! delete, list). [`cli`] is the command line of the `vclab-container`
//! binary and of `vclab container ...`, which re-executes itself from a
//! binary the container cannot write before it starts one ([`reexec`],
//! CVE-2019-5736).
#![deny(missing_docs)]

pub mod caps;
pub mod cgroups;
pub mod cli;
pub mod console;
pub mod hooks;
pub mod lifecycle;
pub mod namespaces;
pub mod net;
pub mod process;
pub mod reexec;
pub mod rootfs;
pub mod seccomp;
pub mod size;
pub mod spec;
pub mod state;

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use caps::CapSet;
use cgroups::{Cgroup, CgroupMode, Limits};
use namespaces::Namespace;

/// Errors of a container run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is unusable.
    #[error("invalid container configuration: {0}")]
    Config(String),
    /// The rootfs directory does not exist.
    #[error("rootfs {0} is not a directory: build it (scripts/guest-images.sh) or pass an existing --rootfs")]
    RootfsMissing(PathBuf),
    /// A size or CPU count could not be parsed.
    #[error(transparent)]
    Size(#[from] size::Error),
    /// The OCI bundle could not be used.
    #[error(transparent)]
    Spec(#[from] spec::Error),
    /// The state directory failed.
    #[error(transparent)]
    State(#[from] state::Error),
    /// The cgroup failed.
    #[error(transparent)]
    Cgroup(#[from] cgroups::Error),
    /// The mount plan could not be built.
    #[error(transparent)]
    Rootfs(#[from] rootfs::Error),
    /// Starting or waiting for the container failed.
    #[error(transparent)]
    Process(#[from] process::Error),
    /// A createRuntime hook failed.
    #[error(transparent)]
    Hook(#[from] hooks::Error),
    /// The pty could not be set up.
    #[error(transparent)]
    Console(#[from] console::Error),
    /// Bad input found before anything was made (exit code 1).
    #[error("{0}")]
    Input(String),
    /// The seccomp profile is unusable (exit code 1, nothing made yet).
    #[error(transparent)]
    Seccomp(#[from] seccomp::Error),
    /// `create` got a stop signal before it ended: what it made is removed
    /// (exit code 128 + the signal).
    #[error("interrupted by {0} while the container was being created: nothing was kept")]
    Interrupted(nix::sys::signal::Signal),
}

impl Error {
    /// The exit code a CLI should use: 127 for a command missing from the
    /// container, 126 for one that cannot run, 125 for launcher errors (as
    /// Docker).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Process(process::Error::NotFound(_)) => 127,
            Error::Process(process::Error::NotExecutable(_)) => 126,
            Error::Seccomp(seccomp::Error::Compile { .. }) => 125,
            Error::Input(_) | Error::State(state::Error::Exists(_)) | Error::Seccomp(_) => 1,
            Error::Interrupted(sig) => 128 + *sig as i32,
            _ => 125,
        }
    }
}

/// PATH when the configuration sets none (Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What to run and how.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ContainerConfig {
    /// Container id (state directory and cgroup name); generated if `None`.
    pub id: Option<String>,
    /// The image directory (read-only lower layer).
    pub rootfs: PathBuf,
    /// Command and arguments.
    pub args: Vec<String>,
    /// Environment (`KEY=VAL`); PATH and HOME are added when missing.
    pub env: Vec<String>,
    /// Working directory inside the container.
    pub cwd: String,
    /// Host name (default: the id's first 12 characters).
    pub hostname: Option<String>,
    /// User id inside the container.
    pub uid: u32,
    /// Group id inside the container.
    pub gid: u32,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
    /// Mount `/` read-only.
    pub read_only: bool,
    /// Run a reaping init as PID 1 (Docker's `--init`).
    pub init: bool,
    /// cgroup limits.
    pub limits: Limits,
    /// Capabilities kept (bounding, permitted, effective for root).
    pub capabilities: CapSet,
    /// Namespaces to create.
    pub namespaces: Vec<Namespace>,
    /// Paths hidden from the container.
    pub masked_paths: Vec<String>,
    /// Paths made read-only.
    pub readonly_paths: Vec<String>,
    /// Set no_new_privs.
    pub no_new_privileges: bool,
    /// Rootless mode (user namespace; the default when not root).
    pub rootless: bool,
    /// The user's mounts (bundle `mounts` of type bind or tmpfs, `-v`).
    #[serde(default)]
    pub mounts: Vec<rootfs::UserMount>,
    /// The bundle's hooks.
    #[serde(default)]
    pub hooks: hooks::Hooks,
    /// `process.terminal`: stdio on a pty.
    #[serde(default)]
    pub terminal: bool,
    /// `--console-socket`: where the pty master is sent (runc's protocol).
    #[serde(default)]
    pub console_socket: Option<PathBuf>,
    /// The bundle directory (the OCI state's `bundle`; else the rootfs).
    #[serde(default)]
    pub bundle: Option<PathBuf>,
    /// The bundle's annotations.
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
    /// The seccomp filter: Docker's default profile (the default), none, or
    /// a profile (`--seccomp FILE`, a bundle's `linux.seccomp`).
    #[serde(default)]
    pub seccomp: seccomp::Policy,
    /// Explicit overlay layers (an image build's `RUN`): lowers and a kept
    /// upper directory instead of `rootfs` and the per-run layer.
    #[serde(default)]
    pub layers: Option<rootfs::Layers>,
}

impl ContainerConfig {
    /// Docker-like defaults for running `args` on `rootfs`.
    pub fn new(rootfs: impl Into<PathBuf>, args: Vec<String>) -> Self {
        ContainerConfig {
            id: None,
            rootfs: rootfs.into(),
            args,
            env: Vec::new(),
            cwd: "/".into(),
            hostname: None,
            uid: 0,
            gid: 0,
            additional_gids: Vec::new(),
            read_only: false,
            init: false,
            limits: Limits {
                cpu_period_us: size::CPU_PERIOD_US,
                ..Limits::default()
            },
            capabilities: CapSet::lab_default(),
            namespaces: namespaces::DEFAULT.to_vec(),
            masked_paths: rootfs::MASKED_PATHS.iter().map(|s| s.to_string()).collect(),
            readonly_paths: rootfs::READONLY_PATHS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            no_new_privileges: true,
            rootless: !nix::unistd::geteuid().is_root(),
            mounts: Vec::new(),
            hooks: hooks::Hooks::default(),
            terminal: false,
            console_socket: None,
            bundle: None,
            annotations: Default::default(),
            seccomp: seccomp::Policy::Default,
            layers: None,
        }
    }
}

/// The outcome of a run, printed by `--json` as the last stdout line (its
/// fields are documented in `vclab-contract`, which the harness reads it with).
pub use vclab_contract::RunReport;

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn new_id() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The launcher's peak RSS (VmHWM) in KiB.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Removes the state directory and cgroup when dropped, unless disarmed
/// (a created container keeps them until `delete`); then runs the poststop
/// hooks of a container that got as far as its record.
struct Cleanup<'a> {
    state: &'a state::State,
    cgroup: Option<Cgroup>,
    armed: bool,
    poststop: Option<(Vec<hooks::Hook>, state::OciState)>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(cg) = self.cgroup.take() {
            if let Err(e) = cg.remove() {
                log::warn!("{e}");
            }
        }
        self.state.remove();
        if let Some((list, mut st)) = self.poststop.take() {
            st.status = state::ContainerStatus::Stopped;
            st.pid = 0;
            hooks::run_warn("poststop", &list, &st);
        }
    }
}

/// Runs one container to completion and reports how it went. Everything it
/// created (state directory, cgroup, mounts in the container's namespace) is
/// gone when it returns, also on error. The cgroup hierarchies are the
/// host's ([`cgroups::Host::detect`]).
pub fn run(cfg: &ContainerConfig) -> Result<RunReport, Error> {
    run_on(cfg, &cgroups::Host::detect())
}

/// [`run`] with the cgroup hierarchies given: `host` says which writer (v1 or
/// v2) makes the container's cgroup and where the unified hierarchy is. The
/// tier-2 tests use it to drive the v2 path (`CLONE_INTO_CGROUP`) on the
/// cgroup2 mount of a hybrid host.
pub fn run_on(cfg: &ContainerConfig, host: &cgroups::Host) -> Result<RunReport, Error> {
    match launch(cfg, host, false)? {
        Launched::Ran(report) => Ok(*report),
        Launched::Created(_) => Err(Error::Config("an attached run was created".into())),
    }
}

/// A created container ([`create`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// Its id.
    pub id: String,
    /// Its process, waiting for `start`.
    pub pid: i32,
}

/// Creates a container (`create`, runc's meaning): the same set-up as
/// [`run`] up to the exec, where its process blocks on `exec.fifo` until
/// [`lifecycle::start`]. No launcher process stays; the state directory and
/// cgroups live until [`lifecycle::delete`]. On error nothing is left.
pub fn create(cfg: &ContainerConfig) -> Result<Created, Error> {
    create_on(cfg, &cgroups::Host::detect())
}

/// [`create`] with the cgroup hierarchies given (see [`run_on`]).
pub fn create_on(cfg: &ContainerConfig, host: &cgroups::Host) -> Result<Created, Error> {
    match launch(cfg, host, true)? {
        Launched::Created(c) => Ok(c),
        Launched::Ran(_) => Err(Error::Config("a detached run waited".into())),
    }
}

enum Launched {
    Ran(Box<RunReport>),
    Created(Created),
}

/// Checks the terminal options as runc does.
fn check_console(cfg: &ContainerConfig, detached: bool) -> Result<(), Error> {
    match (cfg.terminal, &cfg.console_socket) {
        (true, None) if detached => Err(Error::Input(
            "process.terminal is true but the container is detached: give --console-socket PATH \
             (or set terminal to false)"
                .into(),
        )),
        (false, Some(p)) => Err(Error::Input(format!(
            "--console-socket {} needs a terminal (process.terminal = true in config.json, or -t): \
             drop the option or enable the terminal",
            p.display()
        ))),
        _ => Ok(()),
    }
}

fn launch(cfg: &ContainerConfig, host: &cgroups::Host, detached: bool) -> Result<Launched, Error> {
    let start_ns = process::monotonic_ns();
    if cfg.args.is_empty() {
        return Err(Error::Config("no command given".into()));
    }
    if !cfg.rootfs.is_dir() {
        return Err(Error::RootfsMissing(cfg.rootfs.clone()));
    }
    let id = match &cfg.id {
        Some(id) if state::valid_id(id) => id.clone(),
        Some(id) => {
            return Err(Error::Config(format!(
                "container id {id:?} must be 1-64 letters, digits, '-', '_' or '.'"
            )))
        }
        None => new_id(),
    };
    check_console(cfg, detached)?;
    // Built here, in the launcher: the container's process only installs it.
    let filter = cfg.seccomp.build(cfg.capabilities)?;
    let rootless = cfg.rootless;
    let mode = host.mode;
    let signals = process::SignalGuard::new()?;

    let root = state::state_root(rootless);
    state::sweep(&root);
    let st = state::State::create(&root, &id)?;
    let mut cleanup = Cleanup {
        state: &st,
        cgroup: None,
        armed: true,
        poststop: None,
    };
    let cg_mode = if rootless && !cgroups::delegated(host) {
        let limited = cfg.limits.memory_bytes.is_some()
            || cfg.limits.cpu_quota_us.is_some()
            || cfg.limits.pids.is_some();
        if limited {
            eprintln!(
                "vclab: rootless: this host does not delegate a cgroup v2 subtree to this user, \
                 so --memory/--cpus/--pids are not applied"
            );
        }
        CgroupMode::None
    } else {
        mode
    };
    let cg_host = cgroups::Host {
        mode: cg_mode,
        v2_root: host.v2_root.clone(),
    };
    // A created container is lean (v1 and hybrid controllers): cgroups of its
    // own only for its limits, accounted in the shared memory cgroup
    // otherwise. An attached run keeps its own in every controller, for the
    // peak memory and CPU time of its report.
    let cgroup = Cgroup::create_as(&cg_host, &id, &cfg.limits, detached)?;
    let cgroup = cleanup.cgroup.insert(cgroup);
    let cgroup_dirs = cgroup.dirs();
    st.write_owner(&cgroup_dirs)?;

    // Descriptors the container's process inherits: the FIFO it waits on
    // (created containers) and the socket its pty master goes to.
    let fifo = if detached {
        Some(st.make_fifo()?)
    } else {
        None
    };
    let (console_ours, console_theirs) = match (cfg.terminal, &cfg.console_socket) {
        (true, Some(path)) => (None, Some(console::connect(path)?)),
        (true, None) => {
            let (ours, theirs) = console::pair()?;
            (Some(ours), Some(theirs))
        }
        (false, _) => (None, None),
    };

    let mounts = rootfs::mount_plan(&rootfs::RootfsConfig {
        rootfs: &cfg.rootfs,
        state_dir: &st.dir,
        rootless,
        read_only: cfg.read_only,
        masked: &cfg.masked_paths,
        readonly: &cfg.readonly_paths,
        mounts: &cfg.mounts,
        layers: cfg.layers.as_ref(),
    })?;
    let ns = namespaces::plan(&cfg.namespaces, rootless);
    let mut setup = child_setup(cfg, &id, mounts, ns.unshare_after_cgroup, rootless)?;
    setup.seccomp = filter;
    {
        use std::os::fd::AsRawFd;
        setup.console = console_theirs.as_ref().map(|fd| fd.as_raw_fd());
        setup.fifo = match &fifo {
            Some(fd) => Some(cstring(
                "FIFO path",
                &format!("/proc/self/fd/{}", fd.as_raw_fd()),
            )?),
            None => None,
        };
        setup.fifo_fd = fifo.as_ref().map(|fd| fd.as_raw_fd());
        setup.detached = detached;
    }
    let mut child = process::clone_child(&setup, ns.clone, cgroup, &signals)?;
    drop(console_theirs);
    drop(fifo);

    let init = state::Proc::of(child.pid().as_raw());
    let h = &cfg.hooks;
    let has_hooks =
        !(h.create_runtime.is_empty() && h.poststart.is_empty() && h.poststop.is_empty());
    // A created container's record; an attached run keeps to its `pid` file
    // (the container's pid added to the owner line) unless hooks need the
    // state: the lean launcher's start-up does not pay for the JSON.
    let record = (detached || has_hooks).then(|| state::Record {
        id: id.clone(),
        init,
        detached,
        bundle: std::path::absolute(cfg.bundle.as_ref().unwrap_or(&cfg.rootfs))
            .unwrap_or_else(|_| cfg.rootfs.clone()),
        annotations: cfg.annotations.clone(),
        created: state::rfc3339_now(),
        owner_uid: nix::unistd::geteuid().as_raw(),
        poststart: h.poststart.clone(),
        poststop: h.poststop.clone(),
    });
    match &record {
        Some(r) if detached => st.write_record(r)?,
        _ => st.set_init(init, &cgroup_dirs)?,
    }
    if let Some(r) = &record {
        if !h.poststop.is_empty() {
            cleanup.poststop = Some((
                h.poststop.clone(),
                r.oci_state(state::ContainerStatus::Stopped),
            ));
        }
        hooks::run_all(
            "createRuntime",
            &h.create_runtime,
            &r.oci_state(state::ContainerStatus::Creating),
        )?;
    }
    let started = child.start(cgroup)?;

    if detached {
        // A stop signal that came during set-up (held pending since the CLI
        // blocked it) ends the create: the guards remove what was made.
        if let Some(sig) = signals.stop_requested() {
            return Err(Error::Interrupted(sig));
        }
        st.hand_over(init, &cgroup_dirs)?;
        child.commit()?;
        cleanup.armed = false;
        return Ok(Launched::Created(Created { id, pid: init.pid }));
    }

    let mut relay = match &console_ours {
        Some(sock) => {
            use std::os::fd::AsFd;
            Some(console::Relay::new(console::receive_fd(sock.as_fd())?))
        }
        None => None,
    };
    drop(console_ours);
    if let Some(r) = &record {
        hooks::run_warn(
            "poststart",
            &h.poststart,
            &r.oci_state(state::ContainerStatus::Running),
        );
    }
    let (exit_ns, exit_code, signal) = child.wait(&signals, relay.as_mut())?;
    drop(relay);
    let usage = cgroup.usage();
    drop(cleanup);
    drop(signals);
    Ok(Launched::Ran(Box::new(RunReport {
        id,
        cgroup_mode: cg_mode,
        rootless,
        start_monotonic_ns: start_ns,
        exec_monotonic_ns: started.exec_ns,
        cgroup_placement: started.placement,
        cgroup_attach_ns: started.cgroup_attach_ns,
        exit_monotonic_ns: exit_ns,
        exit_code,
        signal,
        oom_killed: usage.oom_killed,
        memory_peak_bytes: usage.memory_peak_bytes,
        cpu_usage_ns: usage.cpu_usage_ns,
        launcher_peak_rss_kib: peak_rss_kib(),
    })))
}

fn cstring(what: &str, s: &str) -> Result<CString, Error> {
    CString::new(s).map_err(|_| Error::Config(format!("{what} {s:?} contains a NUL byte")))
}

/// The exec paths to try for `cmd`: itself if it holds a '/', else each PATH
/// entry joined with it.
pub fn exec_candidates(cmd: &str, path_var: &str) -> Vec<String> {
    if cmd.contains('/') {
        return vec![cmd.to_string()];
    }
    path_var
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| format!("{}/{cmd}", d.trim_end_matches('/')))
        .collect()
}

fn child_setup(
    cfg: &ContainerConfig,
    id: &str,
    mounts: Vec<rootfs::MountStep>,
    unshare_later: nix::sched::CloneFlags,
    rootless: bool,
) -> Result<process::ChildSetup, Error> {
    let mut env = cfg.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(if cfg.uid == 0 {
            "HOME=/root".into()
        } else {
            "HOME=/".into()
        });
    }
    let path_var = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
        .to_string();
    let command = cfg.args[0].clone();
    let candidates = exec_candidates(&command, &path_var)
        .iter()
        .map(|p| cstring("command path", p))
        .collect::<Result<_, _>>()?;
    let uts = cfg.namespaces.contains(&Namespace::Uts);
    let hostname = match &cfg.hostname {
        Some(h) if !uts => {
            return Err(Error::Config(format!(
                "hostname {h:?} needs a UTS namespace"
            )))
        }
        Some(h) => Some(h.clone()),
        None if uts => Some(id.chars().take(12).collect()),
        None => None,
    };
    Ok(process::ChildSetup {
        unshare_later,
        hostname,
        loopback: cfg.namespaces.contains(&Namespace::Network),
        mounts,
        cwd: Path::new(&cfg.cwd).to_path_buf(),
        uid: nix::unistd::Uid::from_raw(cfg.uid),
        gid: nix::unistd::Gid::from_raw(cfg.gid),
        groups: cfg.additional_gids.clone(),
        rootless,
        caps: cfg.capabilities,
        no_new_privs: cfg.no_new_privileges,
        init: cfg.init,
        argv: cfg
            .args
            .iter()
            .map(|a| cstring("argument", a))
            .collect::<Result<_, _>>()?,
        envp: env
            .iter()
            .map(|e| cstring("environment entry", e))
            .collect::<Result<_, _>>()?,
        candidates,
        command,
        console: None,
        fifo: None,
        fifo_fd: None,
        detached: false,
        seccomp: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_lookup_candidates() {
        assert_eq!(exec_candidates("/bin/true", DEFAULT_PATH), ["/bin/true"]);
        assert_eq!(
            exec_candidates("sh", "/usr/bin:/bin/"),
            ["/usr/bin/sh", "/bin/sh"]
        );
        assert!(exec_candidates("sh", "").is_empty());
    }

    #[test]
    fn ids_are_checked() {
        assert!(state::valid_id("abc-1_2.x"));
        assert!(!state::valid_id("../etc"));
        assert!(!state::valid_id(".hidden"));
        assert!(!state::valid_id(""));
        assert_ne!(new_id(), new_id());
    }

    #[test]
    fn missing_rootfs_is_reported_before_any_state() {
        let cfg = ContainerConfig::new("/nonexistent/vclab-rootfs", vec!["/bin/true".into()]);
        let err = run(&cfg).unwrap_err();
        assert!(matches!(err, Error::RootfsMissing(_)), "{err}");
        assert_eq!(err.exit_code(), 125);
    }
}
