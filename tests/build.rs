//! `docker build` through the real CLI (its builder API, as the CLI 28
//! uses it without buildx) against a berthd the test started: steps run
//! as real containers and layers, the image has dockerd's config and
//! history, the cache reuses steps, stages and targets, COPY/ADD rules,
//! dockerd's errors, a client that goes away stops the build.

use crate::common;

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::containers::{daemon_with_busybox, inspect};
use common::Daemon;

/// `docker build ARGS` in `dir` with the legacy builder.
fn build(d: &Daemon, dir: &Path, args: &[&str]) -> Output {
    common::docker_cmd(d.dir.path())
        .env("DOCKER_HOST", d.docker_host())
        .env("DOCKER_BUILDKIT", "0")
        .current_dir(dir)
        .arg("build")
        .args(args)
        .output()
        .expect("docker build")
}

fn build_ok(d: &Daemon, dir: &Path, args: &[&str]) -> String {
    let o = build(d, dir, args);
    assert!(
        o.status.success(),
        "docker build {args:?} failed: {}\n{}\n{}\nberthd log:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
        d.log()
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

/// Build contexts left in the data root.
fn leftover_contexts(d: &Daemon) -> Vec<String> {
    std::fs::read_dir(d.data_root.join("tmp"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("build-"))
                .collect()
        })
        .unwrap_or_default()
}

/// `POST /v1.41/build` with `body` as the context, through raw HTTP.
fn post_build(d: &Daemon, body: &[u8]) -> common::Response {
    let mut req = format!(
        "POST /v1.41/build HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    d.raw(&req)
}

fn containers(d: &Daemon) -> String {
    d.docker_ok(&["ps", "-aq"])
}

#[test]
fn build_runs_the_steps_with_cache_config_and_history() {
    let d = daemon_with_busybox();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[
            (
                "Dockerfile",
                "FROM busybox\n\
                 ARG V=1\n\
                 ENV A=1 B=\"two words\"\n\
                 RUN echo hi $V && echo err >&2 && echo made > /made\n\
                 COPY a.txt /app/\n\
                 COPY d /app/d\n\
                 WORKDIR /app/sub\n\
                 LABEL x=y\n\
                 EXPOSE 8080 53/udp\n\
                 USER 1234\n\
                 STOPSIGNAL SIGINT\n\
                 CMD [\"cat\", \"/app/a.txt\"]\n",
            ),
            ("a.txt", "hello\n"),
            ("d/e/f", "deep\n"),
        ],
    );
    let out = build_ok(&d, ctx.path(), &["-t", "b1", "-t", "b1:two", "."]);
    for want in [
        "Step 1/12 : FROM busybox",
        "Step 4/12 : RUN echo hi $V && echo err >&2 && echo made > /made",
        " ---> Running in ",
        "hi 1\n",
        "Removing intermediate container ",
        "Step 12/12 : CMD [\"cat\", \"/app/a.txt\"]",
        "Successfully built ",
        "Successfully tagged b1:latest",
        "Successfully tagged b1:two",
    ] {
        assert!(out.contains(want), "{want:?} missing in:\n{out}");
    }
    assert!(!out.contains("Using cache"), "{out}");
    // As dockerd: every step but FROM and COPY has a container (RUN runs
    // it; the others are committed from it), removed after the step.
    assert_eq!(out.matches(" ---> Running in ").count(), 9, "{out}");
    assert_eq!(
        out.matches("Removing intermediate container ").count(),
        9,
        "{out}"
    );
    // The image runs what it was given, with the files and the settings.
    assert_eq!(d.docker_ok(&["run", "--rm", "b1"]), "hello\n");
    assert_eq!(
        d.docker_ok(&[
            "run",
            "--rm",
            "b1",
            "sh",
            "-c",
            "cat /made /app/d/e/f; pwd; id -u; echo $A/$B; stat -c %u:%g /app/a.txt"
        ]),
        "made\ndeep\n/app/sub\n1234\n1/two words\n0:0\n"
    );
    assert_eq!(
        inspect(
            &d,
            "b1",
            "{{.Config.WorkingDir}}|{{.Config.User}}|{{.Config.StopSignal}}|{{index .Config.Labels \"x\"}}|{{json .Config.ExposedPorts}}|{{json .Config.Cmd}}"
        ),
        "/app/sub|1234|SIGINT|y|{\"53/udp\":{},\"8080/tcp\":{}}|[\"cat\",\"/app/a.txt\"]"
    );
    let env = inspect(&d, "b1", "{{json .Config.Env}}");
    assert!(
        env.contains("\"A=1\"") && env.contains("\"B=two words\""),
        "{env}"
    );
    assert!(
        !env.contains("V=1"),
        "build args stay out of the image: {env}"
    );
    // History: one row per step (and the base), dockerd's `created_by`.
    let hist = d.docker_ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.ID}}|{{.CreatedBy}}|{{.Size}}",
        "b1",
    ]);
    let rows: Vec<&str> = hist.lines().collect();
    assert_eq!(rows.len(), 12, "{hist}");
    assert!(
        rows[0].contains("/bin/sh -c #(nop)  CMD [\"cat\" \"/app/a.txt\"]"),
        "{hist}"
    );
    assert!(rows[8].contains("|1 V=1 /bin/sh -c echo hi $V"), "{hist}");
    assert!(rows[7].contains("#(nop) COPY file:"), "{hist}");
    assert!(
        rows.iter().all(|r| !r.starts_with("<missing>")),
        "each step's image is named:\n{hist}"
    );
    let b1 = inspect(&d, "b1", "{{.Id}}");
    let parent = inspect(&d, "b1", "{{.Parent}}");
    assert!(parent.starts_with("sha256:") && parent != b1);
    // No container is left, nor the context.
    assert_eq!(containers(&d), "");
    assert!(leftover_contexts(&d).is_empty());

    // Again: every step from the cache, the same image.
    let again = build_ok(&d, ctx.path(), &["-t", "b1", "."]);
    assert_eq!(again.matches(" ---> Using cache").count(), 11, "{again}");
    assert!(!again.contains("Running in"), "{again}");
    assert_eq!(inspect(&d, "b1", "{{.Id}}"), b1);
    // A changed file: the steps before it cached, the rest built again.
    write(ctx.path(), &[("a.txt", "changed\n")]);
    let changed = build_ok(&d, ctx.path(), &["-t", "b1", "."]);
    assert_eq!(changed.matches(" ---> Using cache").count(), 3, "{changed}");
    assert_eq!(d.docker_ok(&["run", "--rm", "b1"]), "changed\n");
    // --no-cache runs everything.
    let fresh = build_ok(&d, ctx.path(), &["--no-cache", "-t", "b2", "."]);
    assert!(!fresh.contains("Using cache"), "{fresh}");
    assert!(fresh.contains("Running in"), "{fresh}");
    // Quiet: the ID only (the newest cached steps: b2's, as dockerd).
    let q = build_ok(&d, ctx.path(), &["-q", "."]);
    assert_eq!(q.trim(), inspect(&d, "b2", "{{.Id}}"));

    // The intermediate images are listed with -a only; removing the last
    // tag removes the chain nobody else uses.
    let listed = d.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(!listed.contains("<none>"), "{listed}");
    let all = d.docker_ok(&["images", "-a", "--format", "{{.Repository}}"]);
    assert!(all.matches("<none>").count() >= 10, "{all}");
    let o = d.docker(&["rmi", &parent]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("image has dependent child images"),
        "{o:?}"
    );
    d.docker_ok(&["rmi", "b2"]);
    let before = d.docker_ok(&["images", "-aq"]).lines().count();
    d.docker_ok(&["rmi", "b1:two"]);
    let rm = d.docker_ok(&["rmi", "b1"]);
    assert!(rm.matches("Deleted: ").count() >= 3, "{rm}");
    let after = d.docker_ok(&["images", "-aq"]).lines().count();
    assert!(after < before, "{before} -> {after}");
}

