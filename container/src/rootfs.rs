//! The container's root file system as a list of mount steps, built in the
//! parent (pure data, testable) and applied by the child in its own mount
//! namespace.
//!
//! Order matters: mounts are made private first so nothing propagates to the
//! host; the overlay is assembled at `<state>/root`; /proc, /sys and /dev are
//! mounted inside it; `pivot_root` swaps roots and the old one is detached;
//! masking and read-only paths are applied last, after the pivot, on the
//! container's own /proc and /sys; `--read-only` remounts `/` at the very end.
//! The user's mounts (the bundle's `mounts` of type bind or tmpfs, `-v`) come
//! after the standard ones and before the pivot, in their given order, at
//! destinations resolved inside the rootfs (a symbolic link in the image
//! cannot point a mount outside the container's root).

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A path cannot be given to overlayfs.
    #[error("path {0} contains ',' or ':' which overlayfs options cannot hold: move the rootfs")]
    OverlayPath(PathBuf),
    /// A mount destination is not an absolute path inside the container.
    #[error("mount destination {0:?} must be an absolute path without '..' (e.g. /data)")]
    Destination(String),
    /// A mount option is not known.
    #[error("mount option {option:?} of {destination} is not supported: use ro, rw, bind, rbind, nosuid, nodev, noexec, suid, dev, exec or a propagation (private, rprivate, slave, ...)")]
    Option {
        /// The destination.
        destination: String,
        /// The option.
        option: String,
    },
    /// A bind mount's source does not exist.
    #[error("bind mount source {0} does not exist: create it or fix the mount")]
    Source(PathBuf),
    /// Explicit overlay layers without a lower directory.
    #[error("the overlay layers name no lower directory: give at least one (an empty directory for an empty image)")]
    NoLower,
}

/// A mount the user asked for: a bind mount (`-v HOST:CTR[:ro]`, a bundle
/// mount of type bind) or a tmpfs (a bundle mount of type tmpfs).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserMount {
    /// Absolute path inside the container.
    pub destination: String,
    /// Host path to bind (bind mounts), or the source name (`tmpfs`).
    pub source: PathBuf,
    /// `None` for a bind mount, else the file system type (`tmpfs`).
    pub fstype: Option<String>,
    /// `rbind`: the mounts below the source too.
    pub recursive: bool,
    /// `ro`.
    pub read_only: bool,
    /// `nosuid`, `nodev`, `noexec` as mount flags (bits of `MsFlags`).
    pub flags: u64,
    /// Propagation (`MS_PRIVATE`, `MS_SLAVE`, `MS_SHARED`, with `MS_REC`
    /// for the `r` forms) as `MsFlags` bits; 0 leaves it.
    pub propagation: u64,
    /// File system options (`mode=755,size=64m`) for a tmpfs.
    pub data: String,
}

impl UserMount {
    /// A bind mount of `source` at `destination` with the OCI `options`
    /// (`ro`, `rbind`, `nosuid`, `rprivate`, ...).
    pub fn bind(source: PathBuf, destination: &str, options: &[String]) -> Result<Self, Error> {
        let mut m = UserMount {
            destination: check_destination(destination)?,
            source,
            fstype: None,
            recursive: false,
            read_only: false,
            flags: 0,
            propagation: 0,
            data: String::new(),
        };
        m.set_options(options, false)?;
        Ok(m)
    }

    /// A file system mount (`tmpfs`) at `destination`; options that are not
    /// flags are passed to the file system.
    pub fn fs(
        fstype: &str,
        source: &str,
        destination: &str,
        options: &[String],
    ) -> Result<Self, Error> {
        let mut m = UserMount {
            destination: check_destination(destination)?,
            source: source.into(),
            fstype: Some(fstype.to_string()),
            recursive: false,
            read_only: false,
            flags: 0,
            propagation: 0,
            data: String::new(),
        };
        m.set_options(options, true)?;
        Ok(m)
    }

