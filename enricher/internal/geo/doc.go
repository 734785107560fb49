// Package geo provides IP geolocation and network data for audit events
// from MaxMind-format databases (City, ASN, ISP, Connection-Type,
// Enterprise), reloaded when replaced on disk, with a bounded lookup cache
// and OpenAI's own ip_address_details as the fallback.
package geo
