//! Layer tars: decompression (gzip, zstd, none) and the secure apply.

mod apply;
mod decompress;

pub use apply::{apply_layer, ApplyStats, LayerError, WhiteoutMode};
pub use decompress::{decompress, Compression};

#[cfg(test)]
mod tests;