#[test]
fn stages_targets_copy_rules_and_build_args() {
    let d = daemon_with_busybox();
    let ctx = tempfile::tempdir().unwrap();
    // A gzip tar ADD extracts, with its owners.
    let mut tgz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    {
        let mut b = tar::Builder::new(&mut tgz);
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o640);
        h.set_uid(77);
        h.set_gid(88);
        h.set_cksum();
        b.append_data(&mut h, "in/tar.txt", &b"tar"[..]).unwrap();
        b.finish().unwrap();
    }
    std::fs::write(ctx.path().join("bundle.tgz"), tgz.finish().unwrap()).unwrap();
    write(
        ctx.path(),
        &[
            (
                "Dockerfile",
                "ARG BASE=busybox\n\
                 FROM ${BASE} AS one\n\
                 ARG WHO=nobody\n\
                 RUN echo \"from one: $WHO\" > /one.txt && echo 'app:x:1234:4321::/:/bin/sh' >> /etc/passwd && echo 'app:x:4321:' >> /etc/group\n\
                 COPY --chown=app keep.txt /owned/\n\
                 COPY --chown=7:8 --chmod=600 keep.txt /numeric.txt\n\
                 FROM busybox AS two\n\
                 COPY --from=one /one.txt /copied/\n\
                 COPY *.txt /txt/\n\
                 ADD bundle.tgz /unpacked/\n\
                 COPY keep.txt renamed.txt\n\
                 FROM two AS three\n\
                 RUN echo never > /three\n",
            ),
            ("keep.txt", "keep\n"),
            ("secret.txt", "secret\n"),
            (".dockerignore", "secret.txt\n"),
        ],
    );
    let out = build_ok(
        &d,
        ctx.path(),
        &[
            "--target",
            "two",
            "--build-arg",
            "WHO=me",
            "--build-arg",
            "UNUSED=1",
            "-t",
            "st",
            ".",
        ],
    );
    assert!(out.contains("Step 1/11 : ARG BASE=busybox"), "{out}");
    assert!(!out.contains("never"), "stopped at the target:\n{out}");
    assert!(
        out.contains("[Warning] One or more build-args [UNUSED] were not consumed"),
        "{out}"
    );
    let o = d.docker_ok(&[
        "run", "--rm", "st", "sh", "-c",
        "cat /copied/one.txt; ls /txt; stat -c %u:%g:%a /unpacked/in/tar.txt; cat /unpacked/in/tar.txt; echo; cat renamed.txt; ls /owned 2>&1 | head -1",
    ]);
    assert_eq!(
        o,
        "from one: me\nkeep.txt\n77:88:640\ntar\nkeep\nls: /owned: No such file or directory\n"
    );
    // The first stage as its own target: --chown by name (the image's
    // /etc/passwd) and by number, --chmod.
    build_ok(&d, ctx.path(), &["--target", "one", "-t", "one", "."]);
    assert_eq!(
        d.docker_ok(&[
            "run",
            "--rm",
            "one",
            "stat",
            "-c",
            "%u:%g:%a",
            "/owned/keep.txt",
            "/numeric.txt",
            "/owned"
        ]),
        "1234:4321:644\n7:8:600\n1234:4321:755\n"
    );
    // A build-arg given later changes the RUN step (its cache key).
    let again = build_ok(
        &d,
        ctx.path(),
        &["--target", "one", "--build-arg", "WHO=other", "."],
    );
    assert_eq!(again.matches("Using cache").count(), 1, "{again}");
    // The Dockerfile from elsewhere (`-f`), named differently.
    let other = tempfile::tempdir().unwrap();
    write(
        other.path(),
        &[("Build.file", "FROM busybox\nCOPY keep.txt /k\n")],
    );
    let f = other.path().join("Build.file");
    build_ok(
        &d,
        ctx.path(),
        &["-f", f.to_str().unwrap(), "-t", "fromf", "."],
    );
    assert_eq!(
        d.docker_ok(&["run", "--rm", "fromf", "cat", "/k"]),
        "keep\n"
    );
    assert_eq!(containers(&d), "");
}

