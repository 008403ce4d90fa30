//! Trace search over the compacted Parquet files: only the columns a
//! summary needs are read, and each trace is summarised over every file
//! that holds spans of it (see [`tracelens_core::search`]). With a `since`,
//! hour partitions closed well before it are not read: a file holds spans
//! received before its hour ended, so none of them started after it
//! (an hour's margin is left for clocks ahead of the receiver's).

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use polars::prelude::*;
use rustc_hash::FxHashMap;

use super::compact::{CompactError, file_error, parquet_files, partition};
use tracelens_core::search::{SummaryBuilder, TraceQuery, TraceSummary};

const COLUMNS: [&str; 7] =
    ["trace_id", "parent_span_id", "service", "operation", "status_code", "start_unix_nano", "end_unix_nano"];

/// Clocks ahead of the receiver's by up to this much still find their
/// spans when a search starts at a `since`.
const CLOCK_MARGIN: Duration = Duration::from_secs(3600);
const HOUR: Duration = Duration::from_secs(3600);

/// The traces in the compacted files of `data_dir` that match `query`,
/// with the number of files read. Files `skip` names are not read; a file
/// that cannot be read goes to `unreadable` and the others are read.
pub fn search(
    data_dir: &Path,
    query: &TraceQuery,
    skip: &dyn Fn(&Path) -> bool,
    unreadable: &mut dyn FnMut(&Path, CompactError),
) -> (Vec<TraceSummary>, usize) {
    let mut traces: FxHashMap<String, SummaryBuilder> = FxHashMap::default();
    // The partition of the hour before `since`, less the margin: that
    // hour's files and later ones may hold spans started after `since`.
    let oldest = query.since_ns.map(|ns| {
        let since = UNIX_EPOCH + Duration::from_nanos(ns);
        partition(data_dir, since.checked_sub(HOUR + CLOCK_MARGIN).unwrap_or(UNIX_EPOCH))
    });
    let files: Vec<_> = parquet_files(data_dir)
        .into_iter()
        .filter(|f| oldest.as_deref().is_none_or(|oldest| f.parent().is_none_or(|dir| dir >= oldest)))
        .filter(|f| !skip(f))
        .collect();
    let mut read = 0;
    for path in &files {
        match summarise_file(path, query, &mut traces) {
            Ok(()) => read += 1,
            Err(e) => unreadable(path, e),
        }
    }
    (traces.into_values().filter_map(|b| b.finish(query)).collect(), read)
}

