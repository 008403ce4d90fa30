//! The page headers of a Parquet file, checked against its footer before
//! polars decodes any page.
//!
//! polars trusts the counts a page header gives: a data page claiming a
//! negative number of values (about 2^64 once taken as an unsigned size)
//! makes it reserve a validity bitmap of 2^61 bytes, and an allocation
//! that fails aborts the process, which no panic guard catches. So every
//! page of every column chunk is walked first (headers only, nothing is
//! decompressed): the chunk must lie inside the file, each page inside its
//! chunk, every count must be zero or more, and the data pages' values
//! must add up to what the footer says the chunk holds. A page then claims
//! at most 2^31 values, which bounds what decoding it can allocate.

use std::io::Cursor;

use polars_parquet::parquet::metadata::{ColumnChunkMetadata, FileMetadata};
use polars_parquet_format::thrift::protocol::TCompactInputProtocol;
use polars_parquet_format::{PageHeader, PageType};

/// Most bytes a page header is read from (headers are small; a larger one
/// is damage).
const MAX_HEADER_BYTES: usize = 1 << 20;

/// Where a page check failed and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("row group {row_group}, column {column}{}: {reason}", page.map(|p| format!(", page {p}")).unwrap_or_default())]
pub struct PageError {
    /// The row group, from 0.
    pub row_group: usize,
    /// The column's path in the schema (dotted).
    pub column: String,
    /// The page in the column chunk, from 0 (none: the chunk itself).
    pub page: Option<usize>,
    /// What is wrong.
    pub reason: String,
}

/// Checks the page headers of every column chunk of `file` (the whole
/// file's bytes) against `metadata`, its footer.
pub fn check(file: &[u8], metadata: &FileMetadata) -> Result<(), PageError> {
    for (row_group, group) in metadata.row_groups.iter().enumerate() {
        for chunk in group.parquet_columns() {
            check_chunk(file, chunk).map_err(|(page, reason)| PageError {
                row_group,
                column: chunk.descriptor().path_in_schema.join("."),
                page,
                reason,
            })?;
        }
    }
    Ok(())
}

/// One column chunk: the page that is wrong (none: the chunk) and why.
fn check_chunk(file: &[u8], chunk: &ColumnChunkMetadata) -> Result<(), (Option<usize>, String)> {
    let start = chunk.dictionary_page_offset().unwrap_or_else(|| chunk.data_page_offset());
    let (length, values) = (chunk.compressed_size(), chunk.num_values());
    let chunk_bytes = u64::try_from(start)
        .ok()
        .zip(u64::try_from(length).ok())
        .and_then(|(start, length)| Some(start..start.checked_add(length)?))
        .and_then(|range| file.get(usize::try_from(range.start).ok()?..usize::try_from(range.end).ok()?))
        .ok_or_else(|| {
            (None, format!("its {length} bytes at offset {start} are not inside the file's {} bytes", file.len()))
        })?;
    if values < 0 {
        return Err((None, format!("the footer gives it {values} values")));
    }
    let mut cursor = Cursor::new(chunk_bytes);
    let mut seen: i64 = 0;
    let mut page = 0;
    while seen < values {
        let at = cursor.position();
        let header = PageHeader::read_from_in_protocol(&mut TCompactInputProtocol::new(&mut cursor, MAX_HEADER_BYTES))
            .map_err(|e| (Some(page), format!("unreadable page header at byte {at} of the chunk: {e}")))?;
        let bad = |reason: String| (Some(page), reason);
        let (compressed, uncompressed) = (header.compressed_page_size, header.uncompressed_page_size);
        if compressed < 0 || uncompressed < 0 {
            return Err(bad(format!("negative page size ({compressed} compressed, {uncompressed} uncompressed)")));
        }
        let body = cursor.position() + compressed as u64;
        if body > chunk_bytes.len() as u64 {
            return Err(bad(format!(
                "its {compressed} bytes run past the end of the chunk ({} bytes)",
                chunk_bytes.len()
            )));
        }
        let counted = match header.type_ {
            PageType::DATA_PAGE => {
                let h = header.data_page_header.as_ref().ok_or_else(|| bad("a data page without its header".into()))?;
                non_negative(h.num_values, "values").map_err(bad)?
            }
            PageType::DATA_PAGE_V2 => {
                let h =
                    header.data_page_header_v2.as_ref().ok_or_else(|| bad("a data page without its header".into()))?;
                let values = non_negative(h.num_values, "values").map_err(bad)?;
                for (count, what) in [(h.num_nulls, "nulls"), (h.num_rows, "rows")] {
                    if non_negative(count, what).map_err(bad)? > values {
                        return Err(bad(format!("{count} {what} in a page of {values} values")));
                    }
                }
                let levels =
                    i64::from(non_negative(h.definition_levels_byte_length, "definition level bytes").map_err(bad)?)
                        + i64::from(
                            non_negative(h.repetition_levels_byte_length, "repetition level bytes").map_err(bad)?,
                        );
                if levels > i64::from(compressed) {
                    return Err(bad(format!("{levels} bytes of levels in a page of {compressed} bytes")));
                }
                values
            }
            PageType::DICTIONARY_PAGE => {
                let h = header
                    .dictionary_page_header
                    .as_ref()
                    .ok_or_else(|| bad("a dictionary page without its header".into()))?;
                non_negative(h.num_values, "dictionary values").map_err(bad)?;
                0
            }
            _ => 0,
        };
        seen += i64::from(counted);
        if seen > values {
            return Err(bad(format!(
                "its pages hold {seen} values, more than the {values} the footer gives the chunk"
            )));
        }
        cursor.set_position(body);
        page += 1;
    }
    Ok(())
}

