//! Signed `/v1` routes about the calling app itself.

use axum::Extension;
use axum::Json;

use crate::auth::CallingApp;
use crate::routes::admin_apps::AppView;

/// Handle the `GET /v1/app` route: the calling app, its limits and key.
#[utoipa::path(get, path = "/v1/app", tag = "app", security(("signature" = [])),
    responses((status = 200, body = AppView), (status = 401, body = crate::routes::docs::ErrorBody)))]
pub async fn get_calling_app_route(
    Extension(CallingApp(app)): Extension<CallingApp>,
) -> Json<AppView> {
    Json(app.into())
}
