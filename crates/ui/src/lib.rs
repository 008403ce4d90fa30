//! tracelens's pictures. One visual layer serves two places: `tracelens
//! report` writes it as a single self-contained HTML file, and `tracelens
//! serve` answers it live at `/`.
//!
//! - [`data`]: [`ReportData`], everything the pages draw, as one JSON document.
//! - [`timeline`]: [`Timeline`], one trace as the waterfall draws it.
//! - [`keeper`]: [`TraceKeeper`], which whole traces a report carries.
//! - [`page`]: the HTML page, with its script and styles built in.
//!
//! Nothing here reads files or the network: callers bring the analyses
//! and write the page where they want it.

pub mod data;
pub mod keeper;
pub mod page;
pub mod timeline;

pub use data::ReportData;
pub use keeper::{KeeperConfig, KeptTraces, TraceKeeper};
pub use timeline::Timeline;