fn non_negative(count: i32, what: &str) -> Result<i32, String> {
    if count < 0 { Err(format!("the header gives {count} {what}")) } else { Ok(count) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shop() -> Vec<u8> {
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/shop.parquet")).unwrap()
    }

    fn metadata(bytes: &[u8]) -> FileMetadata {
        polars_parquet::parquet::read::read_metadata(&mut Cursor::new(bytes)).unwrap()
    }

    #[test]
    fn a_sound_file_passes() {
        let bytes = shop();
        check(&bytes, &metadata(&bytes)).unwrap();
    }

    /// The first data page header of the first column chunk, re-encoded
    /// with `change` applied (it keeps its length: the counts changed are
    /// varints of the same width).
    fn with_first_data_page(bytes: &[u8], change: impl Fn(&mut PageHeader)) -> Vec<u8> {
        use polars_parquet_format::thrift::protocol::TCompactOutputProtocol;
        let meta = metadata(bytes);
        let chunk = &meta.row_groups[0].parquet_columns()[0];
        let mut at = chunk.dictionary_page_offset().unwrap_or_else(|| chunk.data_page_offset()) as usize;
        loop {
            let mut cursor = Cursor::new(&bytes[at..]);
            let header =
                PageHeader::read_from_in_protocol(&mut TCompactInputProtocol::new(&mut cursor, MAX_HEADER_BYTES))
                    .unwrap();
            let length = cursor.position() as usize;
            if header.type_ != PageType::DATA_PAGE && header.type_ != PageType::DATA_PAGE_V2 {
                at += length + header.compressed_page_size as usize;
                continue;
            }
            let mut changed = header.clone();
            change(&mut changed);
            let mut encoded = Vec::new();
            changed.write_to_out_protocol(&mut TCompactOutputProtocol::new(&mut encoded)).unwrap();
            assert_eq!(encoded.len(), length, "the change keeps the header's length");
            let mut out = bytes.to_vec();
            out[at..at + length].copy_from_slice(&encoded);
            return out;
        }
    }

    fn set_values(h: &mut PageHeader, n: i32) {
        if let Some(d) = h.data_page_header.as_mut() {
            d.num_values = n;
        }
        if let Some(d) = h.data_page_header_v2.as_mut() {
            d.num_values = n;
        }
    }

    #[test]
    fn a_page_claiming_negative_values_is_named() {
        let bytes = shop();
        let original = with_first_data_page(&bytes, |_| {});
        assert_eq!(original, bytes);
        // 14 values; -14 has a zigzag varint of the same width.
        let damaged = with_first_data_page(&bytes, |h| set_values(h, -14));
        let err = check(&damaged, &metadata(&damaged)).unwrap_err();
        assert_eq!((err.row_group, err.page), (0, Some(err.page.unwrap())));
        assert!(err.reason.contains("the header gives -14 values"), "{err}");
        assert!(err.to_string().starts_with("row group 0, column "), "{err}");
    }

    #[test]
    fn pages_holding_more_values_than_their_chunk_are_named() {
        let bytes = shop();
        let damaged = with_first_data_page(&bytes, |h| set_values(h, 15));
        let err = check(&damaged, &metadata(&damaged)).unwrap_err();
        assert!(err.reason.contains("hold 15 values, more than the 14"), "{err}");
    }

    #[test]
    fn a_chunk_outside_the_file_is_named() {
        let bytes = shop();
        let meta = metadata(&bytes);
        let end = meta.row_groups.iter().flat_map(|g| g.parquet_columns()).map(|c| c.byte_range().end).max().unwrap();
        let cut = &bytes[..end as usize - 1];
        let err = check(cut, &meta).unwrap_err();
        assert_eq!(err.page, None);
        assert!(err.reason.contains("are not inside the file's"), "{err}");
    }
}
