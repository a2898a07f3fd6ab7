//! The change log a session replays when a concurrent save won.

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::data::{Slot, View};
use crate::error::Error;
use crate::expiry::Expiry;
use crate::record::Record;

/// A read-modify-write of one value, re-run on fresh data after a conflict.
pub(crate) type UpdateFn =
    Arc<dyn for<'a> Fn(Option<Slot<'a>>) -> Result<Value, Error> + Send + Sync>;

/// One thing a handler did to the session.
#[derive(Clone)]
pub(crate) enum Change {
    Set(String, Value),
    Remove(String),
    Clear,
    Replace(Map<String, Value>),
    Update(String, UpdateFn),
    Principal(Option<String>),
    Expiry(Option<Expiry>),
}

impl fmt::Debug for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values may be secrets (tokens, personal data); keys are not.
        match self {
            Self::Set(key, _) => write!(f, "Set({key:?})"),
            Self::Remove(key) => write!(f, "Remove({key:?})"),
            Self::Clear => f.write_str("Clear"),
            Self::Replace(_) => f.write_str("Replace"),
            Self::Update(key, _) => write!(f, "Update({key:?})"),
            Self::Principal(_) => f.write_str("Principal"),
            Self::Expiry(expiry) => write!(f, "Expiry({expiry:?})"),
        }
    }
}

/// What a session holds besides its identity and timestamps.
#[derive(Debug, Clone, Default)]
pub(crate) struct Contents {
    pub(crate) data: View,
    pub(crate) principal: Option<String>,
    pub(crate) expiry: Option<Expiry>,
}

impl Contents {
    /// The contents of `record`, sharing its data.
    pub(crate) fn of(record: &Record) -> Self {
        Self {
            data: View::new(record.data.clone()),
            principal: record.principal.clone(),
            expiry: record.expiry,
        }
    }

    /// Whether there is nothing worth storing.
    pub(crate) fn is_empty(&mut self) -> bool {
        self.principal.is_none() && self.expiry.is_none() && self.data.is_empty()
    }

    /// Whether these contents are exactly `record`'s.
    pub(crate) fn matches(&mut self, record: &Record) -> bool {
        self.principal == record.principal
            && self.expiry == record.expiry
            && self.data.render() == record.data
    }

    /// Applies one change, returning the new value for an update.
    pub(crate) fn apply(&mut self, change: &Change) -> Result<Option<Value>, Error> {
        match change {
            Change::Set(key, value) => self.data.set(key.clone(), value.clone()),
            Change::Remove(key) => {
                self.data.remove(key);
            }
            Change::Clear => self.data.clear(),
            Change::Replace(map) => self.data.replace(map),
            Change::Update(key, update) => {
                let value = update(self.data.get(key))?;
                self.data.set(key.clone(), value.clone());
                return Ok(Some(value));
            }
            Change::Principal(principal) => self.principal.clone_from(principal),
            Change::Expiry(expiry) => self.expiry = *expiry,
        }
        Ok(None)
    }

    /// Replays a whole log onto these contents.
    pub(crate) fn replay(&mut self, log: &[Change]) -> Result<(), Error> {
        for change in log {
            self.apply(change)?;
        }
        Ok(())
    }
}
