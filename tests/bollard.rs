//! The Rust SDK (bollard, its current release) driven against a berthd
//! the test started, as its users drive dockerd: every endpoint group,
//! with credentials and pulls from a loopback registry, logs (one message
//! per log entry), attach and exec streams, archives and events.

use crate::common;

use std::collections::HashMap;
use std::time::Duration;

use bollard::auth::DockerCredentials;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, Ipam, IpamConfig, NetworkConnectRequest,
    NetworkCreateRequest, NetworkDisconnectRequest, VolumeCreateRequest,
};
use bollard::query_parameters as q;
use bollard::Docker;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use common::containers::daemon_with_busybox;
use common::registry::Registry;
use common::Daemon;

fn client(d: &Daemon) -> Docker {
    Docker::connect_with_socket(d.sock.to_str().unwrap(), 120, bollard::API_DEFAULT_VERSION)
        .unwrap()
}

fn body(image: &str, cmd: &[&str]) -> ContainerCreateBody {
    ContainerCreateBody {
        image: Some(image.into()),
        cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    }
}

async fn create(docker: &Docker, name: &str, b: ContainerCreateBody) -> String {
    let opts = q::CreateContainerOptionsBuilder::default()
        .name(name)
        .build();
    docker.create_container(Some(opts), b).await.unwrap().id
}

/// Every message of an output stream, as the SDK hands them over.
async fn messages<S>(mut s: S, timeout: Duration) -> Vec<LogOutput>
where
    S: futures_util::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Unpin,
{
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while let Ok(Some(m)) = tokio::time::timeout_at(deadline, s.next()).await {
        out.push(m.unwrap());
    }
    out
}

