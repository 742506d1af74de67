//! Every error code a client can read in `extensions.code`, from the router and from the
//! services, as one enum: a code is spelled once, and the same refusal has the same code
//! wherever it is made.

/// A stable error code (`extensions.code`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    // The request itself.
    BadRequest,
    MethodNotAllowed,
    UnsupportedMediaType,
    PayloadTooLarge,
    BatchNotAllowed,
    CsrfPreflightRequired,
    MutationOverGet,
    // The operation, before it runs.
    GraphqlParseFailed,
    GraphqlValidationFailed,
    OperationNotFound,
    BadUserInput,
    IntrospectionDisabled,
    MaxDepthExceeded,
    MaxAliasesExceeded,
    MaxRootFieldsExceeded,
    MaxDirectivesExceeded,
    MaxCostExceeded,
    QueryPlanningFailed,
    // Who is calling.
    Unauthenticated,
    InvalidCredentials,
    InvalidRefreshToken,
    InvalidInvitation,
    AccountDisabled,
    TooManyAttempts,
    /// The caller's rate limit is spent (HTTP 429, `Retry-After`).
    RateLimited,
    Forbidden,
    // What the operation asked of the data.
    Validation,
    NotFound,
    VersionConflict,
    Duplicate,
    InvalidState,
    // Ours.
    GatewayTimeout,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "BAD_REQUEST",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::BatchNotAllowed => "BATCH_NOT_ALLOWED",
            Self::CsrfPreflightRequired => "CSRF_PREFLIGHT_REQUIRED",
            Self::MutationOverGet => "MUTATION_OVER_GET",
            Self::GraphqlParseFailed => "GRAPHQL_PARSE_FAILED",
            Self::GraphqlValidationFailed => "GRAPHQL_VALIDATION_FAILED",
            Self::OperationNotFound => "OPERATION_NOT_FOUND",
            Self::BadUserInput => "BAD_USER_INPUT",
            Self::IntrospectionDisabled => "INTROSPECTION_DISABLED",
            Self::MaxDepthExceeded => "MAX_DEPTH_EXCEEDED",
            Self::MaxAliasesExceeded => "MAX_ALIASES_EXCEEDED",
            Self::MaxRootFieldsExceeded => "MAX_ROOT_FIELDS_EXCEEDED",
            Self::MaxDirectivesExceeded => "MAX_DIRECTIVES_EXCEEDED",
            Self::MaxCostExceeded => "MAX_COST_EXCEEDED",
            Self::QueryPlanningFailed => "QUERY_PLANNING_FAILED",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::InvalidCredentials => "INVALID_CREDENTIALS",
            Self::InvalidRefreshToken => "INVALID_REFRESH_TOKEN",
            Self::InvalidInvitation => "INVALID_INVITATION",
            Self::AccountDisabled => "ACCOUNT_DISABLED",
            Self::TooManyAttempts => "TOO_MANY_ATTEMPTS",
            Self::RateLimited => "RATE_LIMITED",
            Self::Forbidden => "FORBIDDEN",
            Self::Validation => "VALIDATION",
            Self::NotFound => "NOT_FOUND",
            Self::VersionConflict => "VERSION_CONFLICT",
            Self::Duplicate => "DUPLICATE",
            Self::InvalidState => "INVALID_STATE",
            Self::GatewayTimeout => "GATEWAY_TIMEOUT",
            Self::Unavailable => "UNAVAILABLE",
            Self::Internal => "INTERNAL",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
