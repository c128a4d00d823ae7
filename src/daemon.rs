//! Running berthd: directories, pid file, listeners, the actor tree,
//! signals (SIGHUP reload, SIGTERM/SIGINT shutdown) and cleanup.

use std::collections::BTreeMap;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use berth_actors::container::{
    ContainerIndex, ContainerSupervisor, ContainerSupervisorArgs, Containers, Service,
};
use berth_actors::directory::{
    CONTAINERS, EVENT_BUS, FRONT_DOOR, IMAGE_STORE, NETWORKS, PLUGINS, REGISTRY_SESSIONS, ROOT,
    VOLUMES,
};
use berth_actors::events::{EventBus, Events};
use berth_actors::image::{ImageIndex, ImageStore, ImageStoreArgs, Images};
use berth_actors::network::{NetworkIndex, NetworkSupervisor, NetworkSupervisorArgs, Networks};
use berth_actors::ports::SystemClock;
use berth_actors::registry::RegistrySupervisor;
use berth_actors::supervisor::keyed::spawn_child;
use berth_actors::supervisor::{
    ChildSpec, RestartPolicy, Supervisor, SupervisorArgs, SupervisorMsg,
};
use berth_actors::view::ViewPublisher;
use berth_actors::volume::{VolumeIndex, VolumeSupervisor, VolumeSupervisorArgs, Volumes};
use ractor::Actor;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::api::server::{FrontDoor, FrontDoorArgs};
use crate::api::{routes, ApiContext};
use crate::config::{self, reload, DaemonConfig, Flags, Loaded};
use crate::images::ImageService;
use crate::logging::LogHandle;
use crate::network::host::NetHostHandle;
use crate::sys::blobs::BlobStore;
use crate::sys::host::{engine_id, HostFacts};
use crate::sys::pidfile::PidFile;
use crate::sys::records::FsRecordStore;
use crate::sys::runtime::version as runtime_version;
use crate::sys::storage;
use crate::sys::{dirs, listeners, systemd, StartupError};

/// How long shutdown waits for in-flight requests.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything a start needs that was decided before the runtime existed.
pub struct Startup {
    pub flags: Flags,
    pub loaded: Loaded,
    pub log: LogHandle,
    pub activated_fds: Vec<RawFd>,
}

