//! `GET /api/tasks/{id}` and `GET /api/tasks/{id}/tree`: one to-do, task or Beads issue with
//! its rolled-up tokens and cost, tool usage, errors and children
//! ([`crate::views::task_detail`]).

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;

use super::api::{blocking, resolve, views};
use super::{ApiError, AppState};
use crate::log::Store;
use crate::views::pricing::PriceTable;
use crate::views::task_detail::{TaskDetail, TaskPlace};

/// Query of `GET /api/tasks/{id}` and `/tree`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct TaskQuery {
    /// Only the task under this session (an id or unique prefix).
    session: Option<String>,
}

/// The one task `wanted` names.
fn find(store: &Store, wanted: &str, session: Option<&str>) -> Result<TaskPlace, ApiError> {
    let Some(db) = views(store)? else {
        return Err(ApiError::UnknownTask {
            wanted: wanted.to_owned(),
        });
    };
    let session = match session.filter(|s| !s.is_empty()) {
        Some(s) => Some(resolve(Some(&db), store, s)?),
        None => None,
    };
    let prices = PriceTable::new(&store.config().pricing);
    let mut found =
        crate::views::task_detail::find_tasks(&db, &prices, wanted, session.as_deref())?;
    match found.len() {
        0 => Err(ApiError::UnknownTask {
            wanted: wanted.to_owned(),
        }),
        1 => Ok(found.remove(0)),
        _ => Err(ApiError::AmbiguousTask {
            wanted: wanted.to_owned(),
            places: found
                .iter()
                .take(5)
                .map(|p| format!("{} {}", p.root_kind, p.root_id))
                .collect(),
        }),
    }
}

/// `GET /api/tasks/{id}`.
pub(crate) async fn task(
    State(state): State<AppState>,
    Path(wanted): Path<String>,
    Query(query): Query<TaskQuery>,
) -> Result<Json<TaskDetail>, ApiError> {
    blocking(&state, move |store| {
        let place = find(store, &wanted, query.session.as_deref())?;
        let Some(db) = views(store)? else {
            return Err(ApiError::UnknownTask { wanted });
        };
        Ok(Json(crate::views::task_detail::task_detail(&db, place)?))
    })
    .await
}

/// `GET /api/tasks/{id}/tree`: as `/api/tasks/{id}` (rolled-up tokens and cost, tool usage,
/// errors, children summary), with the task's descendants under `task.children` as nodes of
/// `/api/tasks`.
pub(crate) async fn task_tree(
    State(state): State<AppState>,
    Path(wanted): Path<String>,
    Query(query): Query<TaskQuery>,
) -> Result<Json<TaskDetail>, ApiError> {
    blocking(&state, move |store| {
        let place = find(store, &wanted, query.session.as_deref())?;
        let Some(db) = views(store)? else {
            return Err(ApiError::UnknownTask { wanted });
        };
        let children = place.task.children.clone();
        let mut detail = crate::views::task_detail::task_detail(&db, place)?;
        detail.task.children = children;
        Ok(Json(detail))
    })
    .await
}
