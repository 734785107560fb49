package openaisim

import "encoding/json"

// ListResponse is the envelope of GET /v1/organization/audit_logs
// (ListAuditLogsResponse). FirstID and LastID are null on an empty page.
type ListResponse struct {
	Object  string            `json:"object"`
	Data    []json.RawMessage `json:"data"`
	FirstID *string           `json:"first_id"`
	LastID  *string           `json:"last_id"`
	HasMore bool              `json:"has_more"`
}

// AuditLog is the typed view of one item of ListResponse.Data. The payload
// object named after Type is not part of it; decode the raw item for that.
type AuditLog struct {
	Object      string   `json:"object,omitempty"`
	ID          string   `json:"id"`
	Type        string   `json:"type"`
	EffectiveAt int64    `json:"effective_at"`
	Project     *Project `json:"project,omitempty"`
	Actor       *Actor   `json:"actor,omitempty"`
}

// Project is the project an event was scoped to.
type Project struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Actor is who performed the action: Type is "session" or "api_key".
type Actor struct {
	Type    string   `json:"type"`
	Session *Session `json:"session,omitempty"`
	APIKey  *APIKey  `json:"api_key,omitempty"`
}

// User identifies a user of the organization.
type User struct {
	ID    string `json:"id"`
	Email string `json:"email"`
}

// ServiceAccount identifies a service account.
type ServiceAccount struct {
	ID string `json:"id"`
}

// Session is a browser session actor. UserAgent, JA3, JA4 and
// IPAddressDetails are outside the published schema but present in live data.
type Session struct {
	User             User              `json:"user"`
	IPAddress        string            `json:"ip_address"`
	UserAgent        string            `json:"user_agent,omitempty"`
	JA3              string            `json:"ja3,omitempty"`
	JA4              string            `json:"ja4,omitempty"`
	IPAddressDetails *IPAddressDetails `json:"ip_address_details,omitempty"`
}

// IPAddressDetails is the API's geolocation of a session address; every
// value is a string, as in live data.
type IPAddressDetails struct {
	Country    string `json:"country"`
	City       string `json:"city"`
	Region     string `json:"region"`
	RegionCode string `json:"region_code"`
	ASN        string `json:"asn"`
	Latitude   string `json:"latitude"`
	Longitude  string `json:"longitude"`
}

// APIKey is an API-key actor: ID is the key's tracking id (key_…), Type is
// "user" or "service_account" and selects User or ServiceAccount.
type APIKey struct {
	ID             string          `json:"id"`
	Type           string          `json:"type"`
	User           *User           `json:"user,omitempty"`
	ServiceAccount *ServiceAccount `json:"service_account,omitempty"`
}

// ErrorResponse is the API's error body.
type ErrorResponse struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody is the inner object of ErrorResponse; all four keys are always
// present, Param and Code may be null.
type ErrorBody struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}
