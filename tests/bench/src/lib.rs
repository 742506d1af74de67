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

/// The gateway's door with [`RATE_LIMITS_NOT_REACHED`] (for gateways started in process).
pub fn door_with_limits_not_reached() -> anyhow::Result<crm_gateway::federation::server::DoorConfig>
{
    Ok(crm_gateway::federation::server::DoorConfig {
        rate_limits: Some(crm_gateway::rate_limit::RateLimits::parse(
            RATE_LIMITS_NOT_REACHED,
            std::time::Duration::from_secs(60),
        )?),
        ..Default::default()
    })
}
