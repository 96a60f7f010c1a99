//! `vclab image build` then `vclab container run --image`, end to end (root,
//! the lab rootfs): entrypoint, cmd override, env, workdir and user in the
//! container's output; `image ls | inspect | rm`; and, when umoci and runc
//! are installed, the `--layout` output unpacked by umoci and run by runc,
//! printing what `container run --image` prints (a failure, not a skip,
//! when they are installed).

use std::path::Path;
use std::process::{Command, Output};

const FILE: &str = "\
FROM vclab/base
ENV MODE=from-image
WORKDIR /srv/app
COPY msg /srv/app/msg
RUN echo 'app:x:1234:1234::/:/bin/sh' >> /etc/passwd && echo 'app:x:1234:' >> /etc/group
USER app
ENTRYPOINT [\"/bin/sh\", \"-c\", \"cat msg; echo mode=$MODE; echo cwd=$(pwd); echo uid=$(id -u) gid=$(id -g); echo args=$*\", \"entry\"]
CMD [\"default\", \"args\"]
";

fn vclab(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vclab"))
        .args(args)
        .env("VCLAB_IMAGE_STORE", store)
        .output()
        .unwrap()
}

fn ok(o: &Output) -> String {
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(
        o.status.success(),
        "status {:?}\nstdout:\n{out}\nstderr:\n{err}",
        o.status
    );
    out.into_owned()
}

fn installed(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn build_then_run_the_image_with_docker_override_rules() {
    let d = tempfile::tempdir().unwrap();
    let (ctx, store, layout) = (
        d.path().join("ctx"),
        d.path().join("store"),
        d.path().join("layout"),
    );
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Containerfile"), FILE).unwrap();
    std::fs::write(ctx.join("msg"), "hello from the image\n").unwrap();
    let s = |p: &Path| p.display().to_string();
    let out = ok(&vclab(
        &store,
        &[
            "image",
            "build",
            "-t",
            "clitest:v1",
            "--layout",
            &s(&layout),
            &s(&ctx),
        ],
    ));
    assert!(out.contains("STEP 1/8: FROM vclab/base"), "{out}");
    let digest = out
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    assert!(digest.starts_with("sha256:"), "{out}");

    // Defaults from the image config.
    let run = ok(&vclab(
        &store,
        &["container", "run", "--image", "clitest:v1"],
    ));
    let expected = "hello from the image\nmode=from-image\ncwd=/srv/app\nuid=1234 gid=1234\nargs=default args\n";
    assert_eq!(run, expected);
    // A command after `--` replaces CMD, not ENTRYPOINT; -e, -w, --user win.
    let over = ok(&vclab(
        &store,
        &[
            "container",
            "run",
            "--image",
            "clitest:v1",
            "-e",
            "MODE=cli",
            "-w",
            "/",
            "--user",
            "0:0",
            "--",
            "x",
            "y",
        ],
    ));
    assert!(
        over.contains("mode=cli\ncwd=/\nuid=0 gid=0\nargs=x y\n"),
        "{over}"
    );

    // ls, inspect, a second build all cached.
    let ls = ok(&vclab(&store, &["image", "ls"]));
    assert!(ls.contains("clitest:v1"), "{ls}");
    let inspect = ok(&vclab(&store, &["image", "inspect", "clitest:v1"]));
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v["manifest_digest"], digest);
    assert_eq!(v["layers"].as_array().unwrap().len(), 4);
    assert!(v["layers"][0]["size"].as_u64().unwrap() > 0);
    assert_eq!(v["config"]["config"]["User"], "app");
    let again = ok(&vclab(
        &store,
        &["image", "build", "-t", "clitest:v1", &s(&ctx)],
    ));
    assert!(again.contains("4 cached, 0 built"), "{again}");
    assert!(again.contains(&digest), "{again}");

    // The same layout through umoci and runc, when installed.
    if installed("umoci") && installed("runc") {
        let bundle = d.path().join("bundle");
        let st = Command::new("umoci")
            .args([
                "unpack",
                "--image",
                &format!("{}:v1", s(&layout)),
                &s(&bundle),
            ])
            .status()
            .unwrap();
        assert!(st.success(), "umoci unpack failed");
        let cfg_path = bundle.join("config.json");
        let mut cfg: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
        cfg["process"]["terminal"] = serde_json::Value::Bool(false);
        std::fs::write(&cfg_path, serde_json::to_vec(&cfg).unwrap()).unwrap();
        let id = format!("vclab-image-cli-{}", std::process::id());
        let o = Command::new("runc")
            .args(["run", &id])
            .current_dir(&bundle)
            .output()
            .unwrap();
        let _ = Command::new("runc").args(["delete", "-f", &id]).output();
        assert_eq!(
            ok(&o),
            expected,
            "runc prints what container run --image prints"
        );
    }

    // rm, then the image is gone and run --image says so.
    ok(&vclab(&store, &["image", "rm", "clitest:v1"]));
    let unpacked = std::fs::read_dir(store.join(".rootfs")).unwrap().count();
    assert_eq!(unpacked, 0, "rm removes the unpacked rootfs too");
    assert!(
        !store.join("clitest").exists(),
        "the last tag takes the layout with it"
    );
    let gone = vclab(&store, &["container", "run", "--image", "clitest:v1"]);
    assert_eq!(gone.status.code(), Some(1));
    let err = String::from_utf8_lossy(&gone.stderr);
    assert!(err.contains("no image clitest:v1"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn a_failing_run_step_exits_1_with_one_line_and_leaves_no_image() {
    let d = tempfile::tempdir().unwrap();
    let (ctx, store) = (d.path().join("ctx"), d.path().join("store"));
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Containerfile"), "FROM vclab/base\nRUN exit 7\n").unwrap();
    let o = vclab(
        &store,
        &["image", "build", "-t", "bad", &ctx.display().to_string()],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("STEP 2/2") && err.contains("exited with 7"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let ls = ok(&vclab(&store, &["image", "ls"]));
    assert_eq!(ls.lines().count(), 1, "only the header: {ls}");
}
