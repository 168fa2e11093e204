//! mod_wsgi 6's telemetry datagram format, as its ingester
//! (mod_wsgi-telemetry's `wire.decode`) reads it: a 24-byte little-endian
//! header ('WSGI', version, kind, flags, pid, seq, stamp) followed by
//! type-tagged fields (id u16, type u8, [len u16], value).

pub const VERSION: u8 = 1;
/// Datagrams larger than this are not sent (mod_wsgi's bound too).
pub const MAX_DATAGRAM: usize = 8192;

/// Datagram kinds.
#[derive(Clone, Copy)]
#[repr(u8)]
pub enum Kind {
    Request = 2,
    SlowRequest = 4,
    ProcessStarted = 5,
    ProcessStopping = 6,
}

const T_U64: u8 = 0x01;
const T_F64: u8 = 0x02;
const T_BYTES: u8 = 0x04;
const T_I32_ARRAY: u8 = 0x05;
const T_F64_ARRAY: u8 = 0x06;

/// Field ids; the numbers are the wire protocol and never change.
pub mod field {
    pub const MOD_WSGI_VERSION: u16 = 1;
    pub const PYTHON_VERSION: u16 = 2;
    pub const APACHE_VERSION: u16 = 3;
    pub const MPM_NAME: u16 = 4;
    pub const HOSTNAME: u16 = 5;
    pub const PROCESS_GROUP: u16 = 6;
    pub const PROCESS_PARENT_PID: u16 = 7;
    pub const SAMPLE_PERIOD: u16 = 10;
    pub const TELEMETRY_INTERVAL: u16 = 11;
    pub const SLOW_REQUESTS_THRESHOLD: u16 = 12;
    pub const REQUEST_COUNT: u16 = 20;
    pub const REQUEST_THROUGHPUT: u16 = 21;
    pub const CAPACITY_UTILIZATION: u16 = 22;
    pub const CPU_USER_UTILIZATION: u16 = 30;
    pub const CPU_SYSTEM_UTILIZATION: u16 = 31;
    pub const CPU_UTILIZATION: u16 = 32;
    pub const MEMORY_RSS: u16 = 40;
    pub const MEMORY_MAX_RSS: u16 = 41;
    pub const REQUEST_THREADS_MAXIMUM: u16 = 50;
    pub const REQUEST_THREADS_STARTED: u16 = 51;
    pub const REQUEST_THREADS_ACTIVE: u16 = 52;
    /// Phase means are 60 + phase, mins 70 + phase, maxima 80 + phase and
    /// histograms 90 + phase, phases in `recording::PHASES` order.
    pub const PHASE_MEAN: u16 = 60;
    pub const PHASE_MIN: u16 = 70;
    pub const PHASE_MAX: u16 = 80;
    pub const PHASE_BUCKETS: u16 = 90;
    pub const INPUT_BYTES_TOTAL: u16 = 100;
    pub const INPUT_READS_TOTAL: u16 = 101;
    pub const OUTPUT_BYTES_TOTAL: u16 = 102;
    pub const OUTPUT_WRITES_TOTAL: u16 = 103;
    pub const REQUEST_THREADS_COMPLETED: u16 = 110;
    pub const REQUEST_THREADS_BUSY_TIME: u16 = 111;
    pub const REQUEST_THREADS_CPU_TIME: u16 = 112;
    pub const REQUEST_THREADS_CURRENT_ELAPSED: u16 = 113;
    pub const REQUEST_THREADS_MAX_DURATION: u16 = 114;
    /// 1xx..5xx totals are 120..124.
    pub const STATUS_TOTAL: u16 = 120;
    pub const SHUTDOWN_REASON: u16 = 130;
    pub const LIFETIME_REQUEST_COUNT: u16 = 132;
    pub const ACTIVE_REQUESTS_AT_DECISION: u16 = 133;
    pub const SLOW_RECORD_STATE: u16 = 200;
    pub const SLOW_START_STAMP: u16 = 201;
    pub const SLOW_DURATION: u16 = 202;
    pub const SLOW_THREAD_ID: u16 = 203;
    pub const SLOW_LOG_ID: u16 = 204;
    pub const SLOW_SERVER_PID: u16 = 205;
    pub const SLOW_METHOD: u16 = 210;
    pub const SLOW_SCHEME: u16 = 211;
    pub const SLOW_HOSTNAME: u16 = 212;
    pub const SLOW_SCRIPT_NAME: u16 = 213;
    pub const SLOW_PATH_INFO: u16 = 214;
    pub const SLOW_PROTOCOL: u16 = 215;
    pub const SLOW_PEER_IP: u16 = 216;
    pub const SLOW_USER_AGENT: u16 = 217;
    pub const SLOW_SERVER_TIME: u16 = 220;
    pub const SLOW_APPLICATION_TIME: u16 = 223;
    pub const SLOW_INPUT_BYTES: u16 = 230;
    pub const SLOW_INPUT_READS: u16 = 231;
    pub const SLOW_OUTPUT_BYTES: u16 = 232;
    pub const SLOW_OUTPUT_WRITES: u16 = 233;
    pub const SLOW_STATUS: u16 = 240;
}

