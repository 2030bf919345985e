//! The glue between [`Value`] and typed messages: field lookup with error paths,
//! struct encoding that leaves defaults out (like msgspec's `omit_defaults`), and
//! string enums.

use std::collections::BTreeMap;

use crate::msgpack::{DecodeError, Value, Writer};

/// Decoding from a [`Value`], with schema errors that name the field.
pub(crate) trait FromValue: Sized {
    fn from_value(v: Value) -> Result<Self, DecodeError>;
}

/// Encoding to a [`Writer`].
pub(crate) trait Encode {
    fn encode(&self, w: &mut Writer);
}

impl FromValue for Value {
    fn from_value(v: Value) -> Result<Self, DecodeError> {
        Ok(v)
    }
}

impl Encode for Value {
    fn encode(&self, w: &mut Writer) {
        w.write_value(self);
    }
}

impl FromValue for String {
    fn from_value(v: Value) -> Result<Self, DecodeError> {
        match v {
            Value::Str(s) => Ok(s),
            other => Err(DecodeError::expected("str", &other)),
        }
    }
}

impl Encode for String {
    fn encode(&self, w: &mut Writer) {
        w.write_str(self);
    }
}

impl Encode for str {
    fn encode(&self, w: &mut Writer) {
        w.write_str(self);
    }
}

impl FromValue for bool {
    fn from_value(v: Value) -> Result<Self, DecodeError> {
        match v {
            Value::Bool(b) => Ok(b),
            other => Err(DecodeError::expected("bool", &other)),
        }
    }
}

impl Encode for bool {
    fn encode(&self, w: &mut Writer) {
        w.write_bool(*self);
    }
}

impl FromValue for i64 {
    fn from_value(v: Value) -> Result<Self, DecodeError> {
        match v {
            Value::Int(i) => Ok(i),
            Value::UInt(_) => Err(DecodeError::schema("integer out of range (above i64::MAX)")),
            other => Err(DecodeError::expected("int", &other)),
        }
    }
}

impl Encode for i64 {
    fn encode(&self, w: &mut Writer) {
        w.write_int(*self);
    }
}

impl FromValue for u64 {
    fn from_value(v: Value) -> Result<Self, DecodeError> {
        match v {
            Value::Int(i) => u64::try_from(i)
                .map_err(|_| DecodeError::schema(format!("expected a non-negative int, found {i}"))),
            Value::UInt(u) => Ok(u),
            other => Err(DecodeError::expected("int", &other)),
        }
    }
}

impl Encode for u64 {
    fn encode(&self, w: &mut Writer) {
        w.write_uint(*self);
    }
}

impl FromValue for f64 {
    /// Like msgspec, an int is accepted where a float is expected.
    fn from_value(v: Value) -> Result<Self, DecodeError> {
        match v {
            Value::Float(f) => Ok(f),
            Value::Int(i) => Ok(i as f64),
            Value::UInt(u) => Ok(u as f64),
            other => Err(DecodeError::expected("float", &other)),
        }
    }
}

