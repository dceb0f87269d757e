//! gzip and zstd files, recognised by their first bytes (not their names) and decoded while read.

use std::io::{BufRead, BufReader, Read};

/// Extensions of compressed files (removed to find a file's stem or data extension).
pub const EXTENSIONS: [&str; 3] = [".gz", ".zst", ".zstd"];

/// Read buffer of every source.
const BUFFER_BYTES: usize = 1 << 20;

/// How a source's bytes are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Plain text.
    None,
    /// gzip (one or more members, as `cat a.gz b.gz` gives).
    Gzip,
    /// Zstandard (one or more frames).
    Zstd,
}

impl Compression {
    /// The name shown in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// Wraps `raw` in the decoder its first bytes call for.
pub fn decode(
    raw: Box<dyn Read + Send>,
) -> std::io::Result<(Box<dyn BufRead + Send>, Compression)> {
    let mut buffered = BufReader::with_capacity(BUFFER_BYTES, raw);
    let head = buffered.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        let decoder = flate2::bufread::MultiGzDecoder::new(buffered);
        return Ok((
            Box::new(BufReader::with_capacity(BUFFER_BYTES, decoder)),
            Compression::Gzip,
        ));
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let decoder = zstd::stream::read::Decoder::with_buffer(buffered)?;
        return Ok((
            Box::new(BufReader::with_capacity(BUFFER_BYTES, decoder)),
            Compression::Zstd,
        ));
    }
    Ok((Box::new(buffered), Compression::None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: Vec<u8>) -> (String, Compression) {
        let (mut reader, compression) =
            decode(Box::new(std::io::Cursor::new(bytes))).expect("decodes");
        let mut text = String::new();
        reader.read_to_string(&mut text).expect("reads");
        (text, compression)
    }

    #[test]
    fn recognises_and_decodes_by_content() {
        let text = "Date,Open\n2010-01-04,1\n";
        assert_eq!(read(text.into()), (text.to_string(), Compression::None));
        let mut gzip = Vec::new();
        for half in [&text[..10], &text[10..]] {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            std::io::Write::write_all(&mut encoder, half.as_bytes()).expect("gzip");
            gzip.extend(encoder.finish().expect("gzip"));
        }
        assert_eq!(read(gzip), (text.to_string(), Compression::Gzip));
        let zstd = zstd::stream::encode_all(text.as_bytes(), 3).expect("zstd");
        assert_eq!(read(zstd), (text.to_string(), Compression::Zstd));
    }
}
