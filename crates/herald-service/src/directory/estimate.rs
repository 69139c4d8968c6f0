//! Resolving an audience expression to the accounts it selects, and estimating its size.

use std::collections::BTreeMap;

use herald_core::audience::{AudienceRules, Plan};
use herald_core::App;
use herald_index::RoaringBitmap;
use serde::Serialize;
use serde_json::Value;

use super::Directory;
use crate::ServiceError;

/// How many accounts an audience reaches.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Estimate {
    /// Eligible accounts selected.
    pub total: u64,
    /// Accounts of the audience with a device of each platform (an account with devices on two
    /// platforms counts in both).
    pub by_platform: BTreeMap<String, u64>,
    /// Accounts of the audience without any registered device: reached once they connect.
    pub without_device: u64,
}

/// Checks `audience` against the app's limits and attribute names.
pub async fn plan_audience(
    directory: &Directory,
    app: &App,
    audience: &Value,
) -> Result<Plan, ServiceError> {
    let names = directory.app(app.id).await?.attribute_names();
    let rules = AudienceRules::new(&app.limits, &names);
    Ok(rules.parse(audience).and_then(|parsed| rules.plan(&parsed))?)
}

/// Checks `audience` against the app's rules and evaluates it on the app's index.
pub async fn resolve_audience(
    directory: &Directory,
    app: &App,
    audience: &Value,
) -> Result<(Plan, RoaringBitmap), ServiceError> {
    let plan = plan_audience(directory, app, audience).await?;
    let dir = directory.app(app.id).await?;
    // Names are resolved before taking the index lock: no I/O happens under it.
    let wanted: Vec<String> = plan.account_names().into_iter().map(str::to_owned).collect();
    let ids = if wanted.is_empty() {
        Default::default()
    } else {
        directory.store.account_ids(app.id, &wanted).await?
    };
    let lookup = |names: &[String]| -> RoaringBitmap {
        names.iter().filter_map(|name| ids.get(name).copied()).collect()
    };
    let bitmap = dir.index().evaluate(&plan, &lookup);
    Ok((plan, bitmap))
}

/// The audience's size and split by platform, without pushing anything.
pub async fn estimate(
    directory: &Directory,
    app: &App,
    audience: &Value,
) -> Result<Estimate, ServiceError> {
    let (_, bitmap) = resolve_audience(directory, app, audience).await?;
    let dir = directory.app(app.id).await?;
    let index = dir.index();
    Ok(Estimate {
        total: bitmap.len(),
        by_platform: index.platform_split(&bitmap),
        without_device: index.without_device(&bitmap),
    })
}
