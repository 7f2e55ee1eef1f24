//! The streaming encoder a compressed response body passes through.
//!
//! Every chunk is flushed (deflate's sync flush, brotli's and zstd's flush): what the upstream
//! sent so far reaches the client decodable at once, so a stream of events is not held back
//! until the encoder's buffers fill. The cost is a few bytes per chunk.

use std::io::{self, Write};

use bytes::Bytes;
use flate2::write::GzEncoder;
use strait_http::{BodyFilter, BodyStep, Phase, Reason};

use super::{Algorithm, Levels};

/// The reason a response ends early when its encoder fails (allocation failure in the zstd
/// library is the only known cause).
const ENCODER_FAILED: Reason = Reason::FilterFailed;

/// Brotli's sliding window, 2^19 bytes: ngx_brotli's default (`brotli_window 512k`), which
/// keeps an encoder's memory moderate with many responses in flight.
const BROTLI_WINDOW_BITS: u32 = 19;

/// Size of brotli's internal output buffer.
const BROTLI_BUFFER: usize = 4096;

/// One response body's encoder; it writes into a buffer that each chunk empties.
pub(crate) enum Encoder {
    Gzip(GzEncoder<Vec<u8>>),
    Br(Box<brotli::CompressorWriter<Vec<u8>>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
    /// After the end of the body, or after an error.
    Done,
    /// The encoder could not be created: the first chunk fails.
    Broken,
}

impl Encoder {
    /// A fresh encoder for `algorithm` at its configured level. Only zstd's can fail (when
    /// its library cannot allocate); the body then ends at its first chunk, since its headers
    /// already announce the coding.
    pub(crate) fn new(algorithm: Algorithm, levels: &Levels) -> Encoder {
        match algorithm {
            Algorithm::Gzip => Encoder::Gzip(GzEncoder::new(Vec::new(), flate2::Compression::new(levels.gzip))),
            Algorithm::Br => Encoder::Br(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                BROTLI_BUFFER,
                levels.brotli,
                BROTLI_WINDOW_BITS,
            ))),
            Algorithm::Zstd => {
                // Levels are validated to 1..=19, whose windows stay within the 8 MiB HTTP
                // decoders must support (RFC 9659).
                let level = i32::try_from(levels.zstd).unwrap_or(3);
                zstd::stream::write::Encoder::new(Vec::new(), level).map_or(Encoder::Broken, Encoder::Zstd)
            }
        }
    }

    /// Feeds `data`, then flushes (or, at the end, finishes the stream); returns the encoded
    /// bytes produced.
    fn encode(&mut self, data: &[u8], end: bool) -> io::Result<Bytes> {
        if end {
            let finished = match std::mem::replace(self, Encoder::Done) {
                Encoder::Gzip(mut encoder) => {
                    encoder.write_all(data)?;
                    encoder.finish()?
                }
                Encoder::Br(mut encoder) => {
                    encoder.write_all(data)?;
                    encoder.into_inner()
                }
                Encoder::Zstd(mut encoder) => {
                    encoder.write_all(data)?;
                    encoder.finish()?
                }
                Encoder::Done => Vec::new(),
                Encoder::Broken => return Err(broken()),
            };
            return Ok(Bytes::from(finished));
        }
        if data.is_empty() && !matches!(self, Encoder::Broken) {
            return Ok(Bytes::new());
        }
        let out = match self {
            Encoder::Gzip(encoder) => {
                encoder.write_all(data)?;
                encoder.flush()?;
                encoder.get_mut()
            }
            Encoder::Br(encoder) => {
                encoder.write_all(data)?;
                encoder.flush()?;
                encoder.get_mut()
            }
            Encoder::Zstd(encoder) => {
                encoder.write_all(data)?;
                encoder.flush()?;
                encoder.get_mut()
            }
            Encoder::Done => return Ok(Bytes::new()),
            Encoder::Broken => return Err(broken()),
        };
        Ok(Bytes::from(std::mem::take(out)))
    }
}

/// The error of an encoder that could not be created.
fn broken() -> io::Error {
    io::Error::other("the encoder could not be created")
}

impl BodyFilter for Encoder {
    fn chunk(mut self: Box<Self>, chunk: Bytes, end: bool) -> BodyStep {
        let encoded = self.encode(&chunk, end).map_err(|_| {
            *self = Encoder::Done;
            ENCODER_FAILED
        });
        Phase::Ready((self, encoded))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    const ALL: [Algorithm; 3] = [Algorithm::Gzip, Algorithm::Br, Algorithm::Zstd];

    fn levels() -> Levels {
        Levels { gzip: 1, brotli: 4, zstd: 3 }
    }

    /// Runs one chunk through a body filter.
    fn step(filter: Box<dyn BodyFilter>, chunk: &[u8], end: bool) -> (Box<dyn BodyFilter>, Bytes) {
        let Phase::Ready((filter, out)) = filter.chunk(Bytes::copy_from_slice(chunk), end) else {
            panic!("an encoder never waits");
        };
        (filter, out.expect("encoding succeeds"))
    }

    /// Encodes `chunks` (the last with `end`), returning each step's output.
    fn encode(algorithm: Algorithm, chunks: &[&[u8]]) -> Vec<Bytes> {
        let mut filter: Box<dyn BodyFilter> = Box::new(Encoder::new(algorithm, &levels()));
        let mut outputs = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            let (next, out) = step(filter, chunk, i + 1 == chunks.len());
            filter = next;
            outputs.push(out);
        }
        outputs
    }