    fn set_options(&mut self, options: &[String], fs_data: bool) -> Result<(), Error> {
        let mut data: Vec<&str> = Vec::new();
        for o in options {
            let flag = |f: MsFlags| f.bits();
            match o.as_str() {
                "bind" => {}
                "rbind" => self.recursive = true,
                "ro" => self.read_only = true,
                "rw" => self.read_only = false,
                "nosuid" => self.flags |= flag(MsFlags::MS_NOSUID),
                "nodev" => self.flags |= flag(MsFlags::MS_NODEV),
                "noexec" => self.flags |= flag(MsFlags::MS_NOEXEC),
                "suid" => self.flags &= !flag(MsFlags::MS_NOSUID),
                "dev" => self.flags &= !flag(MsFlags::MS_NODEV),
                "exec" => self.flags &= !flag(MsFlags::MS_NOEXEC),
                "strictatime" => self.flags |= flag(MsFlags::MS_STRICTATIME),
                "relatime" | "norelatime" | "atime" | "noatime" | "defaults" => {}
                p if propagation(p).is_some() => {
                    self.propagation = propagation(p).map(flag).unwrap_or(0)
                }
                other if fs_data && !other.is_empty() => data.push(other),
                other => {
                    return Err(Error::Option {
                        destination: self.destination.clone(),
                        option: other.to_string(),
                    })
                }
            }
        }
        self.data = data.join(",");
        Ok(())
    }
}

fn propagation(name: &str) -> Option<MsFlags> {
    let rec = MsFlags::MS_REC;
    Some(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | rec,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | rec,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | rec,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | rec,
        _ => return None,
    })
}

fn check_destination(dest: &str) -> Result<String, Error> {
    let p = Path::new(dest);
    let ok = p.is_absolute()
        && p.components()
            .all(|c| !matches!(c, std::path::Component::ParentDir))
        && p.components().count() > 1;
    if ok {
        Ok(dest.to_string())
    } else {
        Err(Error::Destination(dest.to_string()))
    }
}

/// The standard mount destinations the launcher always makes itself; a
/// bundle's entries for them are not applied again.
pub const STANDARD_DESTINATIONS: [&str; 7] = [
    "/proc",
    "/sys",
    "/sys/fs/cgroup",
    "/dev",
    "/dev/pts",
    "/dev/shm",
    "/dev/mqueue",
];

