//! Every lesson's scenarios, as data. Tests, the book and `workbook check` all read them here.

pub mod concurrency;
pub mod echo;
pub mod exercises;
pub mod frame;
pub mod kv;
pub mod resp;
pub mod time;
pub mod udp;
pub mod udp_kv;
