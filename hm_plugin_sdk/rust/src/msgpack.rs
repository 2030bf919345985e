//! A small msgpack encoder and decoder, enough for hm's messages and safe on hostile input.
//!
//! * [`Writer`] appends values to a `Vec<u8>`. Integers use the smallest encoding
//!   (non-negative values the unsigned ones), floats are always float64, strings
//!   use fixstr/str8/str16/str32: the same bytes Python's `msgspec` produces.
//! * [`Reader`] decodes one [`Value`] at a time from borrowed bytes. It never
//!   panics and never reads out of bounds: truncated input, reserved markers,
//!   invalid UTF-8 in a string, nesting deeper than [`MAX_DEPTH`] and lengths
//!   larger than the input are all a [`DecodeError`]. Memory use is bounded by
//!   the input size (a container's claimed length is never trusted for
//!   preallocation).
//! * [`encode`] and [`decode`] do a whole buffer at once.
//!
//! ```
//! use hm_plugin_sdk::msgpack::{decode, encode, Value};
//!
//! let v = Value::Map(vec![(Value::from("n"), Value::Int(3))]);
//! let bytes = encode(&v);
//! assert_eq!(bytes, b"\x81\xa1n\x03");
//! assert_eq!(decode(&bytes).unwrap(), v);
//! assert!(decode(b"\x81\xa1n").is_err()); // truncated
//! ```

use core::fmt;

/// Deepest nesting of arrays and maps [`Reader`] accepts. hm's messages need
/// fewer than ten levels; the limit keeps hostile input from exhausting the stack.
pub const MAX_DEPTH: usize = 128;

/// One msgpack value.
///
/// Integers decode to [`Value::Int`] when they fit in `i64`, else (only values
/// above `i64::MAX`) to [`Value::UInt`]. `float32` decodes to [`Value::Float`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `nil`.
    Nil,
    /// `true` / `false`.
    Bool(bool),
    /// An integer that fits in `i64`.
    Int(i64),
    /// An integer above `i64::MAX`.
    UInt(u64),
    /// A float (float32 is widened).
    Float(f64),
    /// A UTF-8 string.
    Str(String),
    /// Raw bytes (`bin` family).
    Bin(Vec<u8>),
    /// An array.
    Array(Vec<Value>),
    /// A map, in wire order; keys may be any value (hm's messages use strings).
    Map(Vec<(Value, Value)>),
    /// An extension value: type tag and payload.
    Ext(i8, Vec<u8>),
}

impl Value {
    /// The value's msgpack type name, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::UInt(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bin(_) => "bin",
            Value::Array(_) => "array",
            Value::Map(_) => "map",
            Value::Ext(..) => "ext",
        }
    }

    /// The string, if this is a [`Value::Str`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is an integer that fits in `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(i) => Some(i),
            Value::UInt(u) => i64::try_from(u).ok(),
            _ => None,
        }
    }

    /// The boolean, if this is a [`Value::Bool`].
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The value under string key `key`, if this is a map that has it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => {
                entries.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v)
            }
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl From<i32> for Value {
    fn from(i: i32) -> Self {
        Value::Int(i.into())
    }
}
impl From<u64> for Value {
    fn from(u: u64) -> Self {
        match i64::try_from(u) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::UInt(u),
        }
    }
}
impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}
impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Self {
        Value::Bin(b)
    }
}
impl From<Vec<Value>> for Value {
    fn from(items: Vec<Value>) -> Self {
        Value::Array(items)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(o: Option<T>) -> Self {
        o.map_or(Value::Nil, Into::into)
    }
}

/// Why bytes could not be decoded (malformed msgpack, or msgpack that does not
/// match a message's schema).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended in the middle of a value.
    UnexpectedEof {
        /// Byte offset where more input was needed.
        offset: usize,
    },
    /// A marker byte msgpack reserves (`0xc1`).
    InvalidMarker {
        /// Byte offset of the marker.
        offset: usize,
        /// The marker byte.
        byte: u8,
    },
    /// A string that is not UTF-8.
    InvalidUtf8 {
        /// Byte offset of the string's first byte.
        offset: usize,
    },
    /// Arrays and maps nested deeper than [`MAX_DEPTH`].
    TooDeep {
        /// Byte offset of the container that was one level too deep.
        offset: usize,
    },
    /// Bytes after the one value that was expected.
    TrailingBytes {
        /// Byte offset of the first extra byte.
        offset: usize,
    },
    /// Well-formed msgpack that does not match the expected message.
    Schema {
        /// Where, e.g. `ExecutorInput.step.key` (empty at the top level).
        path: String,
        /// What is wrong, e.g. `expected str, found int`.
        message: String,
    },
}