#[test]
fn bad_builds_fail_as_dockerd_and_leave_nothing() {
    let d = daemon_with_busybox();
    let ctx = tempfile::tempdir().unwrap();
    let case = |dockerfile: &str, extra: &[&str]| -> (bool, String) {
        write(ctx.path(), &[("Dockerfile", dockerfile)]);
        let mut args: Vec<&str> = extra.to_vec();
        args.push(".");
        let o = build(&d, ctx.path(), &args);
        (
            o.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        )
    };
    let (ok, out) = case("FROM busybox\nFOO bar\n", &[]);
    assert!(
        !ok && out.contains("dockerfile parse error on line 2: unknown instruction: FOO"),
        "{out}"
    );
    let (ok, out) = case("FROM busybox\nENV\n", &[]);
    assert!(
        !ok && out.contains("line 2: ENV requires at least one argument"),
        "{out}"
    );
    let (ok, out) = case("FROM busybox\nCOPY nope /x\n", &[]);
    assert!(!ok && out.contains("COPY failed: file not found in build context or excluded by .dockerignore: stat nope: file does not exist"), "{out}");
    let (ok, out) = case("FROM busybox\nCOPY ../x /x\n", &[]);
    assert!(
        !ok && out.contains("COPY failed: forbidden path outside the build context: ../x ()"),
        "{out}"
    );
    let (ok, out) = case("FROM busybox\nRUN true\n", &["--target", "nope"]);
    assert!(
        !ok && out.contains("failed to reach build target nope in Dockerfile"),
        "{out}"
    );
    // A registry that is not there: a clear error, quickly.
    let port = common::free_port();
    let (ok, out) = case(&format!("FROM 127.0.0.1:{port}/nothing:1\n"), &[]);
    assert!(!ok && out.contains(&format!("127.0.0.1:{port}")), "{out}");
    // A context symlink to a host file: only the context is read.
    std::os::unix::fs::symlink("/etc/shadow", ctx.path().join("shadow")).unwrap();
    std::fs::create_dir_all(ctx.path().join("links")).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", ctx.path().join("links/s")).unwrap();
    let (ok, out) = case("FROM busybox\nCOPY shadow /x\n", &[]);
    assert!(
        !ok && out.contains("file not found in build context"),
        "{out}"
    );
    let (ok, out) = case("FROM busybox\nCOPY links /links/\n", &["-t", "links"]);
    assert!(ok, "{out}");
    assert_eq!(
        d.docker_ok(&["run", "--rm", "links", "readlink", "/links/s"]),
        "/etc/shadow\n"
    );
    // A RUN that fails: dockerd's message and code; its container stays
    // unless --force-rm.
    let (ok, out) = case("FROM busybox\nRUN echo out; exit 3\n", &[]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("The command '/bin/sh -c echo out; exit 3' returned a non-zero code: 3"),
        "{out}"
    );
    let kept = containers(&d);
    assert_eq!(kept.lines().count(), 1, "{kept}");
    d.docker_ok(&["rm", kept.trim()]);
    let (ok, _) = case("FROM busybox\nRUN exit 4\n", &["--force-rm"]);
    assert!(!ok);
    assert_eq!(containers(&d), "");
    // Not a tar, through raw HTTP: 400 with dockerd's words.
    let body = b"this is not a tar archive at all, just some text that goes on";
    let r = post_build(&d, body);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .starts_with("Error processing tar file"));
    // A tar cut inside a file's data: 400, nothing kept.
    let mut t = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    let data = vec![b'x'; 4096];
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    t.append_data(&mut h, "Dockerfile", &data[..]).unwrap();
    let full = t.into_inner().unwrap();
    let cut = &full[..512 + 1000];
    let r = post_build(&d, cut);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .starts_with("Error processing tar file"));
    // A version 2 (BuildKit) request is refused clearly.
    let r = d.raw(b"POST /v1.41/build?version=2 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 501, "{}", r.text());
    // berthd is up, and nothing is left behind.
    d.docker_ok(&["version"]);
    assert!(
        leftover_contexts(&d).is_empty(),
        "{:?}",
        leftover_contexts(&d)
    );
}

