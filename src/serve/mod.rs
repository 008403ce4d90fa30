//! The live side of tracelens (`tracelens serve`, in progress): what an
//! OTLP receiver needs beyond the offline pipeline. So far: the
//! write-ahead log that makes an acknowledged request durable.

pub mod wal;