/// Resolves `dest` (absolute, in the container) against the image `root`
/// the way the container will see it: symbolic links in the image are
/// followed inside `root`, never out of it (an absolute link restarts at
/// `root`, `..` stops there). Returns the path relative to the root.
pub fn resolve_in_root(root: &Path, dest: &str) -> PathBuf {
    let mut todo: Vec<std::ffi::OsString> = Path::new(dest)
        .components()
        .rev()
        .filter_map(|c| match c {
            std::path::Component::Normal(n) => Some(n.to_os_string()),
            std::path::Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut done = PathBuf::new();
    let mut hops = 0;
    while let Some(part) = todo.pop() {
        if part == ".." {
            done.pop();
            continue;
        }
        let candidate = done.join(&part);
        match std::fs::read_link(root.join(&candidate)) {
            Ok(target) if hops < 40 => {
                hops += 1;
                if target.is_absolute() {
                    done = PathBuf::new();
                }
                for c in target.components().rev() {
                    match c {
                        std::path::Component::Normal(n) => todo.push(n.to_os_string()),
                        std::path::Component::ParentDir => todo.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => done = candidate,
        }
    }
    done
}

/// runc's default masked paths.
pub const MASKED_PATHS: [&str; 9] = [
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];

/// runc's default read-only paths.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Host device nodes bind-mounted into the container's /dev.
pub const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// One step of the mount plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountStep {
    /// `mount --make-rprivate /`.
    MakePrivate,
    /// Creates a directory (and its parents).
    Mkdir(PathBuf),
    /// A file system mount (`fstype` with `data` options) at `target`,
    /// creating the directory first.
    Mount {
        /// Source name (`proc`, `tmpfs`, `overlay`, ...).
        source: String,
        /// Where.
        target: PathBuf,
        /// File system type.
        fstype: String,
        /// Mount flags.
        flags: MsFlags,
        /// File system options.
        data: String,
    },
    /// Bind-mounts a host file at `target`, creating an empty file first.
    BindFile {
        /// Host file.
        source: PathBuf,
        /// Where.
        target: PathBuf,
    },
    /// A symbolic link at `link` pointing to `to`.
    Symlink {
        /// Link target text.
        to: String,
        /// The link.
        link: PathBuf,
    },
    /// `pivot_root` into `new_root`, then detach the old root.
    PivotRoot {
        /// The assembled root.
        new_root: PathBuf,
    },
    /// Hides a path (after the pivot): /dev/null over a file, an empty
    /// read-only tmpfs over a directory; a missing path is skipped.
    Mask(PathBuf),
    /// Makes a path read-only (after the pivot); a missing path is skipped.
    ReadOnly(PathBuf),
    /// Remounts `/` read-only.
    ReadOnlyRoot,
    /// Bind-mounts a host path (creating the target, a directory or an
    /// empty file like the source), then applies the read-only and other
    /// flags (a remount) and the propagation.
    Bind {
        /// Host path.
        source: PathBuf,
        /// Where, below the new root.
        target: PathBuf,
        /// `rbind`.
        recursive: bool,
        /// Flags for the remount (`MS_RDONLY`, `MS_NOSUID`, ...); empty: none.
        flags: MsFlags,
        /// Propagation flags; empty: leave it.
        propagation: MsFlags,
    },
}

/// What the plan needs to know.
#[derive(Debug, Clone)]
pub struct RootfsConfig<'a> {
    /// The image (read-only lower layer).
    pub rootfs: &'a Path,
    /// The per-run state directory (holds `upper`, `work`, `root`).
    pub state_dir: &'a Path,
    /// Rootless mode: overlay with `userxattr`, no `gid=5` on devpts.
    pub rootless: bool,
    /// Make `/` read-only.
    pub read_only: bool,
    /// Paths to mask.
    pub masked: &'a [String],
    /// Paths to make read-only.
    pub readonly: &'a [String],
    /// The user's mounts, in order.
    pub mounts: &'a [UserMount],
    /// Explicit overlay layers (an image build's `RUN`): these lower
    /// directories and a kept upper directory instead of `rootfs` and the
    /// per-run tmpfs layer.
    pub layers: Option<&'a Layers>,
}

/// The overlay of an image build's `RUN` step: the parent layers'
/// directories as read-only lowers and an upper directory that outlives the
/// container (it becomes the step's layer). The overlay itself is mounted
/// in the container's own mount namespace, so it goes away with it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Layers {
    /// The lower directories, topmost first (at least one).
    pub lower: Vec<PathBuf>,
    /// The upper directory (kept after the run).
    pub upper: PathBuf,
    /// overlayfs's work directory, on the same file system as `upper`.
    pub work: PathBuf,
}

fn mount(source: &str, target: PathBuf, fstype: &str, flags: MsFlags, data: &str) -> MountStep {
    MountStep::Mount {
        source: source.into(),
        target,
        fstype: fstype.into(),
        flags,
        data: data.into(),
    }
}

/// Builds the mount plan for one container.
pub fn mount_plan(cfg: &RootfsConfig<'_>) -> Result<Vec<MountStep>, Error> {
    let root = cfg.state_dir.join("root");
    let (lower, upper, work) = match cfg.layers {
        Some(l) if l.lower.is_empty() => return Err(Error::NoLower),
        Some(l) => (l.lower.clone(), l.upper.clone(), l.work.clone()),
        None => (
            vec![cfg.rootfs.to_path_buf()],
            cfg.state_dir.join("upper"),
            cfg.state_dir.join("work"),
        ),
    };
    for p in lower.iter().chain([&upper, &work]) {
        let s = p.to_string_lossy();
        if s.contains(',') || s.contains(':') {
            return Err(Error::OverlayPath(p.to_path_buf()));
        }
    }
    let lowerdir: Vec<String> = lower.iter().map(|p| p.display().to_string()).collect();
    let mut overlay = format!(
        "lowerdir={},upperdir={},workdir={}",
        lowerdir.join(":"),
        upper.display(),
        work.display()
    );
    if cfg.rootless {
        overlay.push_str(",userxattr");
    }
    let nse = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let mut steps = vec![
        MountStep::MakePrivate,
        // The per-run layer lives on a tmpfs visible only in this mount
        // namespace: no disk I/O, no sync when the overlay goes away, and
        // nothing for the host to delete.
        mount(
            "tmpfs",
            cfg.state_dir.to_path_buf(),
            "tmpfs",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            "mode=700",
        ),
        MountStep::Mkdir(upper),
        MountStep::Mkdir(work),
        mount(
            "overlay",
            root.clone(),
            "overlay",
            MsFlags::empty(),
            &overlay,
        ),
        mount("proc", root.join("proc"), "proc", nse, ""),
        mount(
            "sysfs",
            root.join("sys"),
            "sysfs",
            nse | MsFlags::MS_RDONLY,
            "",
        ),
        mount(
            "tmpfs",
            root.join("dev"),
            "tmpfs",
            MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
            "mode=755,size=65536k",
        ),
    ];
    for dev in DEVICES {
        steps.push(MountStep::BindFile {
            source: Path::new("/dev").join(dev),
            target: root.join("dev").join(dev),
        });
    }
    let pts_opts = if cfg.rootless {
        "newinstance,ptmxmode=0666,mode=0620"
    } else {
        "newinstance,ptmxmode=0666,mode=0620,gid=5"
    };
    steps.push(mount(
        "devpts",
        root.join("dev/pts"),
        "devpts",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        pts_opts,
    ));
    steps.push(mount(
        "shm",
        root.join("dev/shm"),
        "tmpfs",
        nse,
        "mode=1777,size=65536k",
    ));
    steps.push(mount("mqueue", root.join("dev/mqueue"), "mqueue", nse, ""));
    for (to, link) in [
        ("pts/ptmx", "ptmx"),
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ] {
        steps.push(MountStep::Symlink {
            to: to.into(),
            link: root.join("dev").join(link),
        });
    }
    for m in cfg.mounts {
        let target = root.join(resolve_in_root(cfg.rootfs, &m.destination));
        let mut flags = MsFlags::from_bits_truncate(m.flags);
        if m.read_only {
            flags |= MsFlags::MS_RDONLY;
        }
        let propagation = MsFlags::from_bits_truncate(m.propagation);
        match &m.fstype {
            None => steps.push(MountStep::Bind {
                source: m.source.clone(),
                target,
                recursive: m.recursive,
                flags,
                propagation,
            }),
            Some(fstype) => steps.push(MountStep::Mount {
                source: m.source.to_string_lossy().into_owned(),
                target,
                fstype: fstype.clone(),
                flags,
                data: m.data.clone(),
            }),
        }
    }
    steps.push(MountStep::PivotRoot { new_root: root });
    steps.extend(cfg.masked.iter().map(|p| MountStep::Mask(p.into())));
    steps.extend(cfg.readonly.iter().map(|p| MountStep::ReadOnly(p.into())));
    if cfg.read_only {
        steps.push(MountStep::ReadOnlyRoot);
    }
    Ok(steps)
}

/// A mount step that failed in the child. It borrows the step instead of
/// formatting a message, so the child never allocates (it may have been
/// cloned from a multi-threaded process whose allocator lock was held).
#[derive(Debug)]
pub struct StepError<'a> {
    /// The step.
    pub step: &'a MountStep,
    /// Which part of it failed.
    pub part: &'static str,
    /// The error from the kernel.
    pub errno: nix::errno::Errno,
}

impl std::fmt::Display for StepError<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let e = self.errno;
        match self.step {
            MountStep::MakePrivate => {
                write!(f, "cannot make / private (mount --make-rprivate /): {e}")
            }
            MountStep::Mkdir(p) => write!(f, "cannot create directory {}: {e}", p.display()),
            MountStep::Mount { fstype, target, .. } => {
                write!(f, "cannot mount {fstype} on {}: {e}", target.display())?;
                if fstype == "overlay" {
                    write!(
                        f,
                        " (is the rootfs on a file system overlayfs accepts as a lower layer?)"
                    )?;
                }
                Ok(())
            }
            MountStep::BindFile { source, target } => {
                write!(
                    f,
                    "cannot bind {} to {}: {e}",
                    source.display(),
                    target.display()
                )
            }
            MountStep::Symlink { link, .. } => {
                write!(f, "cannot create symlink {}: {e}", link.display())
            }
            MountStep::PivotRoot { new_root } => {
                write!(
                    f,
                    "cannot {} (new root {}): {e}",
                    self.part,
                    new_root.display()
                )
            }
            MountStep::Mask(p) => write!(f, "cannot mask {}: {e}", p.display()),
            MountStep::ReadOnly(p) => write!(f, "cannot make {} read-only: {e}", p.display()),
            MountStep::ReadOnlyRoot => write!(f, "cannot remount / read-only: {e}"),
            MountStep::Bind { source, target, .. } => write!(
                f,
                "cannot {} bind mount {} at {}: {e}",
                self.part,
                source.display(),
                target.display()
            ),
        }
    }
}