    /// Decodes a complete stream.
    fn decode(algorithm: Algorithm, encoded: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match algorithm {
            Algorithm::Gzip => flate2::read::GzDecoder::new(encoded).read_to_end(&mut out).map(drop),
            Algorithm::Br => brotli::Decompressor::new(encoded, 4096).read_to_end(&mut out).map(drop),
            Algorithm::Zstd => {
                zstd::stream::read::Decoder::new(encoded).and_then(|mut d| d.read_to_end(&mut out)).map(drop)
            }
        }
        .unwrap_or_else(|e| panic!("{algorithm:?} stream decodes: {e}"));
        out
    }

    /// Decodes what a stream has so far, without its end.
    fn decode_prefix(algorithm: Algorithm, encoded: &[u8]) -> Vec<u8> {
        match algorithm {
            Algorithm::Gzip => {
                let mut decoder = flate2::write::GzDecoder::new(Vec::new());
                decoder.write_all(encoded).unwrap();
                decoder.flush().unwrap();
                decoder.get_ref().clone()
            }
            Algorithm::Br => {
                let mut decoder = brotli::DecompressorWriter::new(Vec::new(), 4096);
                decoder.write_all(encoded).unwrap();
                decoder.flush().unwrap();
                decoder.get_ref().clone()
            }
            Algorithm::Zstd => {
                let mut decoder = zstd::stream::write::Decoder::new(Vec::new()).unwrap();
                decoder.write_all(encoded).unwrap();
                decoder.flush().unwrap();
                decoder.get_ref().clone()
            }
        }
    }

    fn text(lines: usize, tag: &str) -> Vec<u8> {
        (0..lines)
            .map(|i| format!("{tag} line {i}: the quick brown fox jumps over the lazy dog\n"))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn chunked_body_round_trips_with_each_algorithm() {
        let parts = [text(200, "a"), text(1, "b"), Vec::new(), text(500, "c")];
        let body: Vec<u8> = parts.concat();
        for algorithm in ALL {
            let mut chunks: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
            chunks.push(b"");
            let encoded: Vec<u8> = encode(algorithm, &chunks).concat();
            assert!(encoded.len() < body.len() / 4, "{algorithm:?} compresses: {} bytes", encoded.len());
            assert_eq!(decode(algorithm, &encoded), body, "{algorithm:?}");
        }
    }

    #[test]
    fn body_ending_with_data_round_trips() {
        for algorithm in ALL {
            let encoded: Vec<u8> = encode(algorithm, &[b"first ", b"last"]).concat();
            assert_eq!(decode(algorithm, &encoded), b"first last", "{algorithm:?}");
        }
    }

    #[test]
    fn single_small_chunk_decodes_after_end() {
        for algorithm in ALL {
            let encoded: Vec<u8> = encode(algorithm, &[b"hi"]).concat();
            assert_eq!(decode(algorithm, &encoded), b"hi", "{algorithm:?}");
        }
    }

    #[test]
    fn empty_body_is_a_valid_empty_stream() {
        for algorithm in ALL {
            let encoded: Vec<u8> = encode(algorithm, &[b""]).concat();
            assert_eq!(decode(algorithm, &encoded), b"", "{algorithm:?}");
        }
    }

    #[test]
    fn each_chunk_is_decodable_before_the_end() {
        for algorithm in ALL {
            let filter: Box<dyn BodyFilter> = Box::new(Encoder::new(algorithm, &levels()));
            let (filter, first) = step(filter, b"data: event one\n\n", false);
            assert!(!first.is_empty(), "{algorithm:?} passes the first chunk on");
            assert_eq!(decode_prefix(algorithm, &first), b"data: event one\n\n", "{algorithm:?}");
            let (filter, second) = step(filter, b"data: event two\n\n", false);
            let so_far = [first.clone(), second].concat();
            assert_eq!(decode_prefix(algorithm, &so_far), b"data: event one\n\ndata: event two\n\n", "{algorithm:?}");
            let (_, last) = step(filter, b"", true);
            assert_eq!(decode(algorithm, &[so_far, last.to_vec()].concat()), b"data: event one\n\ndata: event two\n\n");
        }
    }

    #[test]
    fn empty_chunk_before_the_end_produces_nothing() {
        for algorithm in ALL {
            let filter: Box<dyn BodyFilter> = Box::new(Encoder::new(algorithm, &levels()));
            let (_, out) = step(filter, b"", false);
            assert!(out.is_empty(), "{algorithm:?}");
        }
    }

    #[test]
    fn broken_encoder_fails_the_body() {
        let Phase::Ready((_, out)) = Box::new(Encoder::Broken).chunk(Bytes::from_static(b"x"), false) else {
            panic!("an encoder never waits");
        };
        assert_eq!(out, Err(ENCODER_FAILED));
    }

    #[test]
    fn levels_reach_the_encoders() {
        let body = text(2000, "x");
        for algorithm in ALL {
            let size = |levels: Levels| {
                let filter: Box<dyn BodyFilter> = Box::new(Encoder::new(algorithm, &levels));
                step(filter, &body, true).1.len()
            };
            let fast = size(Levels { gzip: 1, brotli: 0, zstd: 1 });
            let small = size(Levels { gzip: 9, brotli: 11, zstd: 19 });
            assert!(small < fast, "{algorithm:?}: {small} >= {fast}");
        }
    }
}