#[test]
fn a_client_that_goes_away_stops_the_build() {
    let d = daemon_with_busybox();
    let mut tarball = tar::Builder::new(Vec::new());
    let df = b"FROM busybox\nRUN echo started; sleep 600\n";
    let mut h = tar::Header::new_gnu();
    h.set_size(df.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    tarball.append_data(&mut h, "Dockerfile", &df[..]).unwrap();
    let body = tarball.into_inner().unwrap();
    let mut s = std::os::unix::net::UnixStream::connect(d.dir.path().join("berthd.sock")).unwrap();
    s.write_all(
        format!(
            "POST /v1.41/build?t=never HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    s.write_all(&body).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    // The RUN's own output line (the step line names "started" too).
    while !String::from_utf8_lossy(&seen).contains(r#"{"stream":"started\n"}"#) {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "{}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    assert_eq!(containers(&d).lines().count(), 1);
    drop(s);
    assert!(
        common::wait_for(Duration::from_secs(30), || containers(&d).is_empty()
            && leftover_contexts(&d).is_empty()),
        "the build's container and context are gone: {}\n{}",
        containers(&d),
        d.log()
    );
    let o = d.docker(&["image", "inspect", "never"]);
    assert!(!o.status.success());
}

#[test]
fn the_build_cache_in_system_df_and_builder_prune() {
    let d = daemon_with_busybox();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[
            (
                "Dockerfile",
                "FROM busybox\nCOPY big /big\nRUN echo x > /x\nCMD [\"true\"]\n",
            ),
            ("big", &"b".repeat(100_000)),
        ],
    );
    build_ok(&d, ctx.path(), &["-t", "kept", "."]);
    // A dangling build: its steps stand on no tag.
    write(ctx.path(), &[("big", &"c".repeat(50_000))]);
    build_ok(&d, ctx.path(), &["."]);
    d.docker_ok(&["tag", "kept", "kept:again"]);
    let df = d.get("/v1.41/system/df").json();
    let cache = df["BuildCache"].as_array().unwrap().clone();
    // kept's two steps below it (shared) and the dangling build's steps
    // below its top image.
    assert!(cache.len() >= 4, "{cache:?}");
    assert!(cache
        .iter()
        .any(|c| c["Shared"] == true && c["Size"].as_u64() >= Some(100_000)));
    assert!(cache
        .iter()
        .any(|c| c["Shared"] == false && c["Size"].as_u64() >= Some(50_000)));
    let all_desc: Vec<&str> = cache
        .iter()
        .filter_map(|c| c["Description"].as_str())
        .collect();
    assert!(
        all_desc.iter().any(|d| d.contains("#(nop) COPY file:")),
        "{all_desc:?}"
    );
    // Without -a: only what no tag stands on.
    let out = d.docker_ok(&["builder", "prune", "-f"]);
    assert!(out.contains("Deleted build cache objects:"), "{out}");
    let left = d.get("/v1.41/system/df").json()["BuildCache"]
        .as_array()
        .unwrap()
        .clone();
    assert!(left.iter().all(|c| c["Shared"] == true), "{left:?}");
    assert_eq!(d.docker_ok(&["run", "--rm", "kept", "cat", "/x"]), "x\n");
    // -a: everything; the tagged image still runs, its history's steps
    // are gone (`<missing>`), the next build runs every step.
    d.docker_ok(&["builder", "prune", "-af"]);
    let left = d.get("/v1.41/system/df").json()["BuildCache"]
        .as_array()
        .unwrap()
        .clone();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(d.docker_ok(&["run", "--rm", "kept", "cat", "/x"]), "x\n");
    let hist = d.docker_ok(&["history", "-q", "kept"]);
    assert!(hist.contains("<missing>"), "{hist}");
    // --cache-from: the tagged image's own history and layers stand in
    // for the pruned steps (dockerd's restore from a pulled image).
    write(ctx.path(), &[("big", &"b".repeat(100_000))]);
    let from = build_ok(
        &d,
        ctx.path(),
        &["--cache-from", "kept", "-t", "restored", "."],
    );
    assert_eq!(from.matches(" ---> Using cache").count(), 3, "{from}");
    assert_eq!(
        d.docker_ok(&["run", "--rm", "restored", "cat", "/x"]),
        "x\n"
    );
    assert_eq!(
        inspect(&d, "restored", "{{json .RootFS.Layers}}"),
        inspect(&d, "kept", "{{json .RootFS.Layers}}")
    );
    d.docker_ok(&["rmi", "restored"]);
    d.docker_ok(&["builder", "prune", "-af"]);
    write(ctx.path(), &[("big", &"c".repeat(50_000))]);
    let again = build_ok(&d, ctx.path(), &["."]);
    assert!(!again.contains("Using cache"), "{again}");
    let r = d.raw(b"POST /v1.41/build/prune?filters=%7B%22nope%22%3A%5B%221%22%5D%7D HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 400, "{}", r.text());
}

/// A one-file HTTP server on loopback for `ADD <url>`: (port, thread).
fn serve_once(body: &'static [u8]) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().take(4) {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            );
            let _ = s.write_all(body);
        }
    });
    port
}

#[test]
fn onbuild_shell_entrypoint_healthcheck_volume_scratch_and_urls() {
    let d = daemon_with_busybox();
    let ctx = tempfile::tempdir().unwrap();
    let port = serve_once(b"downloaded\n");
    write(
        ctx.path(),
        &[
            (
                "Dockerfile",
                &format!(
                    "FROM busybox\n\
                     ONBUILD RUN echo triggered > /trig\n\
                     SHELL [\"/bin/sh\", \"-e\", \"-c\"]\n\
                     RUN echo $0 > /shell-was\n\
                     ENTRYPOINT [\"echo\", \"entry\"]\n\
                     HEALTHCHECK --interval=5s --timeout=2s --retries=4 CMD true\n\
                     VOLUME /vol\n\
                     ADD http://127.0.0.1:{port}/files/got.txt /web/\n\
                     MAINTAINER someone\n"
                ),
            ),
            ("child/Dockerfile", "FROM base\nCMD [\"x\"]\n"),
            (
                "scratch/Dockerfile",
                "FROM scratch\nCOPY only.txt /\nENV S=1\n",
            ),
            ("scratch/only.txt", "alone\n"),
        ],
    );
    let out = build_ok(&d, ctx.path(), &["-t", "base", "."]);
    assert!(
        !out.contains("# Executing"),
        "a trigger waits for a child: {out}"
    );
    assert_eq!(d.docker_ok(&["run", "--rm", "base", "x"]), "entry x\n");
    assert_eq!(
        inspect(
            &d,
            "base",
            "{{json .Config.Shell}}|{{json .Config.Healthcheck}}|{{json .Config.Volumes}}|{{.Author}}|{{json .Config.OnBuild}}"
        ),
        "[\"/bin/sh\",\"-e\",\"-c\"]|{\"Test\":[\"CMD-SHELL\",\"true\"],\"Interval\":5000000000,\"Timeout\":2000000000,\"Retries\":4}|{\"/vol\":{}}|someone|[\"RUN echo triggered > /trig\"]"
    );
    assert_eq!(
        d.docker_ok(&[
            "run",
            "--rm",
            "--entrypoint",
            "sh",
            "base",
            "-c",
            "cat /shell-was /web/got.txt; stat -c %a /web/got.txt; date -u -r /web/got.txt +%Y"
        ]),
        "/bin/sh\ndownloaded\n600\n2015\n"
    );
    // The child runs the trigger after its FROM, and does not keep it.
    let out = build_ok(&d, &ctx.path().join("child"), &["-t", "child", "."]);
    assert!(out.contains("# Executing 1 build trigger"), "{out}");
    assert_eq!(
        d.docker_ok(&["run", "--rm", "--entrypoint", "cat", "child", "/trig"]),
        "triggered\n"
    );
    assert_eq!(inspect(&d, "child", "{{json .Config.OnBuild}}"), "null");
    // FROM scratch: an image of one layer, its config alone.
    build_ok(&d, &ctx.path().join("scratch"), &["-t", "scr", "."]);
    assert_eq!(
        inspect(&d, "scr", "{{len .RootFS.Layers}}|{{json .Config.Env}}"),
        "1|[\"S=1\"]"
    );
    let o = d.docker_ok(&["save", "scr"]);
    assert!(!o.is_empty());
    // A URL nobody answers: a clear error, quickly.
    let dead = common::free_port();
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!("FROM busybox\nADD http://127.0.0.1:{dead}/x /x\n"),
        )],
    );
    let o = build(&d, ctx.path(), &["."]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("ADD failed: failed to GET"),
        "{err}"
    );
    write(
        ctx.path(),
        &[("Dockerfile", "FROM busybox\nCOPY http://127.0.0.1/x /x\n")],
    );
    let o = build(&d, ctx.path(), &["."]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("source can't be a URL for COPY"));
}

struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        // The whole group: git daemon forks a process per connection.
        let pgid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

/// Serve `files` over HTTP on loopback for as many requests as come.
fn serve_files(files: Vec<(&'static str, Vec<u8>)>) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).into_owned();
            let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
            match files.iter().find(|(p, _)| *p == path) {
                Some((_, body)) => {
                    let _ = s.write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        )
                        .as_bytes(),
                    );
                    let _ = s.write_all(body);
                }
                None => {
                    let _ = s.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                }
            }
        }
    });
    port
}

#[test]
fn remote_contexts_from_http_and_git() {
    let d = daemon_with_busybox();
    // A tar context and a Dockerfile alone, over HTTP.
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [
        (
            "Dockerfile",
            &b"FROM busybox\nCOPY f /f\nCMD [\"cat\", \"/f\"]\n"[..],
        ),
        ("f", &b"from a remote tar\n"[..]),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    }
    let port = serve_files(vec![
        ("/ctx.tar", b.into_inner().unwrap()),
        (
            "/Dockerfile",
            b"FROM busybox\nCMD [\"echo\", \"from a remote Dockerfile\"]\n".to_vec(),
        ),
    ]);
    let here = tempfile::tempdir().unwrap();
    build_ok(
        &d,
        here.path(),
        &["-t", "rt", &format!("http://127.0.0.1:{port}/ctx.tar")],
    );
    assert_eq!(d.docker_ok(&["run", "--rm", "rt"]), "from a remote tar\n");
    build_ok(
        &d,
        here.path(),
        &["-t", "rd", &format!("http://127.0.0.1:{port}/Dockerfile")],
    );
    assert_eq!(
        d.docker_ok(&["run", "--rm", "rd"]),
        "from a remote Dockerfile\n"
    );
    let o = build(
        &d,
        here.path(),
        &[&format!("http://127.0.0.1:{port}/missing")],
    );
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("unable to download remote context"),
        "{o:?}"
    );
    // A git repository served by `git daemon` on loopback, at a branch and
    // a directory of it.
    let repos = tempfile::tempdir().unwrap();
    let repo = repos.path().join("proj.git");
    let git = |args: &[&str], dir: &Path| {
        let o = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    std::fs::create_dir_all(repo.join("sub")).unwrap();
    git(&["init", "-q", "-b", "main"], &repo);
    write(
        &repo,
        &[
            (
                "sub/Dockerfile",
                "FROM busybox\nCOPY hello /hello\nCMD [\"cat\", \"/hello\"]\n",
            ),
            ("sub/hello", "from git\n"),
        ],
    );
    git(&["add", "."], &repo);
    git(&["commit", "-q", "-m", "one"], &repo);
    git(&["checkout", "-q", "-b", "feature"], &repo);
    write(&repo, &[("sub/hello", "from the feature branch\n")]);
    git(&["commit", "-q", "-am", "two"], &repo);
    git(&["checkout", "-q", "main"], &repo);
    let gport = common::free_port();
    let _daemon = Kill(
        std::process::Command::new("git")
            .args([
                "daemon",
                "--reuseaddr",
                "--export-all",
                "--listen=127.0.0.1",
            ])
            .arg(format!("--port={gport}"))
            .arg(format!("--base-path={}", repos.path().display()))
            .arg(repos.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap(),
    );
    assert!(common::wait_for(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", gport)).is_ok()
    }));
    build_ok(
        &d,
        here.path(),
        &[
            "-t",
            "g1",
            &format!("git://127.0.0.1:{gport}/proj.git#main:sub"),
        ],
    );
    assert_eq!(d.docker_ok(&["run", "--rm", "g1"]), "from git\n");
    build_ok(
        &d,
        here.path(),
        &[
            "-t",
            "g2",
            &format!("git://127.0.0.1:{gport}/proj.git#feature:sub"),
        ],
    );
    assert_eq!(
        d.docker_ok(&["run", "--rm", "g2"]),
        "from the feature branch\n"
    );
    // A repository nobody serves: a clear error, no hang.
    let dead = common::free_port();
    let o = build(
        &d,
        here.path(),
        &[&format!("git://127.0.0.1:{dead}/none.git")],
    );
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("unable to 'git clone'"),
        "{o:?}"
    );
    assert!(leftover_contexts(&d).is_empty());
}

