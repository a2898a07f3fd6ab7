//! The change log a session replays when a concurrent save won.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::error::Error;
use crate::expiry::Expiry;
use crate::record::Data;

/// A read-modify-write of one value, re-run on fresh data after a conflict.
pub(crate) type UpdateFn = Arc<dyn Fn(Option<&Value>) -> Result<Value, Error> + Send + Sync>;

/// One thing a handler did to the session.
#[derive(Clone)]
pub(crate) enum Change {
    Set(String, Value),
    Remove(String),
    Clear,
    Replace(Data),
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
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Contents {
    pub(crate) data: Data,
    pub(crate) principal: Option<String>,
    pub(crate) expiry: Option<Expiry>,
}

impl Contents {
    /// Applies one change, returning the new value for an update.
    pub(crate) fn apply(&mut self, change: &Change) -> Result<Option<Value>, Error> {
        match change {
            Change::Set(key, value) => {
                self.data.insert(key.clone(), value.clone());
            }
            Change::Remove(key) => {
                self.data.remove(key);
            }
            Change::Clear => self.data.clear(),
            Change::Replace(data) => self.data.clone_from(data),
            Change::Update(key, update) => {
                let value = update(self.data.get(key))?;
                self.data.insert(key.clone(), value.clone());
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
