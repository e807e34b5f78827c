//! Tolerant deserialisation of answers: a field of the wrong shape counts as absent instead of
//! failing the whole answer (status trees and task lists are read from a service whose
//! schema may differ from what was published), and values come in several forms.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// A value of the wrong shape is treated as absent instead of failing the whole answer.
///
/// The value is taken as raw JSON text and parsed on its own (a failure then spoils nothing
/// around it); raw text rather than a `serde_json::Value` because status trees are decoded
/// on every poll, and building a `Value` for every field and subtree was most of that cost.
pub(super) fn lenient<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let raw = Option::<Box<RawValue>>::deserialize(deserializer)?;
    Ok(raw.and_then(|raw| serde_json::from_str(raw.get()).ok()))
}

/// A node's children; a child that is not an object is left out, as is the whole map when it
/// is not an object (see [`lenient`]; a child's own fields are each lenient, so an object is
/// always a node — one that names a field twice fails the answer, as it does at the root).
/// Read in one pass: each level of the tree is parsed once, not captured and parsed again at
/// every depth (status trees are most of what a fleet reads).
pub(super) fn lenient_children<'de, D: Deserializer<'de>, N: Deserialize<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, N>, D::Error> {
    deserializer.deserialize_any(ObjectOrDefault::<Children<N>>(PhantomData))
}

/// A child in [`lenient_children`]: a node when it is an object.
struct Child<N>(Option<N>);

impl<N> Default for Child<N> {
    fn default() -> Child<N> {
        Child(None)
    }
}

impl<'de, N: Deserialize<'de>> Deserialize<'de> for Child<N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Child<N>, D::Error> {
        deserializer.deserialize_any(ObjectOrDefault::<Child<N>>(PhantomData))
    }
}

type Children<N> = BTreeMap<String, N>;

/// What a JSON object becomes in [`ObjectOrDefault`].
trait FromObject<'de>: Default {
    fn from_object<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error>;
}

impl<'de, N: Deserialize<'de>> FromObject<'de> for Children<N> {
    fn from_object<A: MapAccess<'de>>(mut map: A) -> Result<Children<N>, A::Error> {
        let mut children = Children::new();
        while let Some(name) = map.next_key::<String>()? {
            if let Child(Some(child)) = map.next_value()? {
                children.insert(name, child);
            }
        }
        Ok(children)
    }
}

impl<'de, N: Deserialize<'de>> FromObject<'de> for Child<N> {
    fn from_object<A: MapAccess<'de>>(map: A) -> Result<Child<N>, A::Error> {
        N::deserialize(MapAccessDeserializer::new(map)).map(|node| Child(Some(node)))
    }
}

/// Reads a JSON object as `T`; any other value is read past and taken as `T::default()`.
struct ObjectOrDefault<T>(PhantomData<T>);

impl<'de, T: FromObject<'de>> Visitor<'de> for ObjectOrDefault<T> {
    type Value = T;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::from_object(map)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(T::default())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_unit<E: de::Error>(self) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_none<E: de::Error>(self) -> Result<T, E> {
        Ok(T::default())
    }
}

pub(super) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

pub(super) fn non_empty_string<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    Ok(match value {
        Some(serde_json::Value::String(text)) if !text.trim().is_empty() => Some(text),
        _ => None,
    })
}

pub(super) fn string_or_number<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<String, D::Error> {
    Ok(string_or_number_opt(deserializer)?.unwrap_or_default())
}

pub(super) fn string_or_number_opt<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    Ok(match value {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(text)) => Some(text),
        Some(other) => Some(other.to_string()),
    })
}

pub(super) fn occurrence_list<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    Ok(match value {
        Some(serde_json::Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                serde_json::Value::String(text) => text,
                other => other.to_string(),
            })
            .collect(),
        Some(serde_json::Value::String(text)) => vec![text],
        Some(serde_json::Value::Null) | None => Vec::new(),
        Some(other) => vec![other.to_string()],
    })
}

pub(super) fn lenient_bool<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<bool>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    Ok(match value {
        Some(serde_json::Value::Bool(flag)) => Some(flag),
        Some(serde_json::Value::String(text)) => match text.to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    })
}

pub(super) fn lenient_f64<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<f64>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    Ok(match value {
        Some(serde_json::Value::Number(number)) => number.as_f64(),
        Some(serde_json::Value::String(text)) => text.trim().parse().ok(),
        _ => None,
    })
}

pub(super) fn lenient_u64<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u64>, D::Error> {
    Ok(lenient_f64(deserializer)?
        .filter(|n| *n >= 0.0)
        .map(|n| n as u64))
}