#[test]
fn a_decompression_bomb_context_is_refused() {
    let d = daemon_with_busybox();
    // A tar with one 1 GiB file of zeros, gzipped to about 1 MiB.
    let dir = tempfile::tempdir().unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_path("zeros").unwrap();
    h.set_size(1 << 30);
    h.set_mode(0o644);
    h.set_cksum();
    std::fs::write(dir.path().join("head"), h.as_bytes()).unwrap();
    let bomb = dir.path().join("bomb.tgz");
    let ok = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{{ cat head; head -c 1073741824 /dev/zero; head -c 1024 /dev/zero; }} | gzip -1 > {}",
            bomb.display()
        ))
        .current_dir(dir.path())
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let body = std::fs::read(&bomb).unwrap();
    assert!(body.len() < 8 << 20, "{}", body.len());
    let r = post_build(&d, &body);
    assert_eq!(r.status, 400, "{}", r.text());
    let m = r.json()["message"].as_str().unwrap().to_string();
    assert!(m.contains("decompression bomb"), "{m}");
    assert!(leftover_contexts(&d).is_empty());
    d.docker_ok(&["version"]);
}

/// A small ext4 filesystem on a loop device, mounted at `at`; unmounted
/// (lazily, with everything under it) when dropped.
struct SmallFs {
    at: std::path::PathBuf,
    image: std::path::PathBuf,
}