/// Applies the plan. Runs in the child, inside its new mount namespace; it
/// makes system calls only (paths are short enough for std's stack buffers).
pub fn apply(steps: &[MountStep]) -> Result<(), StepError<'_>> {
    for step in steps {
        apply_one(step).map_err(|(part, errno)| StepError { step, part, errno })?;
    }
    Ok(())
}

type StepResult = Result<(), (&'static str, nix::errno::Errno)>;

fn io_errno(e: std::io::Error) -> nix::errno::Errno {
    nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

fn apply_one(step: &MountStep) -> StepResult {
    use nix::mount::mount as sys_mount;
    let none: Option<&str> = None;
    let part = |p: &'static str| move |e| (p, e);
    match step {
        MountStep::MakePrivate => {
            sys_mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)
                .map_err(part("mount"))
        }
        MountStep::Mount {
            source,
            target,
            fstype,
            flags,
            data,
        } => {
            mkdir(target);
            let data = (!data.is_empty()).then_some(data.as_str());
            sys_mount(
                Some(source.as_str()),
                target,
                Some(fstype.as_str()),
                *flags,
                data,
            )
            .map_err(part("mount"))
        }
        MountStep::Mkdir(path) => std::fs::create_dir_all(path).map_err(|e| ("mkdir", io_errno(e))),
        MountStep::BindFile { source, target } => {
            if !target.exists() {
                let _ = std::fs::File::create(target);
            }
            sys_mount(Some(source), target, none, MsFlags::MS_BIND, none).map_err(part("bind"))
        }
        MountStep::Symlink { to, link } => match std::os::unix::fs::symlink(to, link) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(("symlink", io_errno(e))),
        },
        MountStep::PivotRoot { new_root } => pivot(new_root),
        MountStep::Bind {
            source,
            target,
            recursive,
            flags,
            propagation,
        } => bind(source, target, *recursive, *flags, *propagation),
        MountStep::Mask(path) => mask(path),
        MountStep::ReadOnly(path) => read_only(path),
        MountStep::ReadOnlyRoot => sys_mount(
            none,
            "/",
            none,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            none,
        )
        .map_err(part("remount")),
    }
}

