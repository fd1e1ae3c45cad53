//! SPDY/3 name/value header blocks (SPDY Protocol Draft 3, section 2.6.10): the block format
//! and its compression, one zlib stream per direction for the whole connection, preset with the
//! SPDY/3 dictionary and sync-flushed after each block. Inflating stops at the session's limit,
//! so a small block cannot expand into a large allocation. Names are lowercase ASCII and appear
//! once; a value may hold several values separated by NUL. Layer: server.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::dictionary::DICTIONARY;
use crate::server::stream::error::{ProtocolError, Result};

/// A stream's headers, in the order they came.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(String, String)>,
}

impl Headers {
    /// No headers (what the kubelet sends in its SYN_REPLY).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a value; `name` is lowercased as SPDY requires.
    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.entries
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// The first value of `name` (any case), as Go's `http.Header.Get` reads it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Serializes to an uncompressed block; values of one name are joined with NUL.
    fn to_block(&self) -> Result<Vec<u8>> {
        let mut names: Vec<&str> = Vec::new();
        for (name, _) in &self.entries {
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
        let mut block = Vec::new();
        put_len(&mut block, names.len())?;
        for name in names {
            let values: Vec<&str> = self
                .entries
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .collect();
            let value = values.join("\0");
            put_len(&mut block, name.len())?;
            block.extend_from_slice(name.as_bytes());
            put_len(&mut block, value.len())?;
            block.extend_from_slice(value.as_bytes());
        }
        Ok(block)
    }

    /// Parses an uncompressed block; every length is checked against the bytes left.
    fn from_block(block: &[u8]) -> Result<Self> {
        let mut rest = block;
        let count = take_len(&mut rest)?;
        // Each pair needs at least 8 bytes of lengths: a bound before allocating.
        if count > rest.len() / 8 {
            return Err(ProtocolError::MalformedHeaders("more pairs than bytes"));
        }
        let mut headers = Headers::default();
        for _ in 0..count {
            let name = take_str(&mut rest)?;
            if name.is_empty() || name.bytes().any(|b| b.is_ascii_uppercase()) {
                return Err(ProtocolError::MalformedHeaders("empty or uppercase name"));
            }
            if headers.get(name).is_some() {
                return Err(ProtocolError::MalformedHeaders("duplicate name"));
            }
            let value = take_str(&mut rest)?;
            for one in value.split('\0') {
                headers.entries.push((name.to_owned(), one.to_owned()));
            }
        }
        if !rest.is_empty() {
            return Err(ProtocolError::MalformedHeaders("bytes after the last pair"));
        }
        Ok(headers)
    }
}

fn put_len(block: &mut Vec<u8>, len: usize) -> Result<()> {
    let len = u32::try_from(len).map_err(|_| ProtocolError::MalformedHeaders("too long"))?;
    block.extend_from_slice(&len.to_be_bytes());
    Ok(())
}

fn take_len(rest: &mut &[u8]) -> Result<usize> {
    let (len, tail) = rest
        .split_first_chunk::<4>()
        .ok_or(ProtocolError::MalformedHeaders("truncated length"))?;
    *rest = tail;
    Ok(u32::from_be_bytes(*len) as usize)
}

fn take_str<'a>(rest: &mut &'a [u8]) -> Result<&'a str> {
    let len = take_len(rest)?;
    if len > rest.len() {
        return Err(ProtocolError::MalformedHeaders("length past the end"));
    }
    let (bytes, tail) = rest.split_at(len);
    *rest = tail;
    std::str::from_utf8(bytes).map_err(|_| ProtocolError::MalformedHeaders("not UTF-8"))
}

/// Inflates the peer's header blocks: one zlib stream for the connection.
pub struct Inflater {
    zlib: Decompress,
    max_block: usize,
}

impl Inflater {
    /// A fresh stream; a block may inflate to at most `max_block` bytes.
    pub fn new(max_block: usize) -> Self {
        Self {
            zlib: Decompress::new(true),
            max_block,
        }
    }

    /// Inflates and parses one block. After an error the stream is out of step with the peer's
    /// compressor, so the session must end.
    pub fn inflate(&mut self, compressed: &[u8]) -> Result<Headers> {
        let mut out = Vec::with_capacity(compressed.len().saturating_mul(4).min(self.max_block));
        let mut input = compressed;
        loop {
            if out.len() == out.capacity() {
                if out.len() >= self.max_block {
                    return Err(ProtocolError::HeaderBlockTooLarge {
                        max: self.max_block,
                    });
                }
                let more = out.len().max(256).min(self.max_block - out.len());
                out.reserve_exact(more);
            }
            let before_in = self.zlib.total_in();
            let before_out = self.zlib.total_out();
            match self
                .zlib
                .decompress_vec(input, &mut out, FlushDecompress::Sync)
            {
                Ok(Status::Ok | Status::BufError) => {}
                Ok(Status::StreamEnd) => return Err(ProtocolError::HeaderCompression),
                Err(e) if e.needs_dictionary().is_some() => {
                    self.zlib
                        .set_dictionary(&DICTIONARY)
                        .map_err(|_| ProtocolError::HeaderCompression)?;
                }
                Err(_) => return Err(ProtocolError::HeaderCompression),
            }
            if out.len() > self.max_block {
                return Err(ProtocolError::HeaderBlockTooLarge {
                    max: self.max_block,
                });
            }
            let used = usize::try_from(self.zlib.total_in() - before_in).unwrap_or(usize::MAX);
            input = input.get(used..).ok_or(ProtocolError::HeaderCompression)?;
            let produced = self.zlib.total_out() != before_out;
            // Done when the input is used up and the last call had room left yet wrote nothing
            // more: a sync-flushed block leaves nothing pending.
            if input.is_empty() && out.len() < out.capacity() && !produced {
                break;
            }
            if used == 0 && !produced && out.len() < out.capacity() {
                return Err(ProtocolError::HeaderCompression);
            }
        }
        Headers::from_block(&out)
    }
}

/// Deflates systemk's header blocks: one zlib stream for the connection.
pub struct Deflater {
    zlib: Compress,
}

impl Deflater {
    /// A fresh stream with the SPDY/3 dictionary loaded.
    pub fn new() -> Result<Self> {
        let mut zlib = Compress::new(Compression::default(), true);
        zlib.set_dictionary(&DICTIONARY)
            .map_err(|_| ProtocolError::HeaderCompression)?;
        Ok(Self { zlib })
    }

    /// Serializes and deflates one block, sync-flushed so the peer can inflate it alone.
    pub fn deflate(&mut self, headers: &Headers) -> Result<Vec<u8>> {
        let block = headers.to_block()?;
        let mut out = Vec::with_capacity(block.len() + 64);
        let mut input = block.as_slice();
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(64));
            }
            let before_in = self.zlib.total_in();
            self.zlib
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .map_err(|_| ProtocolError::HeaderCompression)?;
            let used = usize::try_from(self.zlib.total_in() - before_in).unwrap_or(usize::MAX);
            input = input.get(used..).ok_or(ProtocolError::HeaderCompression)?;
            // The flush is complete once all input is taken and output space is left over.
            if input.is_empty() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

#[cfg(test)]
#[path = "headers/tests.rs"]
mod tests;
