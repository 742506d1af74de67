//! The benchmark harness (`crm bench`) and the scale world's bulk loader
//! (`crm seed --scale`): a world of up to 1M accounts generated deterministically, loaded
//! in bulk, and measured per persona through the real gateway with every answer checked
//! against the generator. It lives apart from the product so that the router and the
//! services compile without it.

pub mod bench;
pub mod guild;
pub mod scale;

/// The rate limits the benchmarks run the gateway with: on (every request is counted and
/// pays for it), with budgets no benchmark reaches, so that the numbers are those of a
/// gateway with its limits on and no request is refused.
pub const RATE_LIMITS_NOT_REACHED: &str = "anonymous=1000000000:1000000000000000,\
internal=1000000000:1000000000000000,partner=1000000000:1000000000000000,\
integrator=1000000000:1000000000000000,source=1000000000:1000000000000000";
