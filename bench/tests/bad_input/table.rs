//! The table: each bad input, the exit code its CLI documents for it, and a piece of the
//! one-line error (naming the thing that is wrong).
//!
//! Codes: `vclab vm run` / `vclab-vmm` 1 when the VM cannot be set up (vmm/src/cli.rs);
//! `vclab container` / `vclab-container` 1 for bad usage or input (also an unknown id or a
//! verb the container's status refuses), 125 launcher failure, 126 cannot execute, 127 not
//! found (DESIGN.md, container/src/cli.rs); `vclab compare|density|report` 1 for unusable
//! input, 2 when vclab's own parser refuses the command line (`vclab --help`).

use super::fixtures::Fixtures;

/// Which program a row runs.
#[derive(Clone, Copy, Debug)]
pub enum Bin {
    /// `vclab` (the clap CLI).
    Vclab,
    /// The small `vclab-vmm`.
    Vmm,
    /// The small `vclab-container`.
    Container,
}

/// What a row must do.
#[derive(Clone, Debug)]
pub enum Expect {
    /// Fail with this exit code and one stderr line holding this text.
    Fails(i32, String),
    /// Succeed (exit 0), printing this on stdout: inputs the spec says to accept.
    Runs(String),
}

/// One bad input.
#[derive(Clone, Debug)]
pub struct Row {
    /// What it is, for the failure message.
    pub name: &'static str,
    /// The program.
    pub bin: Bin,
    /// Its arguments.
    pub args: Vec<String>,
    /// The outcome.
    pub expect: Expect,
    /// Paths that must not exist afterwards (a refused run creates no results directory).
    pub absent: Vec<String>,
    /// Run as `nobody` (uid/gid 65534): root reads any file, an unprivileged user does not.
    pub as_nobody: bool,
}

fn row(name: &'static str, bin: Bin, args: &[&str], code: i32, needle: &str) -> Row {
    Row {
        name,
        bin,
        args: args.iter().map(|a| a.to_string()).collect(),
        expect: Expect::Fails(code, needle.to_string()),
        absent: Vec::new(),
        as_nobody: false,
    }
}

fn vclab(name: &'static str, args: &[&str], code: i32, needle: &str) -> Row {
    row(name, Bin::Vclab, args, code, needle)
}

fn absent(mut r: Row, path: String) -> Row {
    r.absent.push(path);
    r
}

