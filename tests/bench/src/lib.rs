//! The benchmark harness (`crm bench`) and the scale world's bulk loader
//! (`crm seed --scale`): a world of up to 1M accounts generated deterministically, loaded
//! in bulk, and measured per persona through the real gateway with every answer checked
//! against the generator. It lives apart from the product so that the router and the
//! services compile without it.

pub mod bench;
pub mod guild;
pub mod scale;