fn bind(
    source: &Path,
    target: &Path,
    recursive: bool,
    flags: MsFlags,
    propagation: MsFlags,
) -> StepResult {
    let none: Option<&str> = None;
    let is_dir = std::fs::metadata(source)
        .map(|m| m.is_dir())
        .map_err(|e| ("stat the source of", io_errno(e)))?;
    if is_dir {
        mkdir(target);
    } else if std::fs::symlink_metadata(target).is_err() {
        if let Some(parent) = target.parent() {
            mkdir(parent);
        }
        let _ = std::fs::File::create(target);
    }
    let mut bind = MsFlags::MS_BIND;
    if recursive {
        bind |= MsFlags::MS_REC;
    }
    nix::mount::mount(Some(source), target, none, bind, none).map_err(|e| ("make", e))?;
    if !flags.is_empty() {
        // A bind mount takes its flags only on a remount, which must keep
        // the flags the kernel locked (a mount from another user namespace).
        let locked = nix::sys::statvfs::statvfs(target)
            .map(|s| statvfs_flags(s.flags()))
            .unwrap_or(MsFlags::empty());
        let re = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags | locked;
        nix::mount::mount(none, target, none, re, none).map_err(|e| ("remount", e))?;
    }
    if !propagation.is_empty() {
        nix::mount::mount(none, target, none, propagation, none)
            .map_err(|e| ("set the propagation of", e))?;
    }
    Ok(())
}

fn statvfs_flags(f: nix::sys::statvfs::FsFlags) -> MsFlags {
    use nix::sys::statvfs::FsFlags;
    let mut out = MsFlags::empty();
    for (st, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(st) {
            out |= ms;
        }
    }
    out
}

fn mkdir(path: &Path) {
    if !path.is_dir() {
        let _ = std::fs::create_dir_all(path);
    }
}

/// `pivot_root(".", ".")` then detach the old root, which sits on top
/// (runc's trick: no put_old directory is needed).
fn pivot(new_root: &Path) -> StepResult {
    nix::unistd::chdir(new_root).map_err(|e| ("enter the new root", e))?;
    nix::unistd::pivot_root(".", ".").map_err(|e| ("pivot_root", e))?;
    nix::mount::umount2(".", MntFlags::MNT_DETACH).map_err(|e| ("detach the old root", e))?;
    nix::unistd::chdir("/").map_err(|e| ("chdir / in the new root", e))
}

