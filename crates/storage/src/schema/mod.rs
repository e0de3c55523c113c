//! The database schema: migrations and the sea-orm entities of the tables.

pub(crate) mod migrations;
pub(crate) mod tables;