impl Encode for f64 {
    fn encode(&self, w: &mut Writer) {
        w.write_f64(*self);
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: Value) -> Result<Self, DecodeError> {
        match v {
            Value::Nil => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

impl<T: Encode> Encode for Option<T> {
    fn encode(&self, w: &mut Writer) {
        match self {
            Some(v) => v.encode(w),
            None => w.write_nil(),
        }
    }
}

impl<T: FromValue> FromValue for Vec<T> {
    fn from_value(v: Value) -> Result<Self, DecodeError> {
        match v {
            Value::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| T::from_value(item).map_err(|e| e.within(&format!("[{i}]"))))
                .collect(),
            other => Err(DecodeError::expected("array", &other)),
        }
    }
}

impl<T: Encode> Encode for Vec<T> {
    fn encode(&self, w: &mut Writer) {
        w.write_array_len(len_u32(self.len()));
        self.iter().for_each(|item| item.encode(w));
    }
}

impl<T: FromValue> FromValue for BTreeMap<String, T> {
    fn from_value(v: Value) -> Result<Self, DecodeError> {
        match v {
            Value::Map(entries) => {
                let mut map = BTreeMap::new();
                for (k, v) in entries {
                    let Value::Str(k) = k else {
                        return Err(DecodeError::expected("str keys", &k));
                    };
                    let v = T::from_value(v).map_err(|e| e.within(&k))?;
                    map.insert(k, v);
                }
                Ok(map)
            }
            other => Err(DecodeError::expected("map", &other)),
        }
    }
}

impl<T: Encode> Encode for BTreeMap<String, T> {
    fn encode(&self, w: &mut Writer) {
        w.write_map_len(len_u32(self.len()));
        for (k, v) in self {
            w.write_str(k);
            v.encode(w);
        }
    }
}

pub(crate) fn len_u32(n: usize) -> u32 {
    u32::try_from(n).expect("msgpack cannot encode a container of 2^32 or more items")
}

/// The string-keyed entries of a map being decoded into a struct. Fields are
/// taken out one by one; whatever is left (unknown keys) is ignored, so a newer
/// host may add optional fields.
pub(crate) struct Fields {
    entries: Vec<(String, Value)>,
}

impl Fields {
    /// The map's string-keyed entries (entries with other keys are ignored).
    pub(crate) fn new(v: Value) -> Result<Self, DecodeError> {
        match v {
            Value::Map(entries) => Ok(Fields {
                entries: entries
                    .into_iter()
                    .filter_map(|(k, v)| match k {
                        Value::Str(k) => Some((k, v)),
                        _ => None,
                    })
                    .collect(),
            }),
            other => Err(DecodeError::expected("map", &other)),
        }
    }

    /// Removes and returns the value of `key` (the first one, if repeated).
    pub(crate) fn take(&mut self, key: &str) -> Option<Value> {
        let i = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.swap_remove(i).1)
    }

    /// A field that must be present.
    pub(crate) fn required<T: FromValue>(&mut self, key: &str) -> Result<T, DecodeError> {
        match self.take(key) {
            Some(v) => T::from_value(v).map_err(|e| e.within(key)),
            None => Err(DecodeError::schema(format!("missing required field `{key}`"))),
        }
    }

    /// A field that may be absent or nil.
    pub(crate) fn optional<T: FromValue>(&mut self, key: &str) -> Result<Option<T>, DecodeError> {
        self.or(key, None)
    }

    /// A field that takes `default` when absent.
    pub(crate) fn or<T: FromValue>(&mut self, key: &str, default: T) -> Result<T, DecodeError> {
        match self.take(key) {
            Some(v) => T::from_value(v).map_err(|e| e.within(key)),
            None => Ok(default),
        }
    }

    /// A field that takes `T::default()` when absent.
    pub(crate) fn or_default<T: FromValue + Default>(&mut self, key: &str) -> Result<T, DecodeError> {
        self.or(key, T::default())
    }

    /// The entries not taken, as a map.
    pub(crate) fn into_rest(self) -> BTreeMap<String, Value> {
        self.entries.into_iter().collect()
    }
}

/// Encodes a struct as a map, counting the fields it writes (so defaults can be left out).
pub(crate) struct MapBuilder {
    n: u32,
    body: Writer,
}

impl MapBuilder {
    pub(crate) fn new() -> Self {
        MapBuilder { n: 0, body: Writer::new() }
    }

    /// Writes `key: value`.
    pub(crate) fn field<T: Encode + ?Sized>(&mut self, key: &str, value: &T) -> &mut Self {
        self.n += 1;
        self.body.write_str(key);
        value.encode(&mut self.body);
        self
    }

    /// Writes `key: value` unless `omit` (the value equals the field's default).
    pub(crate) fn field_unless<T: Encode + ?Sized>(&mut self, omit: bool, key: &str, value: &T) -> &mut Self {
        if !omit {
            self.field(key, value);
        }
        self
    }

    /// Writes `key: value` when the option is `Some`.
    pub(crate) fn field_some<T: Encode>(&mut self, key: &str, value: &Option<T>) -> &mut Self {
        if let Some(v) = value {
            self.field(key, v);
        }
        self
    }

    pub(crate) fn finish(&self, w: &mut Writer) {
        w.write_map_len(self.n);
        w.write_raw(self.body.as_bytes());
    }
}

/// Defines a string enum (a `Literal[...]` of protocol.py) with `as_str`,
/// `FromValue`, `Encode` and `Display`. With `other`, unknown strings decode to
/// an `Other(String)` variant instead of failing (for values a newer host may send).
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $s:literal, )+
        }
        $( other: $(#[$ometa:meta])* $other:ident )?
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            $( $(#[$ometa])* $other(String), )?
        }

        impl $name {
            /// The wire spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $s, )+
                    $( $name::$other(s) => s, )?
                }
            }

            /// Parses the wire spelling.
            #[allow(clippy::should_implement_trait)]
            pub fn from_str(s: &str) -> Option<Self> {
                match s {
                    $( $s => Some($name::$variant), )+
                    _ => string_enum!(@other s $(, $name::$other)?),
                }
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl $crate::protocol::codec::FromValue for $name {
            fn from_value(v: $crate::msgpack::Value) -> Result<Self, $crate::msgpack::DecodeError> {
                let s = <String as $crate::protocol::codec::FromValue>::from_value(v)?;
                $name::from_str(&s).ok_or_else(|| {
                    let allowed: &[&str] = &[$($s),+];
                    $crate::msgpack::DecodeError::schema(format!(
                        "expected one of {:?}, found {:?}", allowed, s
                    ))
                })
            }
        }

        impl $crate::protocol::codec::Encode for $name {
            fn encode(&self, w: &mut $crate::msgpack::Writer) {
                w.write_str(self.as_str());
            }
        }
    };
    (@other $s:ident) => { None };
    (@other $s:ident, $name:ident :: $other:ident) => { Some($name::$other($s.to_owned())) };
}

pub(crate) use string_enum;
