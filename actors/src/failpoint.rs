//! Crash points for tests: berthd kills itself (SIGKILL) when it reaches a
//! named point before or after a durable step, so a test can prove that the
//! next berthd finds every object usable or removable and nothing left
//! behind (`tests/failpoints.rs`).
//!
//! Off unless the environment names an arming file:
//! `BERTH_TEST_FAILPOINTS=/path/to/file`. Each time a point is reached the
//! file is read; a line holding the point's name kills the process there.
//! The file is read at every point reached, so a test arms a point after its
//! setup (and nothing but a test sets the variable).
//!
//! Every point is listed in [`POINTS`]; a unit test checks that the sources
//! name no other.

use std::sync::OnceLock;

/// The environment variable that names the arming file.
pub const ENV: &str = "BERTH_TEST_FAILPOINTS";

/// Every point, in the order of the steps they stand between.
pub const POINTS: &[&str] = &[
    // container create: layer and directory made / record saved
    "container-create:prepared",
    "container-create:saved",
    // container start: endpoints made / shim made the process / process
    // started / record saved
    "container-start:network",
    "container-start:created",
    "container-start:started",
    "container-start:saved",
    // a container's exit: read from the shim / recorded, not acknowledged
    "container-exit:read",
    "container-exit:saved",
    // container rm: `Removing` saved (rm -f of a running one) / network and
    // runtime state gone / layer removed, directory kept / all removed
    "container-rm:removing",
    "container-rm:released",
    "container-rm:layer-removed",
    "container-rm:removed",
    // container rename: before / after the record's save
    "container-rename:before",
    "container-rename:saved",
    // image commit (pull, load, build, commit, import): layer records
    // written / config written / image record written, no tag yet
    "image-commit:layers",
    "image-commit:config",
    "image-commit:image",
    // commit: the container's diff stored as a layer, not yet an image
    "commit:layer",
    // pull / load: blobs stored, layers not applied
    "pull:blobs",
    "load:blobs",
    // push: layers uploaded, manifest not put
    "push:layers",
    // build: a step's image committed, the next step not begun
    "build:step",
    // network create: the bridge made / the record saved
    "network-create:bridge",
    "network-create:saved",
    // network connect: the endpoint (veth) made / the record saved
    "network-connect:endpoint",
    "network-connect:saved",
    // network disconnect: the endpoint removed / the record saved
    "network-disconnect:removed",
    "network-disconnect:saved",
    // network rm: the bridge removed, the record not yet
    "network-rm:bridge",
    // volume create: the directory made / the record saved
    "volume-create:dir",
    "volume-create:saved",
    // volume rm: the volume's directory renamed away (record and data
    // gone from the listing), the data not yet removed
    "volume-rm:renamed",
];

type Crash = fn(&str);

static CRASH: OnceLock<Crash> = OnceLock::new();

/// How the process kills itself (the binary installs a SIGKILL of itself;
/// without it, an abort).
pub fn install(crash: Crash) {
    let _ = CRASH.set(crash);
}

fn armed_file() -> Option<&'static str> {
    static FILE: OnceLock<Option<String>> = OnceLock::new();
    FILE.get_or_init(|| std::env::var(ENV).ok().filter(|s| !s.is_empty()))
        .as_deref()
}

/// Reached a point: killed there when the arming file names it.
pub fn hit(point: &'static str) {
    debug_assert!(POINTS.contains(&point), "failpoint {point} is not listed");
    let Some(file) = armed_file() else {
        return;
    };
    let Ok(armed) = std::fs::read_to_string(file) else {
        return;
    };
    if armed.lines().any(|l| l.trim() == point) {
        tracing::error!(failpoint = point, "failpoint reached: killing berthd");
        match CRASH.get() {
            Some(crash) => crash(point),
            None => std::process::abort(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `failpoint::hit("...")` in the sources names a listed point,
    /// and every listed point is reached somewhere.
    #[test]
    fn every_point_is_listed_and_used() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut used = std::collections::BTreeSet::new();
        let mut stack = vec![root.join("src"), root.join("actors/src")];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("failpoint.rs") {
                    let text = std::fs::read_to_string(&p).unwrap();
                    for part in text.split("failpoint::hit(\"").skip(1) {
                        let name = part.split('"').next().unwrap().to_string();
                        assert!(
                            POINTS.contains(&name.as_str()),
                            "{}: {name} is not in POINTS",
                            p.display()
                        );
                        used.insert(name);
                    }
                }
            }
        }
        let unused: Vec<_> = POINTS.iter().filter(|p| !used.contains(**p)).collect();
        assert!(unused.is_empty(), "points never reached: {unused:?}");
    }
}