/// Adds the rows of the compacted file `path` to the summaries in `traces`.
fn summarise_file(
    path: &Path,
    query: &TraceQuery,
    traces: &mut FxHashMap<String, SummaryBuilder>,
) -> Result<(), CompactError> {
    let file = std::fs::File::open(path).map_err(|e| file_error(path, e))?;
    let df = ParquetReader::new(file)
        .with_columns(Some(COLUMNS.iter().map(|c| c.to_string()).collect()))
        .finish()
        .map_err(|e| file_error(path, e))?;
    let text = |name: &str| -> Result<StringChunked, CompactError> {
        df.column(name)
            .and_then(|c| c.cast(&DataType::String))
            .and_then(|c| c.str().cloned())
            .map_err(|e| file_error(path, e))
    };
    let number = |name: &str| -> Result<UInt64Chunked, CompactError> {
        df.column(name)
            .and_then(|c| c.cast(&DataType::UInt64))
            .and_then(|c| c.u64().cloned())
            .map_err(|e| file_error(path, e))
    };
    let (ids, parents, services, operations, statuses) =
        (text("trace_id")?, text("parent_span_id")?, text("service")?, text("operation")?, text("status_code")?);
    let (starts, ends) = (number("start_unix_nano")?, number("end_unix_nano")?);
    for i in 0..df.height() {
        let Some(id) = ids.get(i) else { continue };
        let (Some(start), Some(end)) = (starts.get(i), ends.get(i)) else { continue };
        let builder = match traces.get_mut(id) {
            Some(b) => b,
            None => traces.entry(id.to_string()).or_insert_with(|| SummaryBuilder::new(id.to_string())),
        };
        builder.add(
            query,
            services.get(i).unwrap_or(""),
            operations.get(i).unwrap_or(""),
            parents.get(i).is_none_or(str::is_empty),
            statuses.get(i) == Some(tracelens_table::status_name(tracelens_core::model::StatusCode::Error)),
            start,
            end,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::compact::compact;
    use crate::storage::wal::{Wal, WalConfig};

    /// The shop traces (OTLP JSON lines, one request per line) compacted
    /// into two files, the checkout trace split between them.
    fn compacted_shop() -> tempfile::TempDir {
        let lines = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/shop.otlp.jsonl")).unwrap();
        let lines: Vec<&[u8]> = lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
        let dir = tempfile::tempdir().unwrap();
        for part in [&lines[..3], &lines[3..]] {
            let (mut wal, _) = Wal::open(WalConfig::new(dir.path())).unwrap();
            for line in part {
                wal.append_parts_unsynced(&[&[1u8], line]).unwrap();
            }
        }
        drop(Wal::open(WalConfig::new(dir.path())).unwrap());
        assert_eq!(compact(dir.path(), false, None).unwrap().files.len(), 2);
        dir
    }

    /// [`search`] over every file, none of them unreadable.
    fn search_all(dir: &Path, query: &TraceQuery) -> (Vec<TraceSummary>, usize) {
        search(dir, query, &|_| false, &mut |f, e| panic!("{f:?}: {e}"))
    }

    fn ids(found: &[TraceSummary]) -> Vec<&str> {
        let mut ids: Vec<&str> = found.iter().map(|s| s.trace_id.as_str()).collect();
        ids.sort();
        ids
    }

    #[test]
    fn traces_are_summarised_over_every_file_that_holds_them() {
        let dir = compacted_shop();
        let (all, files) = search_all(dir.path(), &TraceQuery::default());
        assert_eq!(files, 2);
        assert_eq!(ids(&all), ["0af7651916cd43dd8448eb211c80319c", "4bf92f3577b34da6a3ce929d0e0e4736"]);
        let checkout = all.iter().find(|s| s.trace_id.starts_with("0af7")).unwrap();
        assert_eq!((checkout.spans, checkout.errors, checkout.duration_ns), (11, 2, 130_000_000));
        assert_eq!((checkout.root_service.as_str(), checkout.root_operation.as_str()), ("frontend", "GET /checkout"));
        let query = TraceQuery {
            service: Some("payments".into()),
            min_duration_ns: 100_000_000,
            errors_only: true,
            ..TraceQuery::default()
        };
        assert_eq!(ids(&search_all(dir.path(), &query).0), ["0af7651916cd43dd8448eb211c80319c"]);
        let slow = TraceQuery { min_duration_ns: 131_000_000, ..TraceQuery::default() };
        assert!(search_all(dir.path(), &slow).0.is_empty());
        // A damaged file is reported; the others still answer, and a file
        // to skip is not read.
        let files = crate::storage::compact::parquet_files(dir.path());
        let bytes = std::fs::read(&files[0]).unwrap();
        std::fs::write(&files[0], &bytes[..bytes.len() / 2]).unwrap();
        let mut unreadable = Vec::new();
        let (found, read) = search(dir.path(), &TraceQuery::default(), &|_| false, &mut |f, e| {
            unreadable.push((f.to_owned(), e.to_string()))
        });
        assert_eq!((read, unreadable.len()), (1, 1));
        assert_eq!(unreadable[0].0, files[0]);
        assert!(!found.is_empty());
        let (_, read) =
            search(dir.path(), &TraceQuery::default(), &|f| f == files[0], &mut |f, e| panic!("{f:?}: {e}"));
        assert_eq!(read, 1);
    }

    #[test]
    fn partitions_closed_well_before_since_are_not_read() {
        let dir = compacted_shop();
        let now_ns = std::time::SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
        let hour = 3_600_000_000_000u64;
        // The files were compacted this hour: a search from 3 hours ahead
        // skips them; one from the hour before this one reads them.
        let later = TraceQuery { since_ns: Some(now_ns + 3 * hour), ..TraceQuery::default() };
        assert_eq!(search_all(dir.path(), &later).1, 0);
        let recent = TraceQuery { since_ns: Some(now_ns - hour), ..TraceQuery::default() };
        assert_eq!(search_all(dir.path(), &recent).1, 2);
        // The shop's spans start in 2026-11: none after an hour ago.
        assert!(search_all(dir.path(), &recent).0.is_empty());
    }
}
