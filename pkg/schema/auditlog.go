package schema

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Table is the ClickHouse table that holds AuditLog rows.
const Table = "openai_audit_logs"

// AuditLog is one normalized OpenAI audit event: exactly the 46 columns of
// openai_audit_logs, in table order, with the Avro field names as tags.
//
// Type mapping (ClickHouse → Avro → Go): String → string → string;
// DateTime → long timestamp-millis → time.Time; UInt32 → long → int64;
// Float64 → double → float64; Bool → boolean → bool; Map(String, String) →
// map<string> → map[string]string; Array(String) → array<string> →
// []string; the enrichments tuple array → array<Enrichment> → []Enrichment.
// Avro has no unsigned 32-bit type, so UInt32 columns travel as long and
// Validate checks that they fit. DateTime has second precision: the
// milliseconds Avro carries are truncated by ClickHouse.
type AuditLog struct {
	WorkspaceID       string            `avro:"workspaceID"`
	SourceID          string            `avro:"sourceID"`
	SourceType        string            `avro:"sourceType"`
	SourceTTL         int64             `avro:"sourceTTL"` // days; 0 keeps the row forever
	ReceivedAt        time.Time         `avro:"receivedAt"`
	ID                string            `avro:"id"`
	EventTime         time.Time         `avro:"eventTime"`
	EventName         string            `avro:"eventName"`
	EventID           string            `avro:"eventID"`
	SrcIP             string            `avro:"srcIP"`
	SrcASCountryCode  string            `avro:"srcASCountryCode"`
	SrcASNumber       int64             `avro:"srcASNumber"`
	SrcASOrganization string            `avro:"srcASOrganization"`
	SrcCity           string            `avro:"srcCity"`
	SrcConnectionType string            `avro:"srcConnectionType"`
	SrcISP            string            `avro:"srcISP"`
	SrcLatitude       float64           `avro:"srcLatitude"`
	SrcLongitude      float64           `avro:"srcLongitude"`
	SrcUserType       string            `avro:"srcUserType"`
	DstIP             string            `avro:"dstIP"`
	DstASCountryCode  string            `avro:"dstASCountryCode"`
	DstASNumber       int64             `avro:"dstASNumber"`
	DstASOrganization string            `avro:"dstASOrganization"`
	DstCity           string            `avro:"dstCity"`
	DstConnectionType string            `avro:"dstConnectionType"`
	DstISP            string            `avro:"dstISP"`
	DstLatitude       float64           `avro:"dstLatitude"`
	DstLongitude      float64           `avro:"dstLongitude"`
	DstUserType       string            `avro:"dstUserType"`
	Actor             map[string]string `avro:"actor"`
	Tags              map[string]string `avro:"tags"`
	Resources         []string          `avro:"resources"`
	ServiceName       string            `avro:"serviceName"`
	Enrichments       []Enrichment      `avro:"enrichments"`
	ReadOnly          bool              `avro:"readOnly"`
	RawLog            string            `avro:"rawLog"`
	EventType         string            `avro:"eventType"`
	ActorType         string            `avro:"actorType"`
	ActorIP           string            `avro:"actorIP"`
	ActorUserID       string            `avro:"actorUserID"`
	ActorUserEmail    string            `avro:"actorUserEmail"`
	APIKeyID          string            `avro:"apiKeyID"`
	APIKeyType        string            `avro:"apiKeyType"`
	ServiceAccountID  string            `avro:"serviceAccountID"`
	ProjectID         string            `avro:"projectID"`
	ProjectName       string            `avro:"projectName"`
}

// Enrichment is one element of AuditLog.Enrichments, the ClickHouse
// Tuple(data Map(String, String), name String, provider String, type String,
// value String).
type Enrichment struct {
	Data     map[string]string `avro:"data"`
	Name     string            `avro:"name"`
	Provider string            `avro:"provider"`
	Type     string            `avro:"type"`
	Value    string            `avro:"value"`
}

// The range of ClickHouse DateTime: Unix seconds as UInt32.
var (
	minDateTime = time.Unix(0, 0).UTC()
	maxDateTime = time.Unix(math.MaxUint32, 0).UTC()
)

// ErrInvalidRecord is wrapped by every error Validate returns.
var ErrInvalidRecord = errors.New("invalid audit log record")

// Validate reports every value that ClickHouse cannot store as typed:
// UInt32 columns (sourceTTL, srcASNumber, dstASNumber) outside 0..2^32-1 and
// DateTime columns (receivedAt, eventTime) outside 1970-01-01 00:00:00 ..
// 2106-02-07 06:28:15 UTC. The zero time.Time is out of range: set times
// explicitly. The returned error joins all problems and wraps
// ErrInvalidRecord.
func (l *AuditLog) Validate() error {
	var errs []error
	for _, u := range []struct {
		name string
		v    int64
	}{
		{"sourceTTL", l.SourceTTL},
		{"srcASNumber", l.SrcASNumber},
		{"dstASNumber", l.DstASNumber},
	} {
		if u.v < 0 || u.v > math.MaxUint32 {
			errs = append(errs, fmt.Errorf("%w: %s %d outside UInt32", ErrInvalidRecord, u.name, u.v))
		}
	}
	for _, d := range []struct {
		name string
		v    time.Time
	}{
		{"receivedAt", l.ReceivedAt},
		{"eventTime", l.EventTime},
	} {
		if d.v.Before(minDateTime) || d.v.After(maxDateTime) {
			errs = append(errs, fmt.Errorf("%w: %s %s outside DateTime range", ErrInvalidRecord, d.name, d.v.UTC().Format(time.RFC3339)))
		}
	}
	return errors.Join(errs...)
}
