//! The end-to-end tests of the whole system, in one binary (one build and link for all):
//! the all-in-one process, identity, the hostile suite, writes field by field, the web UI over HTTP and in a real
//! browser. The oracle suite is a binary of its own: it moves the process's clock.

mod access_hostile;
mod all_in_one;
mod audit;
mod browser;
mod consent;
mod demand;
mod erasure;
mod identity;
mod imports;
mod integrator;
mod logs;
mod noninterference;
mod privacy;
mod read_matrix;
mod search_quality;
mod side_channels;
mod subscriptions;
mod web;
mod write_matrix;
mod writes;
