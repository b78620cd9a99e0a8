//! A partition's encoding: a header, then its records, each item tagged
//! with its kind, so a partition can hold records of new kinds (flows,
//! waitpoints) as later encodings add them. The same tagged items make an
//! RDB value (one buffer each) and an AOF rewrite (one FF.LOADREC each).
//!
//! Encodings the code reads: the tagged stream (data type encoding 3), and
//! encoding 2, where the header and the execution records followed one
//! another untagged (`Layout`).

use crate::base::codec::{DecodeError, Reader, Writer};
use crate::execution::record::Execution;
use crate::partition::records::Partition;
use crate::streams::EntryId;

/// The kinds of item in a partition's stream.
pub const TAG_PARTITION: u8 = b'P';
pub const TAG_EXEC: u8 = b'E';
/// A flow, written after every execution (its members must load first).
pub const TAG_FLOW: u8 = b'F';

/// The header's own encoding version (records carry their own); version 2
/// adds the feed's last event id, written only once the feed has one.
const HEADER_ENCODING: u8 = 1;
const HEADER_ENCODING_FEED: u8 = 2;

impl Partition {
    /// What is persisted besides the records: the partition, the partition
    /// count it was created under, the next queue sequence, how many
    /// items follow (records, then flows).
    pub fn encode_header(&self, w: &mut Writer) {
        let last = self.index.events_last;
        w.u8(if last.is_some() {
            HEADER_ENCODING_FEED
        } else {
            HEADER_ENCODING
        });
        w.u16(self.index.partition);
        w.u16(self.index.partitions);
        w.u64(self.index.next_seq);
        w.u64((self.len() + self.flow_count()) as u64);
        if let Some(l) = last {
            w.u64(l.ms);
            w.u64(l.seq);
        }
    }

    /// An empty partition from its header, and how many records follow.
    pub fn decode_header(buf: &[u8]) -> Result<(Partition, u64), DecodeError> {
        let mut r = Reader::new(buf);
        let version = r.u8()?;
        if version != HEADER_ENCODING && version != HEADER_ENCODING_FEED {
            return Err(DecodeError("unknown partition encoding"));
        }
        let (partition, partitions) = (r.u16()?, r.u16()?);
        if partition >= partitions {
            return Err(DecodeError("partition outside its partition count"));
        }
        let mut p = Partition::new(partition, partitions);
        p.index.next_seq = r.u64()?;
        let count = r.u64()?;
        if version == HEADER_ENCODING_FEED {
            p.index.events_last = Some(EntryId {
                ms: r.u64()?,
                seq: r.u64()?,
            });
        }
        r.finish()?;
        Ok((p, count))
    }

    /// An empty partition from a tagged header item.
    pub fn decode_tagged_header(item: &[u8]) -> Result<(Partition, u64), DecodeError> {
        match item.split_first() {
            Some((&TAG_PARTITION, body)) => Partition::decode_header(body),
            _ => Err(DecodeError("expected a partition header")),
        }
    }

    /// Adds one tagged item (after the header); returns the execution it
    /// loaded, if it was one.
    pub fn load_item(&mut self, item: &[u8]) -> Result<Option<&Execution>, DecodeError> {
        match item.split_first() {
            Some((&TAG_EXEC, _)) if self.flow_count() > 0 => {
                Err(DecodeError("an execution after the flows"))
            }
            Some((&TAG_EXEC, body)) => self.load_record(body).map(Some),
            Some((&TAG_FLOW, body)) => self.load_flow(body).map(|()| None),
            Some((&TAG_PARTITION, _)) => Err(DecodeError("a second partition header")),
            _ => Err(DecodeError("unknown record kind")),
        }
    }

    /// Every item of the partition in order (the tagged header, then each
    /// record tagged, in admission order), each written into one reused
    /// buffer and passed to `each`: RDB save, AOF rewrite and digest hold
    /// no buffer the size of the partition.
    pub fn for_each_item(&self, mut each: impl FnMut(&[u8])) {
        let mut w = Writer::with_capacity(256);
        w.u8(TAG_PARTITION);
        self.encode_header(&mut w);
        each(&w.buf);
        for e in self.iter() {
            w.buf.clear();
            w.u8(TAG_EXEC);
            e.encode(&mut w);
            each(&w.buf);
        }
        for f in self.flows() {
            w.buf.clear();
            w.u8(TAG_FLOW);
            f.encode(&mut w);
            each(&w.buf);
        }
    }

    /// The whole partition as one buffer of length-prefixed items (digests
    /// and tests).
    pub fn encode(&self, w: &mut Writer) {
        self.for_each_item(|item| w.bytes(item));
    }

    pub fn decode(buf: &[u8]) -> Result<Partition, DecodeError> {
        let mut r = Reader::new(buf);
        let (mut p, count) = Partition::decode_tagged_header(&r.bytes()?)?;
        for _ in 0..count {
            p.load_item(&r.bytes()?)?;
        }
        r.finish()?;
        Ok(p)
    }

    /// A partition's header item in `layout`, and how many records follow.
    pub fn load_header(layout: Layout, item: &[u8]) -> Result<(Partition, u64), DecodeError> {
        match layout {
            Layout::Untagged => Partition::decode_header(item),
            Layout::Tagged => Partition::decode_tagged_header(item),
        }
    }

    /// Adds one record item in `layout` (after the header).
    pub fn load_next(
        &mut self,
        layout: Layout,
        item: &[u8],
    ) -> Result<Option<&Execution>, DecodeError> {
        match layout {
            Layout::Untagged => self.load_record(item).map(Some),
            Layout::Tagged => self.load_item(item),
        }
    }
}

/// How a stream of items was written: data type encoding 2 wrote the
/// header and the execution records untagged; 3 tags each item with its
/// kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    Untagged,
    Tagged,
}

impl Layout {
    /// The layout of a data type encoding version, if the code reads it.
    pub fn of_encoding(encver: i32) -> Option<Layout> {
        match encver {
            2 => Some(Layout::Untagged),
            3 => Some(Layout::Tagged),
            _ => None,
        }
    }
}