/// Temp files of atomic writes a killed berthd left (a record's save cut
/// between write and rename) in the directories berthd writes records to.
/// The shims' directories are theirs (a live shim may be writing).
fn sweep_temp_files(data_root: &Path, exec_root: &Path, image_root: &Path) {
    use crate::sys::atomic::sweep_temps;
    let subdirs = |d: PathBuf| -> Vec<PathBuf> {
        std::fs::read_dir(&d)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut dirs = vec![
        data_root.join("network").join("networks"),
        exec_root.join("dns"),
        image_root.to_path_buf(),
        image_root.join("images"),
        image_root.join("layers"),
        image_root.join("configs").join("sha256"),
    ];
    dirs.extend(subdirs(data_root.join("containers")));
    dirs.extend(subdirs(data_root.join("volumes")));
    for d in dirs {
        sweep_temps(&d);
    }
}

/// Run until shutdown. Returns the process exit code.
pub async fn run(s: Startup) -> Result<i32, StartupError> {
    // First of all: a SIGTERM that arrives while berthd starts must be
    // handled (clean shutdown), not kill the process by default action.
    let mut hup = signal(SignalKind::hangup())
        .map_err(|e| StartupError::io("installing signal handler", "SIGHUP", e))?;
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| StartupError::io("installing signal handler", "SIGTERM", e))?;
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| StartupError::io("installing signal handler", "SIGINT", e))?;
    // Connections, shims and logs all take files: the soft limit goes to
    // the hard one, and the API's connection cap follows from it.
    let nofile = crate::api::conns::raise_nofile();
    let mut cfg = s.loaded.config.clone();
    dirs::ensure_private_dir(Path::new(&cfg.data_root), 0o710)?;
    dirs::ensure_private_dir(Path::new(&cfg.exec_root), 0o700)?;
    resolve_dirs(&mut cfg);
    let pidfile = PidFile::acquire(Path::new(&cfg.pidfile))?;
    let engine = engine_id(Path::new(&cfg.data_root))
        .map_err(|e| StartupError::io("creating engine id in", &cfg.data_root, e))?;

    // Storage before listeners: a daemon that cannot store images does not serve.
    let data_root = Path::new(&cfg.data_root);
    let driver = storage::open(&cfg.storage_driver, data_root, &cfg.storage_opts)
        .map_err(StartupError::Storage)?;
    let image_root = data_root.join("image").join(driver.name());
    let records = Arc::new(
        FsRecordStore::new(&image_root)
            .map_err(|e| StartupError::io("creating", &image_root, e))?,
    );
    let blobs =
        BlobStore::new(&image_root).map_err(|e| StartupError::io("creating", &image_root, e))?;
    sweep_temp_files(data_root, Path::new(&cfg.exec_root), &image_root);
    // Container records first: their layers are kept, and their mounts too
    // (a live-restored container's root filesystem stays mounted).
    let cont_data = data_root.join("containers");
    let cont_records = crate::containers::host::load_records(&cont_data);
    let mut cont_layers: std::collections::BTreeSet<String> =
        cont_records.iter().map(|r| r.layer.clone()).collect();
    // A directory without any record is a create that berthd did not live
    // to finish (killed between preparing the storage and saving the
    // record): it and its layer go.
    for orphan in crate::containers::host::unrecorded_dirs(&cont_data) {
        let name = orphan
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        warn!(dir = %orphan.display(), "removing a container directory no record names (a create that did not finish)");
        if let Err(e) = driver.remove(&name) {
            warn!(layer = %name, "removing its layer: {e}");
        }
        if let Err(e) = std::fs::remove_dir_all(&orphan) {
            warn!(dir = %orphan.display(), "removing it: {e}");
        }
    }
    // A container whose record is unreadable keeps its layer (named by its
    // ID) until someone looks at it.
    if let Ok(rd) = std::fs::read_dir(&cont_data) {
        cont_layers.extend(
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned()),
        );
    }
    driver.reconcile_mounts(&cont_layers);
    crate::containers::subpath::sweep(Path::new(&cfg.exec_root));
    crate::build::context::sweep(&data_root.join("tmp"));
    crate::images::remove_orphan_layers(&*records, &*driver, &cont_layers);
    crate::images::remove_orphan_blobs(&*records, &blobs);

    let runtime_path = cfg
        .all_runtimes()
        .get(&cfg.default_runtime)
        .map(|r| r.path.clone())
        .unwrap_or_else(|| "runc".into());
    let init_path = if cfg.init_path.is_empty() {
        "docker-init".to_string()
    } else {
        cfg.init_path.clone()
    };
    let host = tokio::task::spawn_blocking(move || HostFacts::probe(&runtime_path, &init_path))
        .await
        .unwrap_or_default();
    let mut warnings = s.loaded.warnings.clone();
    // Known runtime breakouts: refuse the worst, warn about the others.
    if let Some(v) = &host.runc {
        match runtime_version::judge(&cfg.default_runtime, &v.version, &v.commit) {
            runtime_version::Verdict::Refuse(m) => return Err(StartupError::Runtime(m)),
            runtime_version::Verdict::Warn(w) => warnings.push(w),
            runtime_version::Verdict::Ok => {}
        }
    }

    // Listeners last: a daemon that cannot start leaves no socket behind.
    let (bound, listener_warnings) = listeners::bind_all(&cfg, &s.activated_fds)?;
    let bound = Arc::new(bound);
    warnings.extend(listener_warnings);
    warnings.extend(host.warnings());

    let (config_tx, config_rx) = watch::channel(Arc::new(cfg.clone()));
    let (view_pub, view) = ViewPublisher::new();
    let events = Events::new(Arc::new(SystemClock));
    let (index_tx, index_rx) = watch::channel(Arc::new(ImageIndex::default()));
    let index_tx = Arc::new(index_tx);
    let images = Images::new(index_rx);
    let image_service = Arc::new(ImageService {
        gc: crate::images::gc::Gc::new(images.clone(), driver.clone(), blobs.clone()),
        images,
        driver: driver.clone(),
        blobs,
        events: events.clone(),
        downloads: Default::default(),
    });
    // Networks: records, the predefined networks, the host side.
    let (cindex_tx, cindex_rx) = watch::channel(Arc::new(ContainerIndex::default()));
    let cindex_tx = Arc::new(cindex_tx);
    let img_users_rx = cindex_rx.clone();
    // A cluster store: this node's identity and the store (joined by the
    // ClusterMembership actor once the tree runs; never waited for here).
    let hostname = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let joined = crate::cluster::open(&cfg, &engine, &hostname)
        .await
        .map_err(StartupError::Network)?;
    let net = open_networks(&cfg, &cont_records, joined.as_ref().map(|j| j.vtep)).await?;
    let (nindex_tx, nindex_rx) = watch::channel(Arc::new(NetworkIndex::default()));
    let networks = Networks { index: nindex_rx };
    let net_service = Arc::new(crate::network::NetworkService {
        networks: networks.clone(),
        host: net.host.clone(),
        dns: crate::network::dns::Dns::new(net.dns_dir.clone(), networks),
        netns_dir: net.netns_dir.clone(),
    });
    let net_args = NetworkSupervisorArgs {
        host: Arc::new(NetHostHandle(net.host.clone())),
        index: Arc::new(nindex_tx),
        events: events.clone(),
        initial: Arc::new(std::sync::Mutex::new(Some(net.records))),
        cluster: joined.as_ref().map(|j| j.cluster.clone()),
        containers: Some(cindex_rx.clone()),
    };
    let live_sandboxes: Vec<_> = cont_records
        .iter()
        .filter(|r| r.state.status.is_live() && !r.state.sandbox.is_empty())
        .cloned()
        .collect();
    // Volumes: records (their users recounted from the containers'), the
    // local driver.
    let vol_root = data_root.join("volumes");
    dirs::ensure_private_dir(&vol_root, 0o701)?;
    let mut vol_records = crate::volumes::load_records(&vol_root);
    for v in vol_records.iter_mut() {
        let using = cont_records.iter().filter(|c| {
            c.mounts
                .iter()
                .any(|m| m.kind == "volume" && m.name == v.name)
        });
        v.users = using.clone().map(|c| c.id.clone()).collect();
        // Mounted by the containers still running (live-restore).
        v.active = using
            .filter(|c| c.state.status.is_live())
            .map(|c| c.id.clone())
            .collect();
    }
    let vol_host = Arc::new(crate::volumes::host::VolHost {
        root: vol_root.clone(),
    });
    let (vindex_tx, vindex_rx) = watch::channel(Arc::new(VolumeIndex::default()));
    let vol_service = Arc::new(crate::volumes::VolumeService {
        volumes: Volumes { index: vindex_rx },
        host: vol_host.clone(),
    });
    let vol_args = VolumeSupervisorArgs {
        host: vol_host,
        index: Arc::new(vindex_tx),
        events: events.clone(),
        initial: Arc::new(std::sync::Mutex::new(Some(vol_records))),
    };
    // Containers: the host adapter, the read model, the records on disk.
    let cont_host = Arc::new(crate::containers::host::Host {
        data_dir: cont_data,
        state_dir: Path::new(&cfg.exec_root).join("containers"),
        exec_root: Path::new(&cfg.exec_root).to_path_buf(),
        driver: driver.clone(),
        config: config_rx.clone(),
        facts: host.clone(),
        shim_bin: crate::containers::host::find_shim(),
        network: net_service.clone(),
        volumes: vol_service.clone(),
        containers: cindex_rx.clone(),
    });
    for d in [&cont_host.data_dir, &cont_host.state_dir] {
        dirs::ensure_private_dir(d, 0o710)?;
    }
    let container_service = Arc::new(crate::containers::ContainerService {
        containers: Containers { index: cindex_rx },
        images: image_service.clone(),
        host: cont_host.clone(),
        config: config_rx.clone(),
        facts: host.clone(),
        execs: Default::default(),
        logs: berth_actors::logs::LogSessions::default(),
    });
    let exec_table = container_service.execs.table.clone();
    let log_args = berth_actors::logs::LogSupervisorArgs {
        files: Arc::new(crate::containers::logs::FileLogs),
        index: container_service.containers.index.clone(),
        sessions: container_service.logs.clone(),
    };
    let cont_args = ContainerSupervisorArgs {
        host: cont_host.clone(),
        index: cindex_tx,
        networks: net_service.networks.clone(),
        events: events.clone(),
        view: view_pub.clone(),
        initial: Arc::new(std::sync::Mutex::new(Some(cont_records))),
        live_restore: cfg.live_restore,
        // Under the ContainerSupervisor: exec instances (their actors come
        // back over their records) and log streams (they resume at their
        // positions).
        services: vec![
            Service {
                name: berth_actors::directory::EXECS,
                spawn: Arc::new(move |parent| {
                    spawn_child(
                        berth_actors::directory::EXECS.to_string(),
                        berth_actors::exec::ExecSupervisor,
                        exec_table.clone(),
                        parent,
                    )
                }),
            },
            Service {
                name: berth_actors::directory::LOG_STREAMS,
                spawn: Arc::new(move |parent| {
                    spawn_child(
                        berth_actors::directory::LOG_STREAMS.to_string(),
                        berth_actors::logs::LogSupervisor,
                        log_args.clone(),
                        parent,
                    )
                }),
            },
        ],
    };
    let release_svc = image_service.clone();
    let shutdown = CancellationToken::new();
    let ctx = Arc::new(ApiContext {
        config: config_rx,
        warnings,
        images: image_service,
        containers: container_service.clone(),
        networks: net_service.clone(),
        volumes: vol_service.clone(),
        host,
        engine_id: engine.clone(),
        view,
        events: events.clone(),
        routes: routes::table(s.flags.testing_chaos_control),
        shutdown: shutdown.clone(),
        connections: TaskTracker::new(),
        event_listeners: AtomicUsize::new(0),
        conns: crate::api::conns::ConnLimit::new(crate::api::conns::ConnLimit::cap_for(nofile)),
        cluster: joined.as_ref().map(|j| j.cluster.info.clone()),
    });
    if s.flags.testing_chaos_control {
        warn!("--testing-chaos-control is set: POST /_berth/chaos/kill can kill actors of this daemon");
    }

    let plugin_port: Arc<dyn berth_actors::plugin::PluginPort> =
        Arc::new(crate::sys::plugins::HostPlugins {
            discovery: crate::sys::plugins::Discovery::from_env(),
        });
    // As dockerd: berthd does not serve with an authorization plugin that
    // cannot be reached.
    for p in &ctx.config().authorization_plugins {
        if let Err(e) = berth_actors::plugin::probe(
            plugin_port.as_ref(),
            p,
            berth_actors::plugin::authz::INTERFACE,
        )
        .await
        {
            for l in bound.iter() {
                l.cleanup();
            }
            return Err(StartupError::Authz(e));
        }
    }
    let registry_port: Arc<dyn berth_actors::registry::RegistryPort> =
        Arc::new(crate::images::session::OciRegistry {
            images: ctx.images.clone(),
            config: ctx.config.clone(),
        });
    let fd_ctx = ctx.clone();
    let metrics_args = crate::metrics::MetricsServerArgs { ctx: ctx.clone() };
    let fd_listeners = bound.clone();
    let (img_records, img_events, img_driver) = (records.clone(), events.clone(), driver.clone());
    // The store decides "in use" from the containers' read model.
    let image_users: berth_actors::image::ImageUsers = {
        let cindex = img_users_rx;
        Arc::new(move || {
            cindex
                .borrow()
                .by_id
                .values()
                .map(|c| berth_actors::image::ImageUser {
                    container: c.id.clone(),
                    image: c.image.clone(),
                    live: c.state.status.is_live(),
                })
                .collect()
        })
    };
    let cluster_child = joined.map(|j| {
        let args = (
            j.cluster.clone(),
            j.info.clone(),
            net_service.networks.index.clone(),
        );
        ChildSpec::new(
            berth_actors::directory::CLUSTER,
            RestartPolicy::infrastructure(),
            true,
            move || {
                (
                    berth_actors::cluster::ClusterMembership,
                    berth_actors::cluster::ClusterArgs {
                        cluster: args.0.clone(),
                        info: args.1.clone(),
                        networks: args.2.clone(),
                    },
                )
            },
        )
    });
    // Every EventBus incarnation serves the one journal the publishers
    // write to: a restart loses no event, history or stream.
    let journal = events.journal();
    let mut children = vec![
        ChildSpec::new(
            EVENT_BUS,
            RestartPolicy::infrastructure(),
            true,
            move || (EventBus, journal.clone()),
        ),
        ChildSpec::new(PLUGINS, RestartPolicy::infrastructure(), true, move || {
            (berth_actors::plugin::PluginSupervisor, plugin_port.clone())
        }),
        ChildSpec::new(
            REGISTRY_SESSIONS,
            RestartPolicy::infrastructure(),
            true,
            move || (RegistrySupervisor, registry_port.clone()),
        ),
        // Before the front door: the API serves images from the first request.
        ChildSpec::new(
            IMAGE_STORE,
            RestartPolicy::infrastructure(),
            true,
            move || {
                let d = img_driver.clone();
                (
                    ImageStore,
                    ImageStoreArgs {
                        records: img_records.clone(),
                        index: index_tx.clone(),
                        view: view_pub.clone(),
                        events: img_events.clone(),
                        present_layers: Arc::new(move || d.list().unwrap_or_default()),
                        release: {
                            let svc = release_svc.clone();
                            Arc::new(move |r| {
                                let svc = svc.clone();
                                tokio::task::spawn_blocking(move || svc.release(&r));
                            })
                        },
                        users: image_users.clone(),
                    },
                )
            },
        ),
        ChildSpec::new(VOLUMES, RestartPolicy::infrastructure(), true, move || {
            (VolumeSupervisor, vol_args.clone())
        }),
        // Networks before containers: a restored container finds its
        // networks; the firewall is written once all are known.
        ChildSpec::new(NETWORKS, RestartPolicy::infrastructure(), true, move || {
            (NetworkSupervisor, net_args.clone())
        }),
        // Containers before the front door too: records are restored (in
        // parallel, shims adopted) before the first request is served.
        ChildSpec::new(
            CONTAINERS,
            RestartPolicy::infrastructure(),
            true,
            move || (ContainerSupervisor, cont_args.clone()),
        ),
        ChildSpec::new(
            FRONT_DOOR,
            RestartPolicy::infrastructure(),
            true,
            move || {
                (
                    FrontDoor,
                    FrontDoorArgs {
                        ctx: fd_ctx.clone(),
                        listeners: fd_listeners.clone(),
                    },
                )
            },
        ),
        ChildSpec::new(
            crate::metrics::METRICS,
            RestartPolicy::infrastructure(),
            true,
            move || (crate::metrics::MetricsServer, metrics_args.clone()),
        ),
    ];
    if let Some(c) = cluster_child {
        let at = children
            .iter()
            .position(|c| c.name == NETWORKS)
            .map_or(children.len(), |i| i + 1);
        children.insert(at, c);
    }
    let (root, root_handle) = Actor::spawn(
        Some(ROOT.to_string()),
        Supervisor,
        SupervisorArgs { children },
    )
    .await
    .map_err(|e| {
        // Leave nothing behind: the sockets were bound for this start.
        for l in bound.iter() {
            l.cleanup();
        }
        StartupError::Listener(format!("starting the actor tree: {e}"))
    })?;
    // Running containers on user-defined networks stay served by
    // berth-dns (which outlived us, or is started now).
    for r in &live_sandboxes {
        cont_host.adopt_network(r);
    }
    net_service.dns.set_ready();
    let dns_follow = net_service.dns.follow();
    let dns_watch = {
        let dns = net_service.dns.clone();
        tokio::spawn(async move {
            // berth-dns is started again if it dies.
            loop {
                let d = dns.clone();
                let r = tokio::task::spawn_blocking(move || {
                    d.ensure_server(&crate::network::dns::binary())
                })
                .await;
                if let Ok(Err(e)) = r {
                    warn!("embedded DNS server: {e}");
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        })
    };
    info!(version = env!("CARGO_PKG_VERSION"), id = %engine, "berthd started; API listening");
    systemd::notify_ready();

    let mut root_handle = root_handle;
    let mut code = 0;
    loop {
        tokio::select! {
            _ = hup.recv() => reload_config(&s, &config_tx, &events, &ctx).await,
            _ = term.recv() => { info!("received SIGTERM; shutting down"); break; }
            _ = int.recv() => { info!("received SIGINT; shutting down"); break; }
            _ = &mut root_handle => {
                error!("the root supervisor stopped (a child exceeded its restart limit); exiting");
                code = 1;
                break;
            }
        }
    }

    // Shutdown: a third interrupt forces exit without cleanup.
    systemd::notify_stopping();
    let forced = tokio::spawn(async move {
        let mut n = 1;
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            n += 1;
            if n >= 3 {
                eprintln!("Forcing berthd shutdown without cleanup; 3 interrupts received");
                std::process::exit(130);
            }
        }
    });
    if code == 0 {
        if let Some(fd) = ractor::ActorRef::<crate::api::server::FrontDoorMsg>::where_is(FRONT_DOOR)
        {
            let _ = ractor::call_t!(fd, crate::api::server::FrontDoorMsg::StopAccepting, 2000);
        }
    }
    events.close_all();
    shutdown.cancel();
    // Open `docker logs` streams end now, as their connections drain.
    container_service.logs.close_all();
    ctx.connections.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, ctx.connections.wait())
        .await
        .is_err()
    {
        warn!(
            "in-flight requests did not finish within {:?}; closing them",
            DRAIN_TIMEOUT
        );
    }
    if code == 0 {
        stop_containers(&ctx).await;
        let _ = ractor::call_t!(root, SupervisorMsg::Shutdown, 5000);
        dns_watch.abort();
        dns_follow.abort();
        if !ctx.config().live_restore {
            take_down_networks(&ctx).await;
        }
    }
    for l in bound.iter() {
        l.cleanup();
    }
    drop(pidfile);
    forced.abort();
    info!("berthd stopped");
    Ok(code)
}

