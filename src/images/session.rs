//! The registry port of the RegistrySession actors
//! (`berth_actors::registry`): a [`HostSession`] is what one session holds
//! for one set of credentials: the OCI clients of its host and mirrors
//! (connections and token cache) and an HTTP client for logins. The
//! actors decide and own the operations; this does the HTTP.

use std::sync::Arc;

use berth_actors::image::{ImageInfo, Reference};
use berth_actors::ports::BoxFuture;
use berth_actors::registry::{
    Credentials, HostClient, Job, Progress as ProgressTx, PushTarget, RegistryError, RegistryPort,
};
use berth_actors::ErrorKind;
use hyper::StatusCode;
use oci_client::secrets::RegistryAuth;
use serde_json::{json, Value};
use tokio::sync::watch;

use super::pull::{Progress, PullError};
use super::ImageService;
use crate::config::DaemonConfig;
use crate::sys::registry::{self, Clients};

/// Makes a session's clients: the image store to pull into and push from,
/// and the live configuration (mirrors, insecure registries, limits).
pub struct OciRegistry {
    pub images: Arc<ImageService>,
    pub config: watch::Receiver<Arc<DaemonConfig>>,
}

impl RegistryPort for OciRegistry {
    fn client(&self, host: &str, credentials: &Credentials) -> Arc<dyn HostClient> {
        Arc::new(HostSession(Arc::new(Inner {
            host: host.to_string(),
            credentials: credentials.clone(),
            images: self.images.clone(),
            config: self.config.clone(),
            clients: Clients::default(),
            http: std::sync::OnceLock::new(),
        })))
    }
}

/// The credentials as the OCI client takes them.
fn registry_auth(c: &Credentials) -> RegistryAuth {
    match c {
        Credentials::Anonymous => RegistryAuth::Anonymous,
        Credentials::Basic { username, password } => {
            RegistryAuth::Basic(username.clone(), password.clone())
        }
        Credentials::Bearer(t) => RegistryAuth::Bearer(t.clone()),
    }
}

/// One host under one set of credentials.
pub struct HostSession(Arc<Inner>);

struct Inner {
    host: String,
    credentials: Credentials,
    images: Arc<ImageService>,
    config: watch::Receiver<Arc<DaemonConfig>>,
    clients: Clients,
    http: std::sync::OnceLock<reqwest::Client>,
}

fn reg(e: PullError) -> RegistryError {
    RegistryError::new(e.0, e.1)
}

fn parse(reference: &str) -> Result<Reference, RegistryError> {
    Reference::parse(reference)
        .map_err(|e| RegistryError::new(ErrorKind::InvalidParameter, e.to_string()))
}

impl Inner {
    fn config(&self) -> Arc<DaemonConfig> {
        self.config.borrow().clone()
    }

    fn auth(&self) -> RegistryAuth {
        registry_auth(&self.credentials)
    }

