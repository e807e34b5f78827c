//! The inventory: CSV → validated [`Site`]s (every problem at once, with its line and column),
//! and the secret references its rows carry.

pub mod notices;
pub mod parse;
pub mod secret;
pub mod site;

pub use notices::{Notice, inferred_wire_forms, notices, plain_http};
pub use parse::{Delimiter, Inventory, InventoryError, Problem, load, load_inventory, parse};
pub use secret::{SecretError, SecretRef};
pub use site::{Product, ServerAuth, Site, UsersScope, definition_hash};
