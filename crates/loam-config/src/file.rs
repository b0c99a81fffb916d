//! A process's TOML config file. Its keys are the long flags' names; every settings group reads the
//! keys it owns from the same text, and a key that no group of the process owns is an error naming it
//! and its line, so a typo is never silently ignored.

use crate::error::ConfigError;
use crate::{CONFIG_VERSION, Group};
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// A config file, read and checked for TOML syntax and its format version.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    path: PathBuf,
    text: String,
    table: toml::Table,
}

impl ConfigFile {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Io { path: path.to_path_buf(), source })?;
        Self::parse(&text, path)
    }

    /// Checks `text`; `path` names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| parse_error(text, path, &e))?;
        let file = Self { path: path.to_path_buf(), text: text.to_string(), table };
        match file.table.get("version") {
            None => {}
            Some(toml::Value::Integer(v)) if *v == i64::from(CONFIG_VERSION) => {}
            Some(toml::Value::Integer(v)) => return Err(ConfigError::Version { path: file.path, version: *v }),
            Some(other) => {
                return Err(
                    file.error_at("version", format!("version: expected an integer, found {}", other.type_str()))
                );
            }
        }
        Ok(file)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The keys the file sets.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.table.keys().map(String::as_str)
    }

    /// Fails on the first key that is not `version` and not in `known` (the keys of the process's groups).
    pub fn check_keys(&self, known: &[&str]) -> Result<(), ConfigError> {
        match self.keys().find(|k| *k != "version" && !known.contains(k)) {
            None => Ok(()),
            Some(key) => Err(self.error_at(key, format!("unknown field `{key}`"))),
        }
    }

    /// The keys of group `G` that the file sets (others are ignored here; `check_keys` refuses them).
    pub fn group<G: Group>(&self) -> Result<G, ConfigError> {
        toml::from_str(&self.text).map_err(|e| parse_error(&self.text, &self.path, &e))
    }

    /// The 1-based line where `key` is set, when it can be found.
    pub fn line_of(&self, key: &str) -> Option<usize> {
        self.text.lines().position(|l| defines(l.trim_start(), key)).map(|i| i + 1)
    }

    /// An error at the line of `key`.
    fn error_at(&self, key: &str, message: String) -> ConfigError {
        ConfigError::Parse { path: self.path.clone(), line: self.line_of(key), message }
    }
}

/// Whether `line` sets `key` (`key = …`, `"key" = …`, or the table header `[[key]]` / `[key]`).
fn defines(line: &str, key: &str) -> bool {
    let header = line.trim_start_matches('[').trim_start();
    let bare = |s: &str| s.strip_prefix(key).is_some_and(|rest| rest.trim_start().starts_with(['=', ']']));
    let quoted = |s: &str| s.strip_prefix('"').and_then(|s| s.strip_prefix(key)).is_some_and(|r| r.starts_with('"'));
    bare(line) || quoted(line) || (line.starts_with('[') && bare(header))
}

/// The names of `G`'s keys as serde sees them (kebab-case), read from its derived `Deserialize`.
pub fn field_names<G: DeserializeOwned>() -> &'static [&'static str] {
    let mut fields = None;
    let _ = G::deserialize(probe::FieldProbe(&mut fields));
    fields.unwrap_or(&[])
}

mod probe {
    //! A deserializer that only records the field list a derived struct asks for.
    use serde::de::{Error as _, Visitor, value::Error};

    pub struct FieldProbe<'a>(pub &'a mut Option<&'static [&'static str]>);

    impl<'de> serde::Deserializer<'de> for FieldProbe<'_> {
        type Error = Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
            Err(Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Error> {
            *self.0 = Some(fields);
            Err(Error::custom("probed"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
            unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
}

/// One line: the file, the line of the problem, and the message, naming the key when the message does not.
fn parse_error(text: &str, path: &Path, e: &toml::de::Error) -> ConfigError {
    let mut message = e.message().trim().to_string();
    let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
    if let Some(n) = line {
        let key = text.lines().nth(n - 1).and_then(|l| l.split_once('=')).map(|(k, _)| k.trim());
        if let Some(key) = key.filter(|k| !k.is_empty() && !message.contains(k)) {
            message = format!("{key}: {message}");
        }
    }
    ConfigError::Parse { path: path.to_path_buf(), line, message: message.replace('\n', " ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_keys_and_tables() {
        let f =
            ConfigFile::parse("# c\nhost = \"h\"\n\n[[mount]]\npath = \"/d\"\n\"cache-size\" = 1\n", Path::new("x"))
                .unwrap();
        assert_eq!(f.line_of("host"), Some(2));
        assert_eq!(f.line_of("mount"), Some(4));
        assert_eq!(f.line_of("cache-size"), Some(6));
        assert_eq!(f.line_of("hos"), None);
    }

    #[test]
    fn unknown_keys_and_versions() {
        let f = ConfigFile::parse("host = 1\nprot = 2\n", Path::new("c.toml")).unwrap();
        let e = f.check_keys(&["host"]).unwrap_err().to_string();
        assert_eq!(e, "config file c.toml, line 2: unknown field `prot`");
        assert!(f.check_keys(&["host", "prot"]).is_ok());
        let e = ConfigFile::parse("version = 2\n", Path::new("c.toml")).unwrap_err();
        assert!(matches!(e, ConfigError::Version { version: 2, .. }), "{e}");
        let e = ConfigFile::parse("\nversion = \"1\"\n", Path::new("c.toml")).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("version"), "{e}");
        let e = ConfigFile::parse("host = \n", Path::new("c.toml")).unwrap_err().to_string();
        assert!(e.starts_with("config file c.toml, line 1"), "{e}");
    }
}