    /// `POST /auth`: the credentials against the registry's `/v2/` (and
    /// its token realm).
    async fn login(&self) -> Result<Value, RegistryError> {
        let (user, pass) = match &self.credentials {
            Credentials::Basic { username, password } => (username.clone(), password.clone()),
            _ => (String::new(), String::new()),
        };
        let cfg = self.config();
        let scheme = if registry::is_insecure(&self.host, &cfg) {
            "http"
        } else {
            "https"
        };
        let api_host = if self.host == "docker.io" {
            "registry-1.docker.io"
        } else {
            &self.host
        };
        let url = format!("{scheme}://{api_host}/v2/");
        let client = match self.http.get() {
            Some(c) => c.clone(),
            None => {
                let c = reqwest::Client::builder()
                    .timeout(std::time::Duration::from_secs(30))
                    .build()
                    .map_err(|e| RegistryError::new(ErrorKind::System, e.to_string()))?;
                self.http.get_or_init(|| c).clone()
            }
        };
        let unreachable = |e: reqwest::Error| {
            RegistryError::new(ErrorKind::Unavailable, format!("Get \"{url}\": {e}"))
        };
        let resp = client
            .get(&url)
            .basic_auth(&user, Some(&pass))
            .send()
            .await
            .map_err(unreachable)?;
        let status = resp.status();
        if status.is_success() {
            return Ok(json!({"IdentityToken": "", "Status": "Login Succeeded"}));
        }
        // Token registries: ask the realm with the credentials.
        let challenge = resp
            .headers()
            .get("WWW-Authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        if status == StatusCode::UNAUTHORIZED
            && challenge.to_ascii_lowercase().starts_with("bearer")
        {
            let field = |k: &str| {
                challenge.split(',').find_map(|p| {
                    let p = p
                        .trim()
                        .trim_start_matches("Bearer ")
                        .trim_start_matches("bearer ");
                    p.strip_prefix(&format!("{k}="))
                        .map(|v| v.trim_matches('"').to_string())
                })
            };
            if let Some(realm) = field("realm") {
                let mut req = client.get(&realm).basic_auth(&user, Some(&pass));
                if let Some(svc) = field("service") {
                    req = req.query(&[("service", svc)]);
                }
                let tr = req.send().await.map_err(unreachable)?;
                if tr.status().is_success() {
                    let v: Value = tr.json().await.unwrap_or(Value::Null);
                    let token = v["refresh_token"].as_str().unwrap_or_default();
                    return Ok(json!({"IdentityToken": token, "Status": "Login Succeeded"}));
                }
            }
        }
        Err(RegistryError::new(
            if status == StatusCode::UNAUTHORIZED {
                ErrorKind::Unauthorized
            } else {
                ErrorKind::System
            },
            format!(
                "login attempt to {url} failed with status: {} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            ),
        ))
    }
}

impl HostClient for HostSession {
    fn pull(
        &self,
        reference: String,
        progress: ProgressTx,
    ) -> BoxFuture<Result<Job, RegistryError>> {
        let me = self.0.clone();
        Box::pin(async move {
            let reference = parse(&reference)?;
            let cfg = me.config();
            let prepared = super::pull::prepare(reference, me.auth(), &cfg, &me.clients)
                .await
                .map_err(reg)?;
            let job: Job = Box::pin(async move {
                super::pull::run(me.images.clone(), prepared, Progress(progress))
                    .await
                    .map(|_| ())
                    .map_err(reg)
            });
            Ok(job)
        })
    }

    fn push(&self, targets: Vec<PushTarget>, progress: ProgressTx) -> Job {
        let me = self.0.clone();
        Box::pin(async move {
            let cfg = me.config();
            for t in targets {
                let reference = parse(&t.reference)?;
                let info: Option<Arc<ImageInfo>> =
                    me.images.images.snapshot().images.get(&t.image_id).cloned();
                let info = info.ok_or_else(|| {
                    RegistryError::new(
                        ErrorKind::NotFound,
                        format!(
                            "An image does not exist locally with the tag: {}",
                            reference.familiar()
                        ),
                    )
                })?;
                super::push::run(
                    me.images.clone(),
                    info,
                    reference,
                    me.auth(),
                    &cfg,
                    &me.clients,
                    Progress(progress.clone()),
                )
                .await
                .map_err(reg)?;
            }
            Ok(())
        })
    }

    fn distribution(&self, reference: String) -> BoxFuture<Result<Value, RegistryError>> {
        let me = self.0.clone();
        Box::pin(async move {
            let reference = parse(&reference)?;
            let cfg = me.config();
            super::pull::distribution(reference, me.auth(), &cfg, &me.clients)
                .await
                .map_err(reg)
        })
    }

    fn login(&self) -> BoxFuture<Result<Value, RegistryError>> {
        let me = self.0.clone();
        Box::pin(async move { me.login().await })
    }
}