/// The VM rows: `vclab vm run ARGS`, some also through `vclab-vmm ARGS`.
fn vm(f: &Fixtures) -> Vec<Row> {
    let p = |n: &str| f.p(n);
    let tiny = p("tiny.elf");
    // A guard against a row that is not refused: the halting guest ends at the timeout (124).
    let run = |name, extra: &[&str], needle: &str| {
        let mut args = vec!["vm", "run", "--timeout", "5"];
        args.extend_from_slice(extra);
        vclab(name, &args, 1, needle)
    };
    let long_cmdline = "vclab.x=".to_string() + &"a".repeat(3000);
    let (missing, secret) = (p("missing.elf"), p("secret.elf"));
    let mut unreadable = run(
        "kernel unreadable (mode 000, run as nobody)",
        &["--kernel", &secret],
        "secret.elf: Permission denied",
    );
    unreadable.as_nobody = true;
    vec![
        run(
            "kernel path missing",
            &["--kernel", &missing],
            "missing.elf",
        ),
        run(
            "kernel unreadable as root (/proc/self/mem reads EIO)",
            &["--kernel", "/proc/self/mem"],
            "/proc/self/mem: Input/output error",
        ),
        unreadable,
        run(
            "kernel is a directory",
            &["--kernel", &p("adir")],
            "is a directory",
        ),
        run(
            "kernel is a FIFO (must not block)",
            &["--kernel", &p("fifo")],
            "is a FIFO",
        ),
        run(
            "kernel is a device",
            &["--kernel", "/dev/null"],
            "is a device",
        ),
        run(
            "zero-length kernel",
            &["--kernel", &p("zero.elf")],
            "neither an ELF",
        ),
        run(
            "random-bytes kernel",
            &["--kernel", &p("noise.bin")],
            "neither an ELF",
        ),
        run(
            "ELF magic then noise",
            &["--kernel", &p("elf-noise.elf")],
            "elf-noise.elf",
        ),
        run(
            "kernel too big for guest memory",
            &["--kernel", &p("big.elf"), "--mem", "4"],
            "use --mem 5 or more",
        ),
        run(
            "--mem 1000000",
            &["--kernel", &tiny, "--mem", "1000000"],
            "MemTotal",
        ),
        run("--mem 0", &["--kernel", &tiny, "--mem", "0"], "--mem 0"),
        run(
            "--mem 1 (too small)",
            &["--kernel", &tiny, "--mem", "1"],
            "--mem 2",
        ),
        run(
            "--mem not a number",
            &["--kernel", &tiny, "--mem", "12q"],
            "--mem 12q",
        ),
        run(
            "--vcpus 0",
            &["--kernel", &tiny, "--vcpus", "0"],
            "--vcpus 0",
        ),
        run(
            "--vcpus 10000",
            &["--kernel", &tiny, "--vcpus", "10000"],
            "10000 vCPUs",
        ),
        run(
            "cmdline over 2 KiB",
            &["--kernel", &tiny, "--cmdline", &long_cmdline],
            "shorten --cmdline",
        ),
        run(
            "disk image missing",
            &["--kernel", &tiny, "--disk", &p("missing.img")],
            "missing.img does not exist",
        ),
        run(
            "disk image not a multiple of 512 bytes",
            &["--kernel", &tiny, "--disk", &p("odd.img")],
            "not a multiple of 512",
        ),
        run(
            "read-only disk image without ,ro",
            &["--kernel", &tiny, "--disk", &p("ro.img")],
            ",ro`",
        ),
        run(
            "disk image is a directory",
            &["--kernel", &tiny, "--disk", &p("adir")],
            "is a directory",
        ),
        run(
            "--disk with no path",
            &["--kernel", &tiny, "--disk", ",ro"],
            "--disk ,ro",
        ),
        absent(
            run(
                "--restore of a missing snapshot directory",
                &["--restore", &p("snap-missing")],
                "snap-missing does not exist",
            ),
            p("snap-missing"),
        ),
        run(
            "--restore of a corrupt snapshot (manifest is noise)",
            &["--restore", &p("snap-corrupt")],
            "is not a vclab snapshot manifest",
        ),
        run(
            "--restore of a truncated snapshot (memory file cut short)",
            &["--restore", &p("snap-truncated"), "--restore-mode", "eager"],
            "the snapshot is truncated",
        ),
        run(
            "--restore-mode not a mode",
            &["--restore", &p("snap-truncated"), "--restore-mode", "lazy"],
            "give mmap, eager or uffd",
        ),
        absent(
            run(
                "--snapshot-at ready without --snapshot-dir",
                &["--kernel", &tiny, "--snapshot-at", "ready"],
                "needs --snapshot-dir",
            ),
            p("snapshot.json"),
        ),
        run(
            "initrd missing",
            &["--kernel", &tiny, "--initrd", &missing],
            "initrd",
        ),
        run(
            "initrd is a directory",
            &["--kernel", &tiny, "--initrd", &p("adir")],
            "initrd",
        ),
        run(
            "initrd too big for guest memory",
            &["--kernel", &tiny, "--mem", "4", "--initrd", &p("initrd-8m")],
            "does not fit",
        ),
        run(
            "console file in a missing directory",
            &[
                "--kernel",
                &tiny,
                "--console",
                &p("no-such-dir/console.txt"),
            ],
            "console.txt",
        ),
        run(
            "console FIFO that nobody reads (it used to hang the open)",
            &["--kernel", &tiny, "--console", &p("fifo")],
            "no process reads",
        ),
        run(
            "--timeout 0",
            &["--kernel", &tiny, "--timeout", "0"],
            "--timeout 0",
        ),
        run(
            "--stop-at unknown",
            &["--kernel", &tiny, "--stop-at", "later"],
            "later",
        ),
        run("no --kernel", &[], "--kernel PATH"),
        run(
            "unknown VMM option",
            &["--kernel", &tiny, "--frobnicate"],
            "--frobnicate",
        ),
        run(
            "--jail with a missing kernel",
            &["--jail", "--kernel", &missing],
            "missing.elf",
        ),
        run(
            "--jail with a missing initrd",
            &["--jail", "--kernel", &tiny, "--initrd", &missing],
            "missing.elf",
        ),
        run(
            "--jail with a console file in a missing directory",
            &[
                "--jail",
                "--kernel",
                &tiny,
                "--console",
                &p("no-such-dir/console.txt"),
            ],
            "console.txt",
        ),
        row(
            "vclab-vmm: kernel missing",
            Bin::Vmm,
            &["--kernel", &missing],
            1,
            "missing.elf",
        ),
        row(
            "vclab-vmm: --vcpus 0",
            Bin::Vmm,
            &["--kernel", &tiny, "--vcpus", "0"],
            1,
            "--vcpus 0",
        ),
    ]
}

