//! `im_set_attr_name`, `im_get_attr_name`, `im_get_attr`, `im_set_attr`, `im_remove_attr` over
//! herald's attribute slots and values. Tencent names slots "0".."9" and sets values by name.
//!
//! # Format
//!
//! ```json
//! {"AttrNames":{"0":"sex","1":"city"}}
//! {}                                                   →  {"AttrNames":{"0":"sex","1":"city"}}
//! {"To_Account":["u1"]}                                →  {"UserAttrs":[{"To_Account":"u1","Attrs":{"sex":"f"}}]}
//! {"UserAttrs":[{"To_Account":"u1","Attrs":{"sex":"f"}}]}       (set)
//! {"UserAttrs":[{"To_Account":"u1","Attrs":["sex"]}]}           (remove)
//! ```

use std::collections::{BTreeMap, HashSet};

use herald_core::account::check_text;
use serde_json::{json, Map, Value};

use super::batch::{check_report, require_existing};
use super::envelope::Fields;
use super::error::TencentError;
use super::request::{self, Body};
use super::Caller;
use crate::directory::{self, AttributeChange};

/// Highest slot number Tencent knows ("0" to "9").
const MAX_SLOT: u8 = 9;
/// Longest attribute name and value, in bytes.
const MAX_BYTES: usize = 50;

fn invalid(message: String) -> TencentError {
    TencentError::InvalidAttribute(message)
}

/// A name or value: non-empty text of at most 50 bytes.
fn text<'a>(value: &'a Value, what: &str) -> Result<&'a str, TencentError> {
    let text = value.as_str().ok_or_else(|| invalid(format!("{what} must be a string")))?;
    check_text("attribute", text, MAX_BYTES).map_err(|err| invalid(format!("{what}: {err}")))?;
    Ok(text)
}

/// Handle `POST /v4/all_member_push/im_set_attr_name`. An empty name unnames the slot; slots
/// not listed keep their names.
pub async fn set_names_route(caller: &Caller, body: &Body) -> Result<Fields, TencentError> {
    let names = names_given(body)?;
    let mut after = directory::attribute_names(&caller.state.directory, &caller.app).await?;
    let changes = rename(names, &mut after)?;
    directory::set_attribute_names(&caller.state.directory, &caller.app, changes).await?;
    Ok(Fields::new())
}

/// The `AttrNames` object of `im_set_attr_name`.
pub fn names_given(body: &Body) -> Result<&Map<String, Value>, TencentError> {
    match body.get("AttrNames") {
        Some(Value::Object(names)) => Ok(names),
        Some(_) => Err(request::invalid("AttrNames must be an object".into())),
        None => Err(request::invalid("AttrNames is required".into())),
    }
}

/// Applies `names` (slot → name, `""` to unname) to the app's names `after`; the changes to
/// store, unless two slots would share a name.
pub fn rename(
    names: &Map<String, Value>,
    after: &mut BTreeMap<u8, String>,
) -> Result<Vec<(u8, Option<String>)>, TencentError> {
    let mut changes = Vec::with_capacity(names.len());
    for (key, name) in names {
        let slot = key
            .parse::<u8>()
            .ok()
            .filter(|slot| *slot <= MAX_SLOT)
            .ok_or_else(|| invalid(format!("AttrNames key {key} is not \"0\" to \"9\"")))?;
        let name = match name {
            Value::String(empty) if empty.is_empty() => None,
            other => Some(text(other, &format!("AttrNames.{key}"))?.to_owned()),
        };
        match &name {
            Some(name) => after.insert(slot, name.clone()),
            None => after.remove(&slot),
        };
        changes.push((slot, name));
    }
    let mut seen = HashSet::new();
    if let Some(name) = after.values().find(|name| !seen.insert(name.as_str())) {
        return Err(invalid(format!("attribute name {name} is given to two slots")));
    }
    Ok(changes)
}

/// Handle `POST /v4/all_member_push/im_get_attr_name`.
pub async fn get_names_route(caller: &Caller) -> Result<Fields, TencentError> {
    let names = directory::attribute_names(&caller.state.directory, &caller.app).await?;
    let names: BTreeMap<String, String> =
        names.into_iter().map(|(slot, name)| (slot.to_string(), name)).collect();
    let mut fields = Fields::new();
    fields.insert("AttrNames".into(), json!(names));
    Ok(fields)
}

