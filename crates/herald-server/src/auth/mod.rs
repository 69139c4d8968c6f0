//! Who is calling: the operator (admin token) or an app (signed request).

mod admin;
mod client_token;
mod nonce;
mod signed;

pub use admin::require_admin;
pub use client_token::StoreAuthenticator;
pub use herald_service::token;
pub use nonce::{NonceCache, Nonces, SharedNonces};
pub use signed::{require_signature, CallingApp, SignatureHeaders, BULK_IMPORT_PATH};