/// One datagram being built. Fields that would overflow MAX_DATAGRAM are
/// left out (a truncated datagram would not decode).
pub struct Datagram {
    buf: Vec<u8>,
}

impl Datagram {
    pub fn new(kind: Kind, pid: u32, seq: u32, stamp: f64) -> Datagram {
        let mut buf = Vec::with_capacity(2048);
        buf.extend_from_slice(b"WSGI");
        buf.push(VERSION);
        buf.push(kind as u8);
        buf.extend_from_slice(&0u16.to_le_bytes());
        buf.extend_from_slice(&pid.to_le_bytes());
        buf.extend_from_slice(&seq.to_le_bytes());
        buf.extend_from_slice(&stamp.to_le_bytes());
        Datagram { buf }
    }

    fn field(&mut self, id: u16, tag: u8, len: Option<usize>, size: usize) -> bool {
        let head = 3 + if len.is_some() { 2 } else { 0 };
        if self.buf.len() + head + size > MAX_DATAGRAM {
            return false;
        }
        self.buf.extend_from_slice(&id.to_le_bytes());
        self.buf.push(tag);
        if let Some(n) = len {
            self.buf.extend_from_slice(&(n as u16).to_le_bytes());
        }
        true
    }

    pub fn u64(&mut self, id: u16, v: u64) -> &mut Self {
        if self.field(id, T_U64, None, 8) {
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
        self
    }

    pub fn f64(&mut self, id: u16, v: f64) -> &mut Self {
        if self.field(id, T_F64, None, 8) {
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
        self
    }

    /// Bytes, cut to `max` (mod_wsgi bounds each string).
    pub fn bytes(&mut self, id: u16, v: &[u8], max: usize) -> &mut Self {
        let v = &v[..v.len().min(max).min(u16::MAX as usize)];
        if self.field(id, T_BYTES, Some(v.len()), v.len()) {
            self.buf.extend_from_slice(v);
        }
        self
    }

    pub fn i32s(&mut self, id: u16, v: &[i32]) -> &mut Self {
        let v = &v[..v.len().min(u16::MAX as usize)];
        if self.field(id, T_I32_ARRAY, Some(v.len()), v.len() * 4) {
            v.iter()
                .for_each(|x| self.buf.extend_from_slice(&x.to_le_bytes()));
        }
        self
    }

    pub fn f64s(&mut self, id: u16, v: &[f64]) -> &mut Self {
        let v = &v[..v.len().min(u16::MAX as usize)];
        if self.field(id, T_F64_ARRAY, Some(v.len()), v.len() * 8) {
            v.iter()
                .for_each(|x| self.buf.extend_from_slice(&x.to_le_bytes()));
        }
        self
    }

    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let mut d = Datagram::new(Kind::Request, 7, 3, 1.5);
        d.u64(20, 9)
            .f64(10, 0.5)
            .bytes(5, b"host", 255)
            .i32s(90, &[1, -1]);
        let b = d.finish();
        assert_eq!(&b[..4], b"WSGI");
        assert_eq!((b[4], b[5]), (VERSION, 2));
        assert_eq!(&b[8..12], &7u32.to_le_bytes());
        assert_eq!(&b[12..16], &3u32.to_le_bytes());
        assert_eq!(&b[16..24], &1.5f64.to_le_bytes());
        assert_eq!(&b[24..27], &[20, 0, T_U64]);
        assert_eq!(&b[27..35], &9u64.to_le_bytes());
        assert_eq!(&b[46..51], &[5, 0, T_BYTES, 4, 0]);
        assert_eq!(&b[51..55], b"host");
        assert_eq!(&b[55..60], &[90, 0, T_I32_ARRAY, 2, 0]);
        assert_eq!(b.len(), 68);
    }

    #[test]
    fn oversized_fields_are_left_out() {
        let mut d = Datagram::new(Kind::Request, 1, 1, 0.0);
        d.f64s(111, &vec![0.0; 2000]);
        assert_eq!(d.finish().len(), 24);
    }
}