impl DecodeError {
    /// A schema error at the current position (the caller adds the path).
    pub fn schema(message: impl Into<String>) -> Self {
        DecodeError::Schema { path: String::new(), message: message.into() }
    }

    /// `expected <what>, found <type of v>`.
    pub fn expected(what: &str, found: &Value) -> Self {
        Self::schema(format!("expected {what}, found {}", found.type_name()))
    }

    /// Prefixes a schema error's path with `segment` (a field name or `[index]`).
    /// Syntax errors are returned unchanged.
    pub fn within(self, segment: &str) -> Self {
        match self {
            DecodeError::Schema { path, message } => {
                let path = if path.is_empty() {
                    segment.to_owned()
                } else if path.starts_with('[') {
                    format!("{segment}{path}")
                } else {
                    format!("{segment}.{path}")
                };
                DecodeError::Schema { path, message }
            }
            other => other,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::UnexpectedEof { offset } => {
                write!(f, "malformed msgpack: input ends in the middle of a value (at byte {offset})")
            }
            DecodeError::InvalidMarker { offset, byte } => {
                write!(f, "malformed msgpack: reserved marker 0x{byte:02x} at byte {offset}")
            }
            DecodeError::InvalidUtf8 { offset } => {
                write!(f, "malformed msgpack: string at byte {offset} is not UTF-8")
            }
            DecodeError::TooDeep { offset } => write!(
                f,
                "malformed msgpack: containers nested deeper than {MAX_DEPTH} levels (at byte {offset})"
            ),
            DecodeError::TrailingBytes { offset } => {
                write!(f, "malformed msgpack: unexpected bytes after the value (at byte {offset})")
            }
            DecodeError::Schema { path, message } if path.is_empty() => f.write_str(message),
            DecodeError::Schema { path, message } => write!(f, "{path}: {message}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Appends msgpack values to a growable buffer.
///
/// Containers are a header with an element count followed by the elements:
/// `write_map_len(2)` must be followed by exactly two key/value pairs. The
/// writer does not check this; [`Writer::write_value`] always gets it right.
#[derive(Debug, Clone, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Writer { buf: Vec::new() }
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The bytes written, consuming the writer.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Appends already-encoded msgpack verbatim.
    pub fn write_raw(&mut self, encoded: &[u8]) {
        self.buf.extend_from_slice(encoded);
    }

    /// Writes `nil`.
    pub fn write_nil(&mut self) {
        self.buf.push(0xc0);
    }

    /// Writes `true` or `false`.
    pub fn write_bool(&mut self, b: bool) {
        self.buf.push(if b { 0xc3 } else { 0xc2 });
    }

    /// Writes a signed integer in its smallest encoding (unsigned forms when `i >= 0`).
    pub fn write_int(&mut self, i: i64) {
        if i >= 0 {
            self.write_uint(i as u64);
        } else if i >= -32 {
            self.buf.push(i as i8 as u8);
        } else if i >= i64::from(i8::MIN) {
            self.buf.push(0xd0);
            self.buf.push(i as i8 as u8);
        } else if i >= i64::from(i16::MIN) {
            self.buf.push(0xd1);
            self.buf.extend_from_slice(&(i as i16).to_be_bytes());
        } else if i >= i64::from(i32::MIN) {
            self.buf.push(0xd2);
            self.buf.extend_from_slice(&(i as i32).to_be_bytes());
        } else {
            self.buf.push(0xd3);
            self.buf.extend_from_slice(&i.to_be_bytes());
        }
    }

    /// Writes an unsigned integer in its smallest encoding.
    pub fn write_uint(&mut self, u: u64) {
        if u < 0x80 {
            self.buf.push(u as u8);
        } else if u <= u64::from(u8::MAX) {
            self.buf.push(0xcc);
            self.buf.push(u as u8);
        } else if u <= u64::from(u16::MAX) {
            self.buf.push(0xcd);
            self.buf.extend_from_slice(&(u as u16).to_be_bytes());
        } else if u <= u64::from(u32::MAX) {
            self.buf.push(0xce);
            self.buf.extend_from_slice(&(u as u32).to_be_bytes());
        } else {
            self.buf.push(0xcf);
            self.buf.extend_from_slice(&u.to_be_bytes());
        }
    }

    /// Writes a float64.
    pub fn write_f64(&mut self, f: f64) {
        self.buf.push(0xcb);
        self.buf.extend_from_slice(&f.to_bits().to_be_bytes());
    }

    /// Writes a string.
    ///
    /// # Panics
    ///
    /// If `s` is 4 GiB or longer, which msgpack cannot represent.
    pub fn write_str(&mut self, s: &str) {
        let n = len_u32(s.len());
        if n < 32 {
            self.buf.push(0xa0 | n as u8);
        } else if n <= u32::from(u8::MAX) {
            self.buf.push(0xd9);
            self.buf.push(n as u8);
        } else if n <= u32::from(u16::MAX) {
            self.buf.push(0xda);
            self.buf.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            self.buf.push(0xdb);
            self.buf.extend_from_slice(&n.to_be_bytes());
        }
        self.buf.extend_from_slice(s.as_bytes());
    }

    /// Writes bytes as `bin`.
    ///
    /// # Panics
    ///
    /// If `b` is 4 GiB or longer, which msgpack cannot represent.
    pub fn write_bin(&mut self, b: &[u8]) {
        let n = len_u32(b.len());
        self.write_sized(n, [0xc4, 0xc5, 0xc6]);
        self.buf.extend_from_slice(b);
    }

    /// Writes an array header; `n` values must follow.
    pub fn write_array_len(&mut self, n: u32) {
        if n < 16 {
            self.buf.push(0x90 | n as u8);
        } else if n <= u32::from(u16::MAX) {
            self.buf.push(0xdc);
            self.buf.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            self.buf.push(0xdd);
            self.buf.extend_from_slice(&n.to_be_bytes());
        }
    }

    /// Writes a map header; `n` key/value pairs must follow.
    pub fn write_map_len(&mut self, n: u32) {
        if n < 16 {
            self.buf.push(0x80 | n as u8);
        } else if n <= u32::from(u16::MAX) {
            self.buf.push(0xde);
            self.buf.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            self.buf.push(0xdf);
            self.buf.extend_from_slice(&n.to_be_bytes());
        }
    }

    /// Writes an extension value.
    ///
    /// # Panics
    ///
    /// If `data` is 4 GiB or longer.
    pub fn write_ext(&mut self, ty: i8, data: &[u8]) {
        let n = len_u32(data.len());
        match n {
            1 => self.buf.push(0xd4),
            2 => self.buf.push(0xd5),
            4 => self.buf.push(0xd6),
            8 => self.buf.push(0xd7),
            16 => self.buf.push(0xd8),
            _ => self.write_sized(n, [0xc7, 0xc8, 0xc9]),
        }
        self.buf.push(ty as u8);
        self.buf.extend_from_slice(data);
    }

    /// Writes any [`Value`].
    ///
    /// # Panics
    ///
    /// If a string, byte string or container is too large for msgpack (4 GiB / 2³² items).
    pub fn write_value(&mut self, v: &Value) {
        match v {
            Value::Nil => self.write_nil(),
            Value::Bool(b) => self.write_bool(*b),
            Value::Int(i) => self.write_int(*i),
            Value::UInt(u) => self.write_uint(*u),
            Value::Float(f) => self.write_f64(*f),
            Value::Str(s) => self.write_str(s),
            Value::Bin(b) => self.write_bin(b),
            Value::Array(items) => {
                self.write_array_len(len_u32(items.len()));
                items.iter().for_each(|item| self.write_value(item));
            }
            Value::Map(entries) => {
                self.write_map_len(len_u32(entries.len()));
                for (k, v) in entries {
                    self.write_value(k);
                    self.write_value(v);
                }
            }
            Value::Ext(ty, data) => self.write_ext(*ty, data),
        }
    }

    fn write_sized(&mut self, n: u32, markers: [u8; 3]) {
        if n <= u32::from(u8::MAX) {
            self.buf.push(markers[0]);
            self.buf.push(n as u8);
        } else if n <= u32::from(u16::MAX) {
            self.buf.push(markers[1]);
            self.buf.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            self.buf.push(markers[2]);
            self.buf.extend_from_slice(&n.to_be_bytes());
        }
    }
}

fn len_u32(n: usize) -> u32 {
    u32::try_from(n).expect("msgpack cannot encode a string, byte string or container of 2^32 or more")
}

/// Encodes one value.
pub fn encode(v: &Value) -> Vec<u8> {
    let mut w = Writer::new();
    w.write_value(v);
    w.into_bytes()
}

/// Decodes exactly one value from `bytes` (trailing bytes are an error).
pub fn decode(bytes: &[u8]) -> Result<Value, DecodeError> {
    let mut r = Reader::new(bytes);
    let v = r.read_value()?;
    if !r.is_empty() {
        return Err(DecodeError::TrailingBytes { offset: r.position() });
    }
    Ok(v)
}

/// A cursor that decodes values from borrowed bytes.
///
/// On error the cursor position is unspecified; start over with a new reader.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    /// Offset of the next byte to read.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// True when every byte was consumed.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    /// The bytes not read yet.
    pub fn remaining(&self) -> &'a [u8] {
        self.bytes.get(self.pos..).unwrap_or(&[])
    }

    /// Decodes the next value.
    pub fn read_value(&mut self) -> Result<Value, DecodeError> {
        self.value(0)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&end| end <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(DecodeError::UnexpectedEof { offset: self.bytes.len() }),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let s = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn str(&mut self, n: usize) -> Result<Value, DecodeError> {
        let offset = self.pos;
        let raw = self.take(n)?;
        match core::str::from_utf8(raw) {
            Ok(s) => Ok(Value::Str(s.to_owned())),
            Err(_) => Err(DecodeError::InvalidUtf8 { offset }),
        }
    }

    fn bin(&mut self, n: usize) -> Result<Value, DecodeError> {
        Ok(Value::Bin(self.take(n)?.to_vec()))
    }

    fn ext(&mut self, n: usize) -> Result<Value, DecodeError> {
        let ty = self.u8()? as i8;
        Ok(Value::Ext(ty, self.take(n)?.to_vec()))
    }

    /// Each element takes at least one byte: never reserve more than the input could hold.
    fn capacity(&self, n: usize) -> usize {
        n.min(self.bytes.len().saturating_sub(self.pos))
    }

    fn items(&mut self, n: usize, depth: usize, at: usize) -> Result<Value, DecodeError> {
        if depth >= MAX_DEPTH {
            return Err(DecodeError::TooDeep { offset: at });
        }
        let mut items = Vec::with_capacity(self.capacity(n));
        for _ in 0..n {
            items.push(self.value(depth + 1)?);
        }
        Ok(Value::Array(items))
    }

    fn entries(&mut self, n: usize, depth: usize, at: usize) -> Result<Value, DecodeError> {
        if depth >= MAX_DEPTH {
            return Err(DecodeError::TooDeep { offset: at });
        }
        let mut entries = Vec::with_capacity(self.capacity(n) / 2);
        for _ in 0..n {
            let k = self.value(depth + 1)?;
            let v = self.value(depth + 1)?;
            entries.push((k, v));
        }
        Ok(Value::Map(entries))
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        let at = self.pos;
        let marker = self.u8()?;
        let v = match marker {
            0x00..=0x7f => Value::Int(i64::from(marker)),
            0x80..=0x8f => return self.entries(usize::from(marker & 0x0f), depth, at),
            0x90..=0x9f => return self.items(usize::from(marker & 0x0f), depth, at),
            0xa0..=0xbf => return self.str(usize::from(marker & 0x1f)),
            0xc0 => Value::Nil,
            0xc1 => return Err(DecodeError::InvalidMarker { offset: at, byte: marker }),
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xc4 => {
                let n = self.u8()?;
                return self.bin(usize::from(n));
            }
            0xc5 => {
                let n = self.u16()?;
                return self.bin(usize::from(n));
            }
            0xc6 => {
                let n = self.u32()?;
                return self.bin(n as usize);
            }
            0xc7 => {
                let n = self.u8()?;
                return self.ext(usize::from(n));
            }
            0xc8 => {
                let n = self.u16()?;
                return self.ext(usize::from(n));
            }
            0xc9 => {
                let n = self.u32()?;
                return self.ext(n as usize);
            }
            0xca => Value::Float(f64::from(f32::from_bits(self.u32()?))),
            0xcb => Value::Float(f64::from_bits(self.u64()?)),
            0xcc => Value::Int(i64::from(self.u8()?)),
            0xcd => Value::Int(i64::from(self.u16()?)),
            0xce => Value::Int(i64::from(self.u32()?)),
            0xcf => Value::from(self.u64()?),
            0xd0 => Value::Int(i64::from(self.u8()? as i8)),
            0xd1 => Value::Int(i64::from(self.u16()? as i16)),
            0xd2 => Value::Int(i64::from(self.u32()? as i32)),
            0xd3 => Value::Int(self.u64()? as i64),
            0xd4 => return self.ext(1),
            0xd5 => return self.ext(2),
            0xd6 => return self.ext(4),
            0xd7 => return self.ext(8),
            0xd8 => return self.ext(16),
            0xd9 => {
                let n = self.u8()?;
                return self.str(usize::from(n));
            }
            0xda => {
                let n = self.u16()?;
                return self.str(usize::from(n));
            }
            0xdb => {
                let n = self.u32()?;
                return self.str(n as usize);
            }
            0xdc => {
                let n = self.u16()?;
                return self.items(usize::from(n), depth, at);
            }
            0xdd => {
                let n = self.u32()?;
                return self.items(n as usize, depth, at);
            }
            0xde => {
                let n = self.u16()?;
                return self.entries(usize::from(n), depth, at);
            }
            0xdf => {
                let n = self.u32()?;
                return self.entries(n as usize, depth, at);
            }
            0xe0..=0xff => Value::Int(i64::from(marker as i8)),
        };
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(v: Value) {
        let bytes = encode(&v);
        assert_eq!(decode(&bytes).unwrap(), v, "bytes {bytes:02x?}");
    }

    #[test]
    fn integers_use_the_smallest_encoding() {
        let cases: &[(i64, &[u8])] = &[
            (0, b"\x00"),
            (127, b"\x7f"),
            (128, b"\xcc\x80"),
            (255, b"\xcc\xff"),
            (256, b"\xcd\x01\x00"),
            (65536, b"\xce\x00\x01\x00\x00"),
            (1 << 40, b"\xcf\x00\x00\x01\x00\x00\x00\x00\x00"),
            (-1, b"\xff"),
            (-32, b"\xe0"),
            (-33, b"\xd0\xdf"),
            (-300, b"\xd1\xfe\xd4"),
            (-70000, b"\xd2\xff\xfe\xee\x90"),
            (i64::MIN, b"\xd3\x80\x00\x00\x00\x00\x00\x00\x00"),
        ];
        for &(i, want) in cases {
            assert_eq!(encode(&Value::Int(i)), want, "{i}");
            assert_eq!(decode(want).unwrap(), Value::Int(i));
        }
        round_trip(Value::UInt(u64::MAX));
        assert_eq!(decode(b"\xcf\x7f\xff\xff\xff\xff\xff\xff\xff").unwrap(), Value::Int(i64::MAX));
    }

    #[test]
    fn every_type_round_trips() {
        round_trip(Value::Nil);
        round_trip(Value::Bool(true));
        round_trip(Value::Bool(false));
        round_trip(Value::Float(-0.5));
        round_trip(Value::Float(f64::INFINITY));
        for n in [0usize, 31, 32, 255, 256, 65535, 65536] {
            round_trip(Value::Str("é".repeat(n / 2) + &"x".repeat(n % 2)));
            round_trip(Value::Bin(vec![7; n]));
            round_trip(Value::Array(vec![Value::Nil; n.min(70000)]));
        }
        round_trip(Value::Map((0..20).map(|i| (Value::Int(i), Value::from("v"))).collect()));
        round_trip(Value::Map((0..70000).map(|i| (Value::Int(i), Value::Nil)).collect()));
        for n in [1usize, 2, 3, 4, 8, 16, 17, 300, 70000] {
            round_trip(Value::Ext(-3, vec![1; n]));
        }
        let nested = Value::Map(vec![(
            Value::from("a"),
            Value::Array(vec![Value::Int(-5), Value::from("s"), Value::Map(vec![])]),
        )]);
        round_trip(nested);
    }

    #[test]
    fn float32_is_widened() {
        assert_eq!(decode(b"\xca\x3f\x00\x00\x00").unwrap(), Value::Float(0.5));
    }

    #[test]
    fn strings_match_msgspec_markers() {
        assert_eq!(encode(&Value::from("x".repeat(31).as_str()))[0], 0xbf);
        assert_eq!(encode(&Value::from("x".repeat(32).as_str()))[..2], [0xd9, 32]);
        assert_eq!(encode(&Value::from("x".repeat(256).as_str()))[..3], [0xda, 1, 0]);
    }

    #[test]
    fn truncated_input_is_an_error_at_every_cut() {
        let v = Value::Map(vec![
            (Value::from("key"), Value::Array(vec![Value::Int(1 << 40), Value::Float(1.5)])),
            (Value::from("s"), Value::from("x".repeat(40).as_str())),
            (Value::from("b"), Value::Bin(vec![1, 2, 3])),
            (Value::from("e"), Value::Ext(1, vec![1, 2, 3])),
        ]);
        let bytes = encode(&v);
        for cut in 0..bytes.len() {
            assert!(
                matches!(decode(&bytes[..cut]), Err(DecodeError::UnexpectedEof { .. })),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn hostile_input_is_rejected_without_panicking() {
        // Huge claimed lengths with no data behind them.
        for bytes in [
            &b"\xdd\xff\xff\xff\xff"[..],
            b"\xdf\xff\xff\xff\xff",
            b"\xdb\xff\xff\xff\xff",
            b"\xc6\xff\xff\xff\xff",
            b"\xc9\xff\xff\xff\xff\x01",
        ] {
            assert!(matches!(decode(bytes), Err(DecodeError::UnexpectedEof { .. })), "{bytes:02x?}");
        }
        assert_eq!(decode(b"\xc1"), Err(DecodeError::InvalidMarker { offset: 0, byte: 0xc1 }));
        assert_eq!(decode(b"\xa2\xff\xfe"), Err(DecodeError::InvalidUtf8 { offset: 1 }));
        assert_eq!(decode(b"\x01\x02"), Err(DecodeError::TrailingBytes { offset: 1 }));
        assert!(decode(b"").is_err());
        // Deep nesting: an error, not a stack overflow.
        let deep = vec![0x91u8; 100_000];
        assert!(matches!(decode(&deep), Err(DecodeError::TooDeep { .. })));
        let deep_maps: Vec<u8> = (0..100_000).flat_map(|_| [0x81u8, 0xa0]).collect();
        assert!(matches!(decode(&deep_maps), Err(DecodeError::TooDeep { .. })));
        // Exactly MAX_DEPTH levels is fine.
        let mut ok = vec![0x91u8; MAX_DEPTH];
        ok.push(0xc0);
        assert!(decode(&ok).is_ok());
    }

    #[test]
    fn random_noise_decodes_or_errors() {
        // A cheap deterministic fuzz: xorshift noise must never panic.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let len = (state % 64) as usize;
            let mut bytes = Vec::with_capacity(len);
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                bytes.push(state as u8);
            }
            let _ = decode(&bytes);
            state = state.wrapping_add(1);
        }
    }

    #[test]
    fn schema_error_paths_compose() {
        let e = DecodeError::schema("expected str, found int").within("key").within("[2]").within("step");
        assert_eq!(e.to_string(), "step[2].key: expected str, found int");
    }
}
