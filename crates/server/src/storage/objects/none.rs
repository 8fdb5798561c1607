//! Object storage left out of this build (cargo feature `object-storage` off): the types
//! the registry names, with no values, so that no object path can run and the registry
//! needs no conditional code. Settings refuse OBJECT_MAP and URL prefixes in such a build.

use crate::error::Result;
use iipsrv_formats::bytes::ByteSource;
use std::sync::Arc;
use std::time::SystemTime;

/// A type with no values.
enum Never {}

/// Object stores: none can exist in this build.
pub(crate) struct ObjectStores(Never);

/// An object of a store: none can exist in this build.
pub(crate) struct ObjectRef {
    /// The object's URL.
    pub url: String,
    #[allow(dead_code)] // makes the type uninhabited; nothing reads it
    never: Never,
}

/// What a store says of an object: none can exist in this build.
pub(crate) struct ObjectStat {
    /// Modification time.
    pub mtime: SystemTime,
    never: Never,
}

impl ObjectStat {
    /// The object's version stamp.
    pub fn tag(&self) -> String {
        match self.never {}
    }
}

impl ObjectStores {
    /// The object `id` names.
    pub(crate) fn route(&self, _id: &str, _suffix: &str) -> Option<Result<ObjectRef>> {
        match self.0 {}
    }

    /// What the store says of `object`.
    pub fn stat(&self, _object: &ObjectRef) -> Result<ObjectStat> {
        match self.0 {}
    }

    /// The bytes of `object`.
    pub fn bytes(&self, _object: &ObjectRef, _stat: &ObjectStat) -> Arc<dyn ByteSource> {
        match self.0 {}
    }

    /// Drops cached blocks.
    pub fn clear(&self) {
        match self.0 {}
    }
}
