package nexus

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// UsageService reads request counts (read:usage or admin:all).
type UsageService struct{ c *Client }

// UsageParams choose the series of GET /v1/usage.
type UsageParams struct {
	// Granularity is "hour" (the last 24 hours; the default) or "day" (the
	// last 30 days).
	Granularity string
	// CredentialID keeps one credential's counts. Optional.
	CredentialID string
}

// UsageBucket is one hour's or day's counts.
type UsageBucket struct {
	Start    time.Time `json:"start"`
	Requests int64     `json:"requests"`
	Errors   int64     `json:"errors"`
}

// UsageSeries is one credential's counts over the window, every bucket
// present, oldest first.
type UsageSeries struct {
	CredentialID string        `json:"credential_id"`
	Requests     int64         `json:"requests"`
	Errors       int64         `json:"errors"`
	Buckets      []UsageBucket `json:"buckets"`
}

// Usage is the answer of GET /v1/usage: the calling environment's
// requests and errors (status 400 and above) per credential.
type Usage struct {
	Object      string        `json:"object"`
	Environment Environment   `json:"environment"`
	Granularity string        `json:"granularity"`
	Start       time.Time     `json:"start"`
	End         time.Time     `json:"end"`
	Total       UsageSeries   `json:"total"`
	Data        []UsageSeries `json:"data"`
}

// Get returns the counts (GET /v1/usage).
func (s *UsageService) Get(ctx context.Context, params *UsageParams, opts ...RequestOption) (*Usage, error) {
	q := url.Values{}
	if params != nil {
		setIf(q, "granularity", params.Granularity)
		setIf(q, "credential_id", params.CredentialID)
	}
	out := new(Usage)
	if err := s.c.do(ctx, call{method: http.MethodGet, path: "/v1/usage", query: q, out: out}, opts); err != nil {
		return nil, err
	}
	return out, nil
}
