//! The image builder (`POST /build`, the legacy builder's API): so far the
//! Dockerfile parser, its variable substitution and the `.dockerignore`
//! matcher; the steps, the build cache and the endpoint come next (issue 14).

pub mod dockerfile;
pub mod expand;
pub mod ignore;
