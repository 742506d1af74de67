//! One error type for the GraphQL surface of every service.
//!
//! Clients get a stable `code` (and the offending `field` for validation errors) in the
//! GraphQL error `extensions`. Internal failures are logged with an error id and reach the
//! client only as `INTERNAL` plus that id: a raw database message never leaves the process.

use async_graphql::ErrorExtensions;
use crm_contract::ErrorCode;
use sea_orm::{DbErr, SqlErr};

pub type ApiResult<T> = Result<T, ApiError>;

/// Deliberately not `Display`: async-graphql converts any `Display` type into an error
/// without extensions, and our conversion below must be the one `?` picks.
#[derive(Debug)]
pub enum ApiError {
    Validation {
        field: String,
        message: String,
    },
    NotFound,
    VersionConflict {
        current_version: i32,
    },
    Duplicate {
        field: String,
    },
    InvalidState {
        message: String,
    },
    /// The caller may not do this, or must sign in first: `code` says which
    /// (`UNAUTHENTICATED`, `FORBIDDEN`, `INVALID_CREDENTIALS`, `TOO_MANY_ATTEMPTS`, …).
    Denied {
        code: ErrorCode,
        message: String,
        /// The input field the refusal is about, when it is about one.
        field: Option<String>,
    },
    Internal {
        reference: String,
    },
}

impl ApiError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn denied(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Denied {
            code,
            message: message.into(),
            field: None,
        }
    }

    /// A refusal about one input field (a field the policy's field rules do not let the
    /// caller set).
    pub fn denied_field(code: ErrorCode, field: &str, message: impl Into<String>) -> Self {
        Self::Denied {
            code,
            message: message.into(),
            field: Some(field.to_owned()),
        }
    }

    /// Logs the detail and returns an opaque error that only carries a reference id.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        let reference = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        tracing::error!(%reference, error = %detail, "internal error");
        Self::Internal { reference }
    }

    /// The message a client reads.
    pub fn message(&self) -> String {
        match self {
            Self::Validation { field, message } => format!("{field} {message}"),
            Self::NotFound => "not found".into(),
            Self::VersionConflict { current_version } => format!(
                "the record was changed by someone else (now at version {current_version}); reload it and apply your change again"
            ),
            Self::Duplicate { field } => format!("{field} is already used by another record"),
            Self::InvalidState { message } | Self::Denied { message, .. } => message.clone(),
            Self::Internal { reference } => format!("internal error (reference {reference})"),
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Validation { .. } => ErrorCode::Validation,
            Self::NotFound => ErrorCode::NotFound,
            Self::VersionConflict { .. } => ErrorCode::VersionConflict,
            Self::Duplicate { .. } => ErrorCode::Duplicate,
            Self::InvalidState { .. } => ErrorCode::InvalidState,
            Self::Denied { code, .. } => *code,
            Self::Internal { .. } => ErrorCode::Internal,
        }
    }

    /// Prefixes the field path, so a nested input reports `input.email`, not `email`.
    pub fn in_field(self, parent: &str) -> Self {
        match self {
            Self::Validation { field, message } => Self::Validation {
                field: format!("{parent}.{field}"),
                message,
            },
            other => other,
        }
    }
}

impl From<DbErr> for ApiError {
    fn from(err: DbErr) -> Self {
        // A unique violation that reaches here is a race the pre-checks could not see; it
        // is still the caller's problem, not ours, so it keeps a client-facing code.
        if let Some(SqlErr::UniqueConstraintViolation(detail)) = err.sql_err() {
            tracing::info!(%detail, "unique constraint violation");
            // Name the input field behind the unique index the database reported.
            let field = if detail.contains("external_id") {
                "externalId"
            } else if detail.contains("code") {
                "input.code"
            } else {
                "input"
            };
            return Self::Duplicate {
                field: field.into(),
            };
        }
        Self::internal(err)
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(err: ApiError) -> Self {
        let code = err.code();
        async_graphql::Error::new(err.message()).extend_with(|_, ext| {
            ext.set("code", code.as_str());
            match &err {
                ApiError::Validation { field, .. } | ApiError::Duplicate { field } => {
                    ext.set("field", field.as_str())
                }
                ApiError::Denied {
                    field: Some(field), ..
                } => ext.set("field", field.as_str()),
                ApiError::VersionConflict { current_version } => {
                    ext.set("currentVersion", *current_version)
                }
                ApiError::Internal { reference } => ext.set("reference", reference.as_str()),
                _ => {}
            }
        })
    }
}