/// The networks' records, with the predefined ones, and their host side:
/// the namespace directory, the netlink connection, the firewall.
struct OpenedNetworks {
    records: Vec<berth_actors::network::NetworkRecord>,
    host: Arc<crate::network::host::NetHost>,
    netns_dir: std::path::PathBuf,
    dns_dir: std::path::PathBuf,
}

async fn open_networks(
    cfg: &DaemonConfig,
    containers: &[berth_actors::container::ContainerRecord],
    vtep: Option<std::net::Ipv4Addr>,
) -> Result<OpenedNetworks, StartupError> {
    use crate::network::{self as n, firewall::Nftables, host::NetHost};
    let exec_root = Path::new(&cfg.exec_root);
    let dir = Path::new(&cfg.data_root).join("network").join("networks");
    dirs::ensure_private_dir(&dir, 0o700)?;
    let netns_dir = n::netns::dir(exec_root);
    n::netns::prepare_dir(&netns_dir).map_err(|e| StartupError::io("preparing", &netns_dir, e))?;
    if cfg.ip_forward {
        if let Err(e) = std::fs::write("/proc/sys/net/ipv4/ip_forward", "1") {
            warn!("enabling ip_forward: {e}");
        }
    }
    let nl = n::link::connect().map_err(|e| StartupError::io("opening", "netlink", e))?;
    let proxy = cfg
        .userland_proxy
        .then(|| n::proxy::binary(&cfg.userland_proxy_path));
    let net_host = NetHost::new(
        dir.clone(),
        exec_root.to_path_buf(),
        proxy,
        n::driver::Bridge::new(nl, cfg.ip_forward, !cfg.userland_proxy),
        Box::new(Nftables::new(
            n::table_name(exec_root),
            cfg.iptables,
            cfg.userland_proxy,
            cfg.ip6tables,
        )),
        {
            // Its own netlink connection: its dumps never meet the bridges'.
            let nl = n::link::connect().map_err(|e| StartupError::io("opening", "netlink", e))?;
            n::overlay::Overlay::new(nl.clone(), n::driver::Bridge::new(nl, false, false), vtep)
        },
    );
    let host = Arc::new(net_host);
    // Endpoints of containers that are not running any more are stale.
    // One whose shim is still there may run although its record says not
    // (a start berthd did not live to record): its actor decides, keeping
    // the endpoints or leaving them.
    let shims = exec_root.join("containers");
    let live: std::collections::BTreeSet<&str> = containers
        .iter()
        .filter(|r| r.state.status.is_live() || shims.join(&r.id).exists())
        .map(|r| r.id.as_str())
        .collect();
    let mut records = n::load_records(&dir);
    // Their host side goes too (veths, published ports): below, once the
    // host handle exists.
    let mut stale_endpoints = Vec::new();
    for r in records.iter_mut() {
        let gone: Vec<String> = r
            .endpoints
            .keys()
            .filter(|id| !live.contains(id.as_str()))
            .cloned()
            .collect();
        for id in gone {
            if let Some(ep) = r.endpoints.remove(&id) {
                stale_endpoints.push((r.clone(), ep));
            }
        }
    }
    let named = if cfg.bridge.is_empty() || cfg.bridge == "none" {
        None
    } else {
        n::link::ipv4_of(&host.bridge.nl, &cfg.bridge)
            .await
            .map_err(StartupError::Network)?
    };
    let stale_bridge: Vec<berth_actors::network::NetworkRecord> = if cfg.bridge == "none" {
        records
            .iter()
            .filter(|r| r.name == "bridge")
            .cloned()
            .collect()
    } else {
        vec![]
    };
    let records = n::with_predefined(records, cfg, named).map_err(StartupError::Network)?;
    let handle = NetHostHandle(host.clone());
    // `bridge: none`: no default bridge. One a previous run made goes, with
    // its device and rules.
    for r in &stale_bridge {
        use berth_actors::ports::NetworkHost;
        let _ = handle.teardown(r).await;
        let _ = handle.delete(&r.id);
    }
    // An unreadable record's bridge (named as berth names a network's
    // bridge) cannot be served: it goes, and its stand-in has none.
    for r in records
        .iter()
        .filter(|r| r.labels.contains_key(n::UNREADABLE_LABEL))
    {
        let bridge = format!("br-{}", &r.id[..12]);
        if Path::new("/sys/class/net").join(&bridge).exists() {
            warn!(network = %r.name, %bridge, "removing the bridge of an unreadable network record");
            if let Err(e) = n::link::delete(&host.bridge.nl, &bridge).await {
                warn!(%bridge, "removing it: {e}");
            }
        }
    }
    for (r, ep) in &stale_endpoints {
        use berth_actors::ports::NetworkHost;
        info!(network = %r.name, container = %ep.container, "removing the endpoint of a container that no longer runs");
        handle.detach(r, ep).await;
    }
    for r in &records {
        use berth_actors::ports::NetworkHost;
        handle
            .save(r)
            .map_err(|e| StartupError::io("saving network", &r.name, e))?;
    }
    let dns_dir = exec_root.join("dns");
    dirs::ensure_private_dir(&dns_dir, 0o700)?;
    Ok(OpenedNetworks {
        records,
        host,
        netns_dir,
        dns_dir,
    })
}