fn mask(path: &Path) -> StepResult {
    let none: Option<&str> = None;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(_) => return Ok(()),
    };
    let res = if meta.is_dir() {
        nix::mount::mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            Some("size=0"),
        )
    } else {
        nix::mount::mount(Some("/dev/null"), path, none, MsFlags::MS_BIND, none)
    };
    res.map_err(|e| ("mask", e))
}

fn read_only(path: &Path) -> StepResult {
    let none: Option<&str> = None;
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    nix::mount::mount(
        Some(path),
        path,
        none,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        none,
    )
    .map_err(|e| ("bind", e))?;
    // Keep the flags of the surrounding /proc mount: a user namespace may not
    // clear locked ones.
    let flags = MsFlags::MS_BIND
        | MsFlags::MS_REMOUNT
        | MsFlags::MS_RDONLY
        | MsFlags::MS_NOSUID
        | MsFlags::MS_NODEV
        | MsFlags::MS_NOEXEC;
    nix::mount::mount(Some(path), path, none, flags, none).map_err(|e| ("remount", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg<'a>(masked: &'a [String], ro: &'a [String], read_only: bool) -> RootfsConfig<'a> {
        RootfsConfig {
            rootfs: Path::new("/img/rootfs"),
            state_dir: Path::new("/run/vclab/c1"),
            rootless: false,
            read_only,
            masked,
            readonly: ro,
            mounts: &[],
            layers: None,
        }
    }

    #[test]
    fn explicit_layers_replace_the_run_layer() {
        let layers = Layers {
            lower: vec!["/l/2".into(), "/l/1".into()],
            upper: "/b/upper".into(),
            work: "/b/work".into(),
        };
        let mut c = cfg(&[], &[], false);
        c.layers = Some(&layers);
        let steps = mount_plan(&c).unwrap();
        let overlay = steps.iter().find_map(|s| match s {
            MountStep::Mount { fstype, data, .. } if fstype == "overlay" => Some(data.clone()),
            _ => None,
        });
        assert_eq!(
            overlay.as_deref(),
            Some("lowerdir=/l/2:/l/1,upperdir=/b/upper,workdir=/b/work")
        );
        let empty = Layers {
            lower: vec![],
            ..layers.clone()
        };
        c.layers = Some(&empty);
        assert!(matches!(mount_plan(&c), Err(Error::NoLower)));
        let colon = Layers {
            upper: "/b:x/upper".into(),
            ..layers.clone()
        };
        c.layers = Some(&colon);
        assert!(matches!(mount_plan(&c), Err(Error::OverlayPath(_))));
    }

    #[test]
    fn plan_order() {
        let masked: Vec<String> = MASKED_PATHS.iter().map(|s| s.to_string()).collect();
        let ro: Vec<String> = READONLY_PATHS.iter().map(|s| s.to_string()).collect();
        let steps = mount_plan(&cfg(&masked, &ro, true)).unwrap();
        assert_eq!(steps[0], MountStep::MakePrivate);
        assert!(
            matches!(&steps[1], MountStep::Mount { fstype, target, .. }
                if fstype == "tmpfs" && target == Path::new("/run/vclab/c1")),
            "a private tmpfs holds the run's layer: {:?}",
            steps[1]
        );
        assert_eq!(steps[2], MountStep::Mkdir("/run/vclab/c1/upper".into()));
        assert_eq!(steps[3], MountStep::Mkdir("/run/vclab/c1/work".into()));
        let MountStep::Mount {
            fstype,
            data,
            target,
            ..
        } = &steps[4]
        else {
            panic!("overlay must come next: {:?}", steps[4]);
        };
        assert_eq!(fstype, "overlay");
        assert_eq!(target, Path::new("/run/vclab/c1/root"));
        assert_eq!(
            data,
            "lowerdir=/img/rootfs,upperdir=/run/vclab/c1/upper,workdir=/run/vclab/c1/work"
        );
        let pos = |want: &dyn Fn(&MountStep) -> bool| steps.iter().position(want).unwrap();
        let pivot = pos(&|s| matches!(s, MountStep::PivotRoot { .. }));
        let proc_ = pos(&|s| matches!(s, MountStep::Mount { fstype, .. } if fstype == "proc"));
        let devpts = pos(&|s| matches!(s, MountStep::Mount { fstype, .. } if fstype == "devpts"));
        let first_mask = pos(&|s| matches!(s, MountStep::Mask(_)));
        let first_ro = pos(&|s| matches!(s, MountStep::ReadOnly(_)));
        assert!(proc_ < pivot && devpts < pivot);
        assert!(pivot < first_mask && first_mask < first_ro);
        assert_eq!(steps.last(), Some(&MountStep::ReadOnlyRoot));
        let masks = steps
            .iter()
            .filter(|s| matches!(s, MountStep::Mask(_)))
            .count();
        assert_eq!(masks, 9);
        let binds = steps
            .iter()
            .filter(|s| matches!(s, MountStep::BindFile { .. }))
            .count();
        assert_eq!(binds, DEVICES.len());
        // Everything between the overlay and the pivot lives under the new root.
        for s in &steps[4..pivot] {
            let t = match s {
                MountStep::Mount { target, .. } | MountStep::BindFile { target, .. } => target,
                MountStep::Symlink { link, .. } => link,
                other => panic!("unexpected step before pivot: {other:?}"),
            };
            assert!(t.starts_with("/run/vclab/c1/root"), "{t:?}");
        }
    }

    #[test]
    fn writable_root_has_no_final_remount() {
        let steps = mount_plan(&cfg(&[], &[], false)).unwrap();
        assert!(!steps.contains(&MountStep::ReadOnlyRoot));
        assert!(matches!(steps.last(), Some(MountStep::PivotRoot { .. })));
    }

    #[test]
    fn rootless_overlay_uses_userxattr() {
        let mut c = cfg(&[], &[], false);
        c.rootless = true;
        let steps = mount_plan(&c).unwrap();
        assert!(matches!(&steps[4], MountStep::Mount { data, .. } if data.ends_with(",userxattr")));
        assert!(steps.iter().any(
            |s| matches!(s, MountStep::Mount { fstype, data, .. } if fstype == "devpts" && !data.contains("gid="))
        ));
    }

    #[test]
    fn user_mounts_come_before_the_pivot_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("usr/data")).unwrap();
        std::os::unix::fs::symlink("/usr/data", tmp.path().join("data")).unwrap();
        std::os::unix::fs::symlink("../../../../etc", tmp.path().join("esc")).unwrap();
        let opts = |o: &[&str]| o.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mounts = [
            UserMount::bind("/srv/a".into(), "/data/x", &opts(&["rbind", "ro"])).unwrap(),
            UserMount::fs("tmpfs", "tmpfs", "/esc/t", &opts(&["nosuid", "size=1m"])).unwrap(),
        ];
        let mut c = cfg(&[], &[], false);
        c.rootfs = tmp.path();
        c.mounts = &mounts;
        let steps = mount_plan(&c).unwrap();
        let n = steps.len();
        assert!(matches!(steps[n - 1], MountStep::PivotRoot { .. }));
        assert_eq!(
            steps[n - 3],
            MountStep::Bind {
                source: "/srv/a".into(),
                target: "/run/vclab/c1/root/usr/data/x".into(),
                recursive: true,
                flags: MsFlags::MS_RDONLY,
                propagation: MsFlags::empty(),
            },
            "the symlink /data is followed inside the rootfs"
        );
        assert!(
            matches!(&steps[n - 2], MountStep::Mount { target, data, flags, .. }
                if target == Path::new("/run/vclab/c1/root/etc/t") && data == "size=1m"
                    && *flags == MsFlags::MS_NOSUID),
            "'..' stops at the root: {:?}",
            steps[n - 2]
        );
    }

    #[test]
    fn bad_mounts_are_refused() {
        for d in ["data", "/a/../b", "/"] {
            assert!(
                matches!(
                    UserMount::bind("/x".into(), d, &[]),
                    Err(Error::Destination(_))
                ),
                "{d}"
            );
        }
        let e = UserMount::bind("/x".into(), "/d", &["bogus".into()]).unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        let m = UserMount::bind("/x".into(), "/d", &["rprivate".into(), "nodev".into()]).unwrap();
        assert_eq!(
            m.propagation,
            (MsFlags::MS_PRIVATE | MsFlags::MS_REC).bits()
        );
        assert_eq!(m.flags, MsFlags::MS_NODEV.bits());
    }

    #[test]
    fn overlay_rejects_separators_in_paths() {
        let mut c = cfg(&[], &[], false);
        c.rootfs = Path::new("/img/a,b");
        assert!(matches!(mount_plan(&c), Err(Error::OverlayPath(_))));
    }
}
