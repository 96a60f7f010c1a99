//! The one workload vclab runs everywhere.
#![no_std]
#![deny(missing_docs)]