/// The container rows; `live` is a running container of the test's (for the duplicate id and
/// the verbs its status refuses), `prefix` the test's id prefix.
fn container(f: &Fixtures, live: &str, prefix: &str) -> Vec<Row> {
    let rootfs = f.rootfs.display().to_string();
    let id = |n: &str| format!("{prefix}{n}");
    let long_id = "x".repeat(300);
    let c = |name, verb: &str, extra: &[&str], code, needle: &str| {
        let mut args = vec!["container", verb];
        args.extend_from_slice(extra);
        vclab(name, &args, code, needle)
    };
    let run = |name, opts: &[&str], cmd: &[&str], code, needle: &str| {
        let mut args = vec!["container", "run", "--rootfs", rootfs.as_str()];
        args.extend_from_slice(opts);
        args.push("--");
        args.extend_from_slice(if cmd.is_empty() { &["/bin/true"] } else { cmd });
        vclab(name, &args, code, needle)
    };
    let bundle = |name, dir: &str, code, needle: &str| {
        let b = f.p(dir);
        c(
            name,
            "run",
            &["--id", &id(dir), "--bundle", &b],
            code,
            needle,
        )
    };
    let (missing, file) = (f.p("missing-rootfs"), f.p("a-file"));
    let mut unknown = c(
        "config.json with unknown fields (OCI: ignore them, as runc)",
        "run",
        &["--id", &id("unknown"), "--bundle", &f.p("bundle-unknown")],
        0,
        "",
    );
    unknown.expect = Expect::Runs("unknown-fields-ignored".to_string());
    vec![
        // 125 as container/tests/cli_bin.rs has it (a missing bundle is 1: see the report).
        c(
            "rootfs missing",
            "run",
            &["--rootfs", &missing, "--", "/bin/true"],
            125,
            "missing-rootfs",
        ),
        c(
            "rootfs is a file",
            "run",
            &["--rootfs", &file, "--", "/bin/true"],
            125,
            "a-file",
        ),
        run(
            "id ../x",
            &["--id", "../x"],
            &[],
            1,
            "invalid container id \"../x\"",
        ),
        run(
            "id of 300 characters",
            &["--id", &long_id],
            &[],
            1,
            "invalid container id",
        ),
        run(
            "empty id",
            &["--id", ""],
            &[],
            1,
            "invalid container id \"\"",
        ),
        run(
            "id with '/'",
            &["--id", "a/b"],
            &[],
            1,
            "invalid container id \"a/b\"",
        ),
        c(
            "create with positional id ..",
            "create",
            &["--rootfs", &rootfs, "..", "--", "/bin/true"],
            1,
            "invalid container id \"..\"",
        ),
        run("--memory 12q", &["--memory", "12q"], &[], 1, "12q"),
        run("--memory empty", &["--memory", ""], &[], 1, "--memory"),
        run("--cpus 0", &["--cpus", "0"], &[], 1, "--cpus"),
        run("--pids 0", &["--pids", "0"], &[], 1, "--pids"),
        run("-w relative", &["-w", "rel"], &[], 1, "\"rel\""),
        run(
            "--user not numeric",
            &["--user", "abc"],
            &[],
            1,
            "--user \"abc\"",
        ),
        run(
            "-v source missing",
            &["-v", &format!("{missing}:/x")],
            &[],
            1,
            "missing-rootfs",
        ),
        run("-v relative", &["-v", "rel:/x"], &[], 1, "rel:/x"),
        run("--net unknown", &["--net", "bridge"], &[], 1, "bridge"),
        run(
            "command not found",
            &["--id", &id("nf")],
            &["/no-such-command"],
            127,
            "/no-such-command",
        ),
        run(
            "command is a directory",
            &["--id", &id("dir")],
            &["/etc"],
            126,
            "/etc",
        ),
        c("no command", "run", &["--rootfs", &rootfs], 1, "no command"),
        c(
            "bundle missing",
            "run",
            &["--bundle", &missing],
            1,
            "config.json",
        ),
        bundle(
            "config.json is not JSON",
            "bundle-garbage",
            1,
            "bundle-garbage/config.json",
        ),
        bundle(
            "config.json with wrong types",
            "bundle-types",
            1,
            "expected u32",
        ),
        bundle(
            "config.json is a FIFO (must not block)",
            "bundle-fifo",
            1,
            "not a regular file",
        ),
        bundle(
            "config.json is a directory",
            "bundle-dir",
            1,
            "not a regular file",
        ),
        bundle(
            "config.json unreadable (EIO)",
            "bundle-eio",
            1,
            "Input/output error",
        ),
        bundle(
            "bundle root.path missing",
            "bundle-no-root",
            125,
            "/nonexistent-vclab-root",
        ),
        unknown,
        run(
            "duplicate id (run)",
            &["--id", live],
            &[],
            1,
            "already exists",
        ),
        c(
            "duplicate id (create)",
            "create",
            &["--id", live, "--rootfs", &rootfs, "--", "/bin/true"],
            1,
            "already exists",
        ),
        c(
            "kill unknown id",
            "kill",
            &[&id("nope")],
            1,
            "does not exist",
        ),
        c(
            "kill bad signal name",
            "kill",
            &[live, "SIGNOPE"],
            1,
            "SIGNOPE",
        ),
        c("kill signal 99", "kill", &[live, "99"], 1, "\"99\""),
        c("kill id ..", "kill", &[".."], 1, "invalid container id"),
        c(
            "start unknown id",
            "start",
            &[&id("nope")],
            1,
            "does not exist",
        ),
        c("start running container", "start", &[live], 1, "is running"),
        c(
            "state id ../x",
            "state",
            &["../x"],
            1,
            "invalid container id",
        ),
        c("state id ..", "state", &[".."], 1, "invalid container id"),
        c(
            "delete running without --force",
            "delete",
            &[live],
            1,
            "--force",
        ),
        // Outside the state root if it were joined as a path; the name exists nowhere, so a
        // regression shows as "does not exist" instead of removing anything.
        c(
            "delete --force of an id that climbs out",
            "delete",
            &["--force", &format!("../{prefix}nowhere")],
            1,
            "invalid container id",
        ),
        c(
            "delete without id",
            "delete",
            &[],
            1,
            "needs a container id",
        ),
        c("list --format xml", "list", &["--format", "xml"], 1, "xml"),
        c(
            "unknown option",
            "run",
            &["--frobnicate"],
            1,
            "--frobnicate",
        ),
        vclab("unknown container verb", &["container", "frob"], 2, "frob"),
        row(
            "vclab-container: id ../x",
            Bin::Container,
            &["--rootfs", &rootfs, "--id", "../x", "--", "/bin/true"],
            1,
            "invalid container id",
        ),
        row(
            "vclab-container: --memory 12q",
            Bin::Container,
            &["--rootfs", &rootfs, "--memory", "12q", "--", "/bin/true"],
            1,
            "12q",
        ),
        row(
            "vclab-container: kill unknown id",
            Bin::Container,
            &["kill", &id("nope")],
            1,
            "does not exist",
        ),
        row(
            "vclab-container: bundle config.json is a FIFO",
            Bin::Container,
            &["--bundle", &f.p("bundle-fifo")],
            1,
            "not a regular file",
        ),
    ]
}