fn text(ms: &[LogOutput]) -> String {
    ms.iter().map(|m| m.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bollard_drives_containers_logs_attach_exec_and_archives() {
    let d = daemon_with_busybox();
    let docker = client(&d);
    assert_eq!(docker.ping().await.unwrap(), "OK");
    let v = docker.version().await.unwrap();
    assert_eq!(v.os.as_deref(), Some("linux"));
    let info = docker.info().await.unwrap();
    assert!(info.images.unwrap_or(0) >= 1);

    // Logs: one message per line written, on the right stream.
    let id = create(
        &docker,
        "talker",
        body(
            "busybox",
            &[
                "sh",
                "-c",
                "echo hello; sleep 0.2; echo world; echo oops >&2",
            ],
        ),
    )
    .await;
    docker.start_container("talker", None).await.unwrap();
    let mut wait = docker.wait_container("talker", None::<q::WaitContainerOptions>);
    let w = wait.next().await.unwrap().unwrap();
    assert_eq!(w.status_code, 0);
    let logs = docker.logs(
        &id,
        Some(
            q::LogsOptionsBuilder::default()
                .stdout(true)
                .stderr(true)
                .build(),
        ),
    );
    let ms = messages(Box::pin(logs), Duration::from_secs(10)).await;
    assert_eq!(ms.len(), 3, "{ms:?}");
    assert!(matches!(&ms[0], LogOutput::StdOut { message } if &message[..] == b"hello\n"));
    assert!(matches!(&ms[1], LogOutput::StdOut { message } if &message[..] == b"world\n"));
    assert!(matches!(&ms[2], LogOutput::StdErr { message } if &message[..] == b"oops\n"));

    // List with filters, inspect, rename.
    let mut f = HashMap::new();
    f.insert("name", vec!["^/talker$"]);
    let list = docker
        .list_containers(Some(
            q::ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&f)
                .build(),
        ))
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id.as_deref(), Some(id.as_str()));
    docker
        .rename_container(
            "talker",
            q::RenameContainerOptionsBuilder::default()
                .name("talker2")
                .build(),
        )
        .await
        .unwrap();
    let i = docker.inspect_container("talker2", None).await.unwrap();
    assert_eq!(i.name.as_deref(), Some("/talker2"));
    assert_eq!(i.state.unwrap().exit_code, Some(0));

    // Attach to a `cat` with stdin open: what goes in comes back.
    let mut b = body("busybox", &["cat"]);
    b.open_stdin = Some(true);
    b.attach_stdin = Some(true);
    b.attach_stdout = Some(true);
    create(&docker, "echoer", b).await;
    let att = docker
        .attach_container(
            "echoer",
            Some(
                q::AttachContainerOptionsBuilder::default()
                    .stdin(true)
                    .stdout(true)
                    .stderr(true)
                    .stream(true)
                    .build(),
            ),
        )
        .await
        .unwrap();
    docker.start_container("echoer", None).await.unwrap();
    let mut input = att.input;
    let mut output = att.output;
    input.write_all(b"ping through attach\n").await.unwrap();
    input.flush().await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(10), output.next())
        .await
        .expect("attach output")
        .unwrap()
        .unwrap();
    assert_eq!(m.to_string(), "ping through attach\n");

    // Exec without TTY: stdout and stderr apart, in order, exit code kept.
    let e = docker
        .create_exec(
            "echoer",
            CreateExecOptions {
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                cmd: Some(vec![
                    "sh",
                    "-c",
                    "echo out1; echo err1 >&2; sleep 0.1; echo out2; exit 3",
                ]),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .id;
    match docker.start_exec(&e, None).await.unwrap() {
        StartExecResults::Attached { output, .. } => {
            let ms = messages(output, Duration::from_secs(10)).await;
            let out: String = ms
                .iter()
                .filter(|m| matches!(m, LogOutput::StdOut { .. }))
                .map(|m| m.to_string())
                .collect();
            let err: String = ms
                .iter()
                .filter(|m| matches!(m, LogOutput::StdErr { .. }))
                .map(|m| m.to_string())
                .collect();
            assert_eq!(out, "out1\nout2\n");
            assert_eq!(err, "err1\n");
        }
        StartExecResults::Detached => panic!("attached exec came back detached"),
    }
    let ei = docker.inspect_exec(&e).await.unwrap();
    assert_eq!(ei.exit_code, Some(3));
    assert_eq!(ei.running, Some(false));
    // With a TTY: one console stream, every byte.
    let e = docker
        .create_exec(
            "echoer",
            CreateExecOptions {
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                tty: Some(true),
                cmd: Some(vec!["sh", "-c", "echo hello out; echo hello err >&2"]),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .id;
    let StartExecResults::Attached { output, .. } = docker
        .start_exec(
            &e,
            Some(StartExecOptions {
                tty: true,
                ..Default::default()
            }),
        )
        .await
        .unwrap()
    else {
        panic!("detached");
    };
    let ms = messages(output, Duration::from_secs(10)).await;
    assert_eq!(text(&ms), "hello out\r\nhello err\r\n");

    // Archives: upload a tar, read it back, its stat; changes; top.
    let mut tb = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(5);
    h.set_mode(0o640);
    h.set_cksum();
    tb.append_data(&mut h, "note.txt", &b"hello"[..]).unwrap();
    let tarball = tb.into_inner().unwrap();
    docker
        .upload_to_container(
            "echoer",
            Some(
                q::UploadToContainerOptionsBuilder::default()
                    .path("/tmp")
                    .build(),
            ),
            bollard::body_full(tarball.into()),
        )
        .await
        .unwrap();
    let info = docker
        .get_container_archive_info(
            "echoer",
            Some(
                q::ContainerArchiveInfoOptionsBuilder::default()
                    .path("/tmp/note.txt")
                    .build(),
            ),
        )
        .await
        .unwrap();
    assert_eq!(info.name, "note.txt");
    assert_eq!(info.size, 5);
    let mut got = Vec::new();
    let mut dl = docker.download_from_container(
        "echoer",
        Some(
            q::DownloadFromContainerOptionsBuilder::default()
                .path("/tmp/note.txt")
                .build(),
        ),
    );
    while let Some(c) = dl.next().await {
        got.extend_from_slice(&c.unwrap());
    }
    let mut ar = tar::Archive::new(&got[..]);
    let mut e = ar.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(e.path().unwrap().to_str(), Some("note.txt"));
    let mut s = String::new();
    std::io::Read::read_to_string(&mut e, &mut s).unwrap();
    assert_eq!(s, "hello");
    let changes = docker.container_changes("echoer").await.unwrap().unwrap();
    assert!(
        changes.iter().any(|c| c.path == "/tmp/note.txt"),
        "{changes:?}"
    );
    let top = docker
        .top_processes("echoer", None::<q::TopOptions>)
        .await
        .unwrap();
    assert!(top
        .processes
        .unwrap()
        .iter()
        .any(|p| p.iter().any(|c| c == "cat")));
    // Commit the running container (paused meanwhile): its file is in
    // the image, the config the container's, the comment kept.
    let committed = docker
        .commit_container(
            q::CommitContainerOptionsBuilder::default()
                .container("echoer")
                .repo("committed")
                .tag("v1")
                .comment("by bollard")
                .build(),
            bollard::models::ContainerConfig::default(),
        )
        .await
        .unwrap();
    let img = docker.inspect_image("committed:v1").await.unwrap();
    assert_eq!(img.id.as_deref(), Some(committed.id.as_str()));
    assert_eq!(img.comment.as_deref(), Some("by bollard"));
    assert_eq!(
        img.config.and_then(|c| c.cmd),
        Some(vec!["cat".to_string()])
    );
    let i = docker.inspect_container("echoer", None).await.unwrap();
    assert_eq!(i.state.unwrap().running, Some(true));
    // Stats, one shot.
    let mut st = docker.stats(
        "echoer",
        Some(
            q::StatsOptionsBuilder::default()
                .stream(false)
                .one_shot(true)
                .build(),
        ),
    );
    let s = st.next().await.unwrap().unwrap();
    assert!(s.memory_stats.is_some());

    // Pause, update, kill (answers after the exit), remove, prune.
    docker.pause_container("echoer").await.unwrap();
    let i = docker.inspect_container("echoer", None).await.unwrap();
    assert_eq!(i.state.unwrap().paused, Some(true));
    docker.unpause_container("echoer").await.unwrap();
    docker
        .update_container(
            "echoer",
            bollard::models::ContainerUpdateBody {
                memory: Some(64 << 20),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let i = docker.inspect_container("echoer", None).await.unwrap();
    assert_eq!(i.host_config.unwrap().memory, Some(64 << 20));
    docker
        .kill_container("echoer", None::<q::KillContainerOptions>)
        .await
        .unwrap();
    let i = docker.inspect_container("echoer", None).await.unwrap();
    assert_eq!(i.state.unwrap().running, Some(false));
    docker
        .remove_container("echoer", None::<q::RemoveContainerOptions>)
        .await
        .unwrap();
    let pruned = docker
        .prune_containers(None::<q::PruneContainersOptions>)
        .await
        .unwrap();
    assert_eq!(
        pruned.containers_deleted.unwrap_or_default(),
        vec![id.clone()]
    );
    let err = docker.inspect_container(&id, None).await.unwrap_err();
    assert!(
        matches!(
            err,
            bollard::errors::Error::DockerResponseServerError {
                status_code: 404,
                ..
            }
        ),
        "{err:?}"
    );
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bollard_pushes_and_pulls_with_credentials() {
    let reg = Registry::start(Some(("alice", "s3cret")));
    let d = Daemon::builder()
        .config(serde_json::json!({"insecure-registries": [reg.addr]}))
        .start();
    common::containers::load_busybox(&d);
    let docker = client(&d);
    let repo = format!("{}/tools/busybox", reg.addr);
    docker
        .tag_image(
            "busybox",
            Some(
                q::TagImageOptionsBuilder::default()
                    .repo(&repo)
                    .tag("v1")
                    .build(),
            ),
        )
        .await
        .unwrap();
    // bollard's credentials: JSON with null members in X-Registry-Auth.
    let creds = DockerCredentials {
        username: Some("alice".into()),
        password: Some("s3cret".into()),
        serveraddress: Some(reg.addr.clone()),
        ..Default::default()
    };
    let mut push = docker.push_image(
        &repo,
        Some(q::PushImageOptionsBuilder::default().tag("v1").build()),
        Some(creds.clone()),
    );
    let mut pushed = false;
    while let Some(m) = push.next().await {
        let m = m.unwrap();
        if m.status
            .as_deref()
            .unwrap_or("")
            .contains("digest: sha256:")
        {
            pushed = true;
        }
    }
    assert!(pushed, "the push reported its digest");
    // Without credentials: the registry's refusal reaches the SDK.
    let mut bad = docker.push_image(
        &repo,
        Some(q::PushImageOptionsBuilder::default().tag("v1").build()),
        None,
    );
    let mut refused = false;
    while let Some(m) = bad.next().await {
        if m.is_err() {
            refused = true;
        }
    }
    assert!(refused, "a push without credentials fails");
    let tagged = format!("{repo}:v1");
    docker
        .remove_image(&tagged, None::<q::RemoveImageOptions>, None)
        .await
        .unwrap();
    docker
        .remove_image("busybox:latest", None::<q::RemoveImageOptions>, None)
        .await
        .unwrap();
    assert!(docker
        .list_images(None::<q::ListImagesOptions>)
        .await
        .unwrap()
        .is_empty());
    let mut pull = docker.create_image(
        Some(
            q::CreateImageOptionsBuilder::default()
                .from_image(&repo)
                .tag("v1")
                .build(),
        ),
        None,
        Some(creds),
    );
    let mut last = String::new();
    while let Some(m) = pull.next().await {
        last = m.unwrap().status.unwrap_or_default();
    }
    assert!(last.contains("Downloaded newer image"), "{last}");
    let img = docker.inspect_image(&tagged).await.unwrap();
    assert_eq!(img.repo_tags.unwrap_or_default(), vec![tagged.clone()]);
    let hist = docker.image_history(&tagged).await.unwrap();
    assert!(!hist.is_empty());
    // A pull without credentials is refused, as the registry says.
    let mut bad = docker.create_image(
        Some(
            q::CreateImageOptionsBuilder::default()
                .from_image(&repo)
                .tag("v1")
                .build(),
        ),
        None,
        None,
    );
    let mut refused = false;
    while let Some(m) = bad.next().await {
        if m.is_err() {
            refused = true;
        }
    }
    assert!(refused, "a pull without credentials fails");
    // The pulled image runs.
    create(
        &docker,
        "pulled",
        body(&tagged, &["echo", "from the registry"]),
    )
    .await;
    docker.start_container("pulled", None).await.unwrap();
    let mut wait = docker.wait_container("pulled", None::<q::WaitContainerOptions>);
    assert_eq!(wait.next().await.unwrap().unwrap().status_code, 0);
    let logs = docker.logs(
        "pulled",
        Some(q::LogsOptionsBuilder::default().stdout(true).build()),
    );
    let ms = messages(Box::pin(logs), Duration::from_secs(10)).await;
    assert_eq!(text(&ms), "from the registry\n");
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bollard_networks_volumes_events_and_system() {
    let d = daemon_with_busybox();
    let docker = client(&d);
    let since = chrono::Utc::now().timestamp().to_string();
    // Events of this test only: a stream opened now, read at the end.
    let mut events = docker.events(Some(
        q::EventsOptionsBuilder::default().since(&since).build(),
    ));
    let subnet = d.subnet(1);
    let net = docker
        .create_network(NetworkCreateRequest {
            name: "sdknet".into(),
            ipam: Some(Ipam {
                config: Some(vec![IpamConfig {
                    subnet: Some(subnet.clone()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            labels: Some(HashMap::from([("team".into(), "sdk".into())])),
            ..Default::default()
        })
        .await
        .unwrap();
    let n = docker
        .inspect_network("sdknet", None::<q::InspectNetworkOptions>)
        .await
        .unwrap();
    assert_eq!(n.id.as_deref(), Some(net.id.as_str()));
    let cfg = n.ipam.unwrap().config.unwrap();
    assert_eq!(cfg[0].subnet.as_deref(), Some(subnet.as_str()));
    let vol = docker
        .create_volume(VolumeCreateRequest {
            name: Some("sdkvol".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(vol.name, "sdkvol");
    let mut b = body("busybox", &["sleep", "600"]);
    b.host_config = Some(HostConfig {
        binds: Some(vec!["sdkvol:/data".into()]),
        ..Default::default()
    });
    create(&docker, "netbox", b).await;
    docker.start_container("netbox", None).await.unwrap();
    docker
        .connect_network(
            "sdknet",
            NetworkConnectRequest {
                container: "netbox".into(),
                endpoint_config: Some(EndpointSettings {
                    aliases: Some(vec!["box-alias".into()]),
                    ..Default::default()
                }),
            },
        )
        .await
        .unwrap();
    let i = docker.inspect_container("netbox", None).await.unwrap();
    let nets = i.network_settings.unwrap().networks.unwrap();
    let ip = nets["sdknet"].ip_address.clone().unwrap();
    assert!(ip.starts_with(
        subnet
            .split('.')
            .take(3)
            .collect::<Vec<_>>()
            .join(".")
            .as_str()
    ));
    docker
        .disconnect_network(
            "sdknet",
            NetworkDisconnectRequest {
                container: "netbox".into(),
                force: Some(false),
            },
        )
        .await
        .unwrap();
    let mut f = HashMap::new();
    f.insert("label", vec!["team=sdk"]);
    let listed = docker
        .list_networks(Some(
            q::ListNetworksOptionsBuilder::default().filters(&f).build(),
        ))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    let vols = docker
        .list_volumes(None::<q::ListVolumesOptions>)
        .await
        .unwrap();
    assert!(vols
        .volumes
        .unwrap_or_default()
        .iter()
        .any(|v| v.name == "sdkvol"));
    let df = docker.df(None::<q::DataUsageOptions>).await.unwrap();
    // API 1.53's per-type usage: one image, in use by the running box.
    let iu = df.image_usage.unwrap();
    assert_eq!((iu.total_count, iu.active_count), (Some(1), Some(1)));
    assert_eq!(iu.reclaimable, Some(0));
    let cu = df.container_usage.unwrap();
    assert_eq!((cu.total_count, cu.active_count), (Some(1), Some(1)));
    let vu = df.volume_usage.unwrap();
    assert_eq!((vu.total_count, vu.active_count), (Some(1), Some(1)));
    docker
        .remove_container(
            "netbox",
            Some(
                q::RemoveContainerOptionsBuilder::default()
                    .force(true)
                    .build(),
            ),
        )
        .await
        .unwrap();
    docker.remove_network("sdknet").await.unwrap();
    docker
        .remove_volume("sdkvol", None::<q::RemoveVolumeOptions>)
        .await
        .unwrap();
    let pruned = docker
        .prune_networks(None::<q::PruneNetworksOptions>)
        .await
        .unwrap();
    assert!(pruned.networks_deleted.unwrap_or_default().is_empty());
    // The events of all that, in order, as the SDK decodes them.
    let want = [
        ("network", "create"),
        ("volume", "create"),
        ("container", "create"),
        ("container", "start"),
        ("network", "connect"),
        ("network", "disconnect"),
        ("container", "destroy"),
        ("network", "destroy"),
        ("volume", "destroy"),
    ];
    let mut seen: Vec<(String, String)> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while seen.len() < 40 {
        match tokio::time::timeout_at(deadline, events.next()).await {
            Ok(Some(Ok(e))) => {
                let kind = e.typ.map(|t| t.to_string()).unwrap_or_default();
                let action = e.action.unwrap_or_default();
                let done = kind == "volume" && action == "destroy";
                seen.push((kind, action));
                if done {
                    break;
                }
            }
            other => panic!("events stream ended early: {other:?} after {seen:?}"),
        }
    }
    let mut at = 0;
    for (kind, action) in &seen {
        if at < want.len() && want[at] == (kind.as_str(), action.as_str()) {
            at += 1;
        }
    }
    assert_eq!(at, want.len(), "events in order: {seen:?}");
    d.stop();
}