impl SmallFs {
    fn new(image: &Path, at: &Path, mib: u64) -> SmallFs {
        let f = std::fs::File::create(image).unwrap();
        f.set_len(mib << 20).unwrap();
        let ok = std::process::Command::new("mkfs.ext4")
            .args(["-q", "-F"])
            .arg(image)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mkfs.ext4");
        std::fs::create_dir_all(at).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-o", "loop"])
            .arg(image)
            .arg(at)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount -o loop");
        SmallFs {
            at: at.to_path_buf(),
            image: image.to_path_buf(),
        }
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        // Overlay mounts berthd left under it first, deepest first.
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut under: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4))
            .filter(|p| p.starts_with(self.at.to_str().unwrap_or("/nonexistent")))
            .collect();
        under.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in under {
            let _ = std::process::Command::new("umount")
                .args(["-l", p])
                .status();
        }
        // The test's directory went first (its daemon with it): what the
        // mount kept of it goes now.
        let _ = std::fs::remove_dir_all(&self.at);
        let _ = std::fs::remove_file(&self.image);
        if let Some(parent) = self.at.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

#[test]
fn a_run_that_fills_the_disk_fails_cleanly() {
    let mut d = Daemon::prepare();
    let _fs = SmallFs::new(&d.dir.path().join("small.img"), &d.data_root.clone(), 160);
    d.extra_args = vec!["-H".into(), d.docker_host()];
    let mut cmd = d.command();
    cmd.args(&d.extra_args);
    let d = d.spawn(cmd);
    common::containers::load_busybox(&d);
    let ctx = tempfile::tempdir().unwrap();
    // The RUN fills what is left (its writes stop at ENOSPC); storing its
    // layer then needs as much again.
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            "FROM busybox\nRUN head -c 400000000 /dev/zero > /big; ls -la /big\nRUN echo never\n",
        )],
    );
    let o = build(&d, ctx.path(), &["-t", "full", "."]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        !o.status.success(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(
        err.to_lowercase().contains("no space left on device"),
        "{err}\n{}",
        d.log()
    );
    // berthd is up, the step's container is gone, no image was made, the
    // context is removed; with the space back a build works.
    d.docker_ok(&["version"]);
    assert_eq!(containers(&d), "");
    assert!(!d.docker(&["image", "inspect", "full"]).status.success());
    assert!(leftover_contexts(&d).is_empty());
    write(
        ctx.path(),
        &[("Dockerfile", "FROM busybox\nRUN echo fits > /small\n")],
    );
    build_ok(&d, ctx.path(), &["-t", "fits", "."]);
    assert_eq!(
        d.docker_ok(&["run", "--rm", "fits", "cat", "/small"]),
        "fits\n"
    );
    drop(d);
}

#[test]
fn from_pulls_from_a_registry() {
    let reg = common::registry::Registry::start(None);
    let d = daemon_with_busybox();
    let remote = format!("{}/base/busybox:1", reg.addr);
    d.docker_ok(&["tag", "busybox", &remote]);
    d.docker_ok(&["push", &remote]);
    d.docker_ok(&["rmi", &remote]);
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!("FROM {remote}\nRUN echo pulled > /p\n"),
        )],
    );
    // Missing here: pulled by the FROM, with the pull's progress.
    let out = build_ok(&d, ctx.path(), &["-t", "onpulled", "."]);
    assert!(
        out.contains("Pulling from ") && out.contains("base/busybox"),
        "{out}"
    );
    assert_eq!(
        d.docker_ok(&["run", "--rm", "onpulled", "cat", "/p"]),
        "pulled\n"
    );
    // --pull pulls again (the image is up to date), the RUN comes from
    // the cache.
    let out = build_ok(&d, ctx.path(), &["--pull", "-t", "onpulled", "."]);
    assert!(
        out.contains("Image is up to date") || out.contains("Pulling from"),
        "{out}"
    );
    assert!(out.contains("Using cache"), "{out}");
    // An image the registry does not have: its error, and nothing left.
    write(
        ctx.path(),
        &[("Dockerfile", &format!("FROM {}/nosuch/image:1\n", reg.addr))],
    );
    let o = build(&d, ctx.path(), &["."]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("nosuch/image"), "{err}");
    assert!(
        err.contains("not found") || err.contains("unknown"),
        "{err}"
    );
    assert!(leftover_contexts(&d).is_empty());
}

