// Package inventory is the contract of the organization inventory: the
// object kinds auditpipe lists from the OpenAI Admin API (Endpoints), the
// change record the poller writes to contract.TopicInventory (Record), how
// an object is hashed (Hash) and how two snapshots become change records
// (Diff). The poller's collector writes the records, the loader inserts
// them into the ClickHouse tables of migration 0004, the posture and
// audit-completeness detections read those; docs/inventory.md describes
// the whole path.
//
// Everything here is a pure function of its arguments: no state, no I/O.
// The caller (the poller) owns the previous snapshot's hashes and keeps
// them in its state.
package inventory