/// Handle `POST /v4/all_member_push/im_get_attr`. Accounts never imported have no attributes.
pub async fn get_route(caller: &Caller, body: &Body) -> Result<Fields, TencentError> {
    let accounts = request::accounts(body, "To_Account")?;
    let (found, _) =
        directory::get_attributes(&caller.state.directory, &caller.app, &accounts).await?;
    let user_attrs: Vec<Value> = request::distinct(&accounts)
        .into_iter()
        .map(|account| {
            let attrs = found.get(&account).cloned().unwrap_or_default();
            json!({"To_Account": account, "Attrs": attrs})
        })
        .collect();
    let mut fields = Fields::new();
    fields.insert("UserAttrs".into(), json!(user_attrs));
    Ok(fields)
}

/// Handle `POST /v4/all_member_push/im_set_attr`.
pub async fn set_route(caller: &Caller, body: &Body) -> Result<Fields, TencentError> {
    update(caller, body, set_changes).await
}

/// Handle `POST /v4/all_member_push/im_remove_attr`.
pub async fn remove_route(caller: &Caller, body: &Body) -> Result<Fields, TencentError> {
    update(caller, body, remove_changes).await
}

/// The `Attrs` of one `im_set_attr` entry: an object of known name → value.
pub fn set_changes(
    attrs: &Value,
    known: &HashSet<String>,
) -> Result<Vec<AttributeChange>, TencentError> {
    let attrs = attrs
        .as_object()
        .ok_or_else(|| request::invalid("Attrs must be an object of name: value".into()))?;
    attrs
        .iter()
        .map(|(name, value)| {
            known_name(name, known)?;
            let value = text(value, &format!("value of {name}"))?.to_owned();
            Ok(AttributeChange::Set { name: name.clone(), value })
        })
        .collect()
}

/// The `Attrs` of one `im_remove_attr` entry: an array of known names.
pub fn remove_changes(
    attrs: &Value,
    known: &HashSet<String>,
) -> Result<Vec<AttributeChange>, TencentError> {
    let attrs = attrs
        .as_array()
        .ok_or_else(|| request::invalid("Attrs must be an array of names".into()))?;
    attrs
        .iter()
        .map(|name| {
            let name = name.as_str().ok_or_else(|| invalid("names must be strings".into()))?;
            known_name(name, known)?;
            Ok(AttributeChange::Remove { name: name.to_owned() })
        })
        .collect()
}

fn known_name(name: &str, known: &HashSet<String>) -> Result<(), TencentError> {
    if known.contains(name) {
        Ok(())
    } else {
        Err(invalid(format!("unknown attribute name {name}; set it with im_set_attr_name")))
    }
}

/// The reader of one entry's `Attrs`: [`set_changes`] or [`remove_changes`].
pub type ChangesOf = fn(&Value, &HashSet<String>) -> Result<Vec<AttributeChange>, TencentError>;

/// Reads each `UserAttrs` entry's `Attrs` with `changes` and applies them in one batch.
async fn update(caller: &Caller, body: &Body, changes: ChangesOf) -> Result<Fields, TencentError> {
    let known: HashSet<String> = directory::attribute_names(&caller.state.directory, &caller.app)
        .await?
        .into_values()
        .collect();
    let updates = read_updates(body, &known, changes)?;
    let accounts: Vec<String> = updates.iter().map(|(account, _)| account.clone()).collect();
    require_existing(caller, &accounts).await?;
    let report =
        directory::update_attributes(&caller.state.directory, &caller.app, updates).await?;
    check_report(&report)?;
    Ok(Fields::new())
}

/// Reads the `UserAttrs` entries of a set or remove call, given the app's attribute names.
pub fn read_updates(
    body: &Body,
    known: &HashSet<String>,
    changes: ChangesOf,
) -> Result<Vec<(String, Vec<AttributeChange>)>, TencentError> {
    let mut updates = Vec::new();
    for entry in request::entries(body, "UserAttrs")? {
        let account = request::entry_account(entry, "UserAttrs")?;
        let attrs = entry
            .get("Attrs")
            .ok_or_else(|| request::invalid(format!("Attrs of {account} is required")))?;
        updates.push((account, changes(attrs, known)?));
    }
    Ok(updates)
}