/// Without live-restore, nothing of berth's networking stays on the host
/// once its containers are stopped: bridges, the firewall table, the
/// namespace directory. The next start sets them up again.
async fn take_down_networks(ctx: &ApiContext) {
    let n = &ctx.networks;
    let named = ctx.config().bridge.clone();
    for r in n.networks.snapshot().by_id.values() {
        // A bridge the operator named (`bridge`) is theirs: it stays.
        if r.is_bridge() && (r.name != "bridge" || named.is_empty()) {
            if let Err(e) = n.host.bridge.delete_link(&r.bridge).await {
                warn!(network = %r.name, "removing the bridge: {e}");
            }
        }
    }
    n.host.firewall.remove_all();
    n.dns.stop_server();
    crate::network::netns::release_dir(&n.netns_dir);
}

/// Without live-restore, berthd takes its containers down with it, like
/// dockerd: each gets its stop signal and its stop timeout, all within
/// `shutdown-timeout`; then SIGKILL. With live-restore they keep running.
async fn stop_containers(ctx: &ApiContext) {
    let cfg = ctx.config();
    if cfg.live_restore {
        info!("live-restore: leaving the containers running");
        return;
    }
    let live: Vec<String> = ctx
        .containers
        .containers
        .snapshot()
        .by_id
        .values()
        .filter(|r| {
            r.state.status.is_live()
                || r.state.status == berth_actors::container::Status::Restarting
        })
        .map(|r| r.id.clone())
        .collect();
    if live.is_empty() {
        return;
    }
    info!(
        containers = live.len(),
        "stopping the containers (live-restore is off)"
    );
    let limit = Duration::from_secs(cfg.shutdown_timeout.max(0) as u64);
    let mut tasks = Vec::new();
    for id in live {
        let t = cfg.shutdown_timeout;
        tasks.push(tokio::spawn(async move {
            let stop = Containers::ask(&id, |reply| berth_actors::container::ContainerMsg::Stop {
                signal: None,
                timeout: Some(t),
                reply,
            });
            if tokio::time::timeout(limit + Duration::from_secs(2), stop)
                .await
                .is_err()
            {
                warn!(%id, "the container did not stop in time");
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// The data-root and exec-root without symlinks (`/var/run` is a link to
/// `/run` on Debian): the kernel reports real paths (mountinfo, a process's
/// cwd) and berthd compares its own paths with them; dockerd resolves its
/// root the same way.
fn resolve_dirs(cfg: &mut DaemonConfig) {
    for dir in [&mut cfg.data_root, &mut cfg.exec_root] {
        if let Ok(real) = std::fs::canonicalize(&*dir) {
            *dir = real.display().to_string();
        }
    }
}

/// SIGHUP: re-read the file with the original flags; apply the reloadable
/// options; a file that fails validation changes nothing.
async fn reload_config(
    s: &Startup,
    tx: &watch::Sender<Arc<DaemonConfig>>,
    events: &Events,
    ctx: &ApiContext,
) {
    let Some(file) = s
        .loaded
        .file
        .clone()
        .or_else(|| s.flags.config_file.clone())
        .or_else(|| {
            Path::new(config::DEFAULT_CONFIG_FILE)
                .exists()
                .then(|| config::DEFAULT_CONFIG_FILE.into())
        })
    else {
        info!("SIGHUP: no configuration file to reload");
        return;
    };
    let result = (|| {
        let text = std::fs::read_to_string(&file).map_err(|e| config::ConfigError::File {
            file: file.display().to_string(),
            reason: e.to_string(),
        })?;
        let file_map = config::parse_file_text(&file.display().to_string(), &text)?;
        config::merge_and_validate(&file.display().to_string(), s.flags.to_json()?, file_map)
    })();
    match result {
        Err(e) => error!("error reloading the configuration; nothing changed: {e}"),
        Ok((mut new, _)) => {
            resolve_dirs(&mut new);
            // As dockerd: every authorization plugin must answer first.
            for p in &new.authorization_plugins {
                if let Err(e) =
                    berth_actors::plugin::get(p, berth_actors::plugin::authz::INTERFACE).await
                {
                    error!("error reloading the configuration; nothing changed: failed to validate authorization plugin: {e}");
                    return;
                }
            }
            let current = tx.borrow().clone();
            let (next, ignored) = reload::apply(&current, &new);
            if !ignored.is_empty() {
                warn!(
                    "reload: these options need a restart to change: {}",
                    ignored.join(", ")
                );
            }
            s.log.set(&next);
            let mut attrs: BTreeMap<String, String> = reload::event_attributes(&next);
            attrs.insert("name".into(), ctx.host.hostname.clone());
            tx.send_replace(Arc::new(next));
            events.publish("daemon", "reload", &ctx.engine_id, attrs);
            info!(file = %file.display(), "configuration reloaded");
        }
    }
}