#[test]
fn squash_with_experimental_makes_one_layer() {
    let d = Daemon::builder()
        .config(serde_json::json!({"experimental": true}))
        .start();
    common::containers::load_busybox(&d);
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[
            (
                "Dockerfile",
                "FROM busybox\nRUN echo a > /a && mkdir /d && echo 1 > /d/one\nRUN rm /bin/ls\nCOPY f /f\nRUN rm /a && rm -r /d && mkdir /d && echo 2 > /d/two\nENV S=1\n",
            ),
            ("f", "file\n"),
        ],
    );
    let base_layers = inspect(&d, "busybox", "{{len .RootFS.Layers}}");
    build_ok(&d, ctx.path(), &["--squash", "-t", "sq", "."]);
    let layers: usize = inspect(&d, "sq", "{{len .RootFS.Layers}}").parse().unwrap();
    assert_eq!(layers, base_layers.parse::<usize>().unwrap() + 1);
    assert_eq!(
        d.docker_ok(&[
            "run",
            "--rm",
            "sq",
            "sh",
            "-c",
            "cat /f; ls /d; test -e /a || echo no-a; test -e /bin/ls || echo no-ls; echo $S"
        ]),
        "file\ntwo\nno-a\nno-ls\n1\n"
    );
    let hist = d.docker_ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.Comment}}|{{.Size}}",
        "sq",
    ]);
    assert!(
        hist.lines().next().unwrap().starts_with("merge sha256:"),
        "{hist}"
    );
    // Without experimental it is refused, as dockerd refuses it.
    let plain = daemon_with_busybox();
    let o = build(&plain, ctx.path(), &["--squash", "."]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("experimental"), "{err}");
}