/// `vclab compare`, `density`, `report` and `image` rows.
fn harness(f: &Fixtures) -> Vec<Row> {
    let out = f.p("compare-out");
    let dout = f.p("density-out");
    let cmp = |name, extra: &[&str], code, needle: &str| {
        let mut args = vec!["compare", "--out", out.as_str()];
        args.extend_from_slice(extra);
        absent(vclab(name, &args, code, needle), out.clone())
    };
    let den = |name, extra: &[&str], code, needle: &str| {
        let mut args = vec!["density", "--out", dout.as_str()];
        args.extend_from_slice(extra);
        absent(vclab(name, &args, code, needle), dout.clone())
    };
    let report = |name, dirs: &[&str], code, needle: &str| {
        let mut args = vec!["report".to_string()];
        args.extend(dirs.iter().map(|d| {
            if d.starts_with('-') {
                d.to_string()
            } else {
                f.p(d)
            }
        }));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        vclab(name, &args, code, needle)
    };
    let hosts_out = f.p("hosts-out");
    let missing = f.p("missing");
    vec![
        cmp(
            "compare: unknown runtime",
            &["--only", "bare,nosuch"],
            1,
            "nosuch",
        ),
        cmp("compare: empty runtime name", &["--only", ""], 1, "--only"),
        cmp(
            "compare: --precision abc",
            &["--precision", "abc"],
            2,
            "percentage",
        ),
        cmp(
            "compare: --precision 0",
            &["--precision", "0"],
            2,
            "percentage",
        ),
        cmp(
            "compare: --precision 150%",
            &["--precision", "150%"],
            2,
            "150%",
        ),
        cmp("compare: --runs 0", &["--runs", "0"], 1, "--runs 0"),
        cmp("compare: --runs -1", &["--runs", "-1"], 2, "-1"),
        cmp("compare: --scale 0", &["--scale", "0"], 2, "--scale"),
        cmp(
            "compare: --max-time 0",
            &["--precision", "2%", "--max-time", "0"],
            1,
            "--max-time 0",
        ),
        cmp(
            "compare: --firecracker missing",
            &["--firecracker", &missing],
            1,
            "--firecracker",
        ),
        cmp(
            "compare: --density not a density report",
            &["--density", &missing],
            1,
            "density",
        ),
        cmp("compare: unknown option", &["--rounds", "3"], 2, "--rounds"),
        vclab(
            "compare: --out is a file",
            &["compare", "--out", &f.p("a-file")],
            1,
            "a-file",
        ),
        den("density: --max 0", &["--max", "0"], 1, "--max 0"),
        den("density: --max -3", &["--max", "-3"], 2, "-3"),
        den("density: --step 0", &["--step", "0"], 1, "--step 0"),
        den(
            "density: bad --memory-budget",
            &["--memory-budget", "lots"],
            1,
            "lots",
        ),
        den(
            "density: --memory-budget 0%",
            &["--memory-budget", "0%"],
            1,
            "0%",
        ),
        den(
            "density: --memory-budget 99%",
            &["--memory-budget", "99%"],
            1,
            "99%",
        ),
        den(
            "density: --memory-budget 12q",
            &["--memory-budget", "12q"],
            1,
            "12q",
        ),
        den(
            "density: unknown runtime",
            &["--runtimes", "bare,nosuch"],
            1,
            "nosuch",
        ),
        den(
            "density: runtime twice",
            &["--runtimes", "bare,bare"],
            1,
            "twice",
        ),
        den(
            "density: --concurrency 0",
            &["--concurrency", "0"],
            1,
            "--concurrency",
        ),
        den(
            "density: --concurrency 1000",
            &["--concurrency", "1000"],
            1,
            "1000",
        ),
        den("density: --app-mem 12q", &["--app-mem", "12q"], 1, "12q"),
        den(
            "density: --guest-mem 0",
            &["--guest-mem", "0"],
            1,
            "--guest-mem 0",
        ),
        den(
            "density: --launch-timeout 0",
            &["--launch-timeout", "0"],
            1,
            "--launch-timeout 0",
        ),
        den(
            "density: --cloud-hypervisor missing",
            &["--cloud-hypervisor", &missing],
            1,
            "--cloud-hypervisor",
        ),
        vclab(
            "density: --out is a file",
            &["density", "--out", &f.p("a-file")],
            1,
            "a-file",
        ),
        report("report: missing directory", &["missing"], 1, "missing"),
        report("report: a file, not a directory", &["a-file"], 1, "a-file"),
        report(
            "report: directory without results",
            &["res-none"],
            1,
            "res-none",
        ),
        report(
            "report: truncated results.json",
            &["res-truncated"],
            1,
            "res-truncated/results.json",
        ),
        report(
            "report: empty results.json",
            &["res-empty"],
            1,
            "res-empty/results.json",
        ),
        report(
            "report: random-bytes results.json",
            &["res-noise"],
            1,
            "res-noise/results.json",
        ),
        report(
            "report: results.json of another shape",
            &["res-array"],
            1,
            "res-array/results.json",
        ),
        report(
            "report: results.json from the future",
            &["res-future"],
            1,
            "res-future/results.json",
        ),
        report(
            "report: results.json is a FIFO (must not block)",
            &["res-fifo"],
            1,
            "not a regular file",
        ),
        report(
            "report: corrupt density.json",
            &["density-bad"],
            1,
            "density-bad/density.json",
        ),
        absent(
            report(
                "report: one corrupt among two",
                &["res-good", "res-truncated", "--out", &hosts_out],
                1,
                "res-truncated",
            ),
            hosts_out.clone(),
        ),
        report(
            "report: --out with one directory",
            &["res-good", "--out", &hosts_out],
            1,
            "--out",
        ),
        vclab("report: no directory", &["report"], 2, "<DIR>"),
        vclab(
            "image build: Containerfile missing",
            &[
                "image",
                "build",
                "-t",
                "x",
                "-f",
                &f.p("missing.Containerfile"),
                &f.p("adir"),
            ],
            1,
            "missing.Containerfile",
        ),
        vclab("unknown subcommand", &["frobnicate"], 2, "frobnicate"),
    ]
}

/// Every row.
pub fn rows(f: &Fixtures, live: &str, prefix: &str) -> Vec<Row> {
    let mut rows = vm(f);
    rows.extend(container(f, live, prefix));
    rows.extend(harness(f));
    rows
}
