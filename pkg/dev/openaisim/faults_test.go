package openaisim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim/openaisimtest"
)

type response struct {
	status int
	header http.Header
	body   []byte
	err    error
}

func fetch(t *testing.T, ctx context.Context, base string, q url.Values) response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+openaisim.ListPath+"?"+q.Encode(), nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+adminKey)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		return response{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: body, err: err}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	sim := openaisimtest.Start(t, openaisim.Config{Seed: 1, Backlog: 60, Now: clock})
	base := sim.URL()
	ctx := context.Background()

	t.Run("429 with Retry-After", func(t *testing.T) {
		require.NoError(t, sim.ScheduleFault(openaisim.Fault{Kind: openaisim.FaultRateLimit, RetryAfter: 1500 * time.Millisecond}))
		r := fetch(t, ctx, base, nil)
		require.NoError(t, r.err)
		assert.Equal(t, http.StatusTooManyRequests, r.status)
		assert.Equal(t, "2", r.header.Get("Retry-After"))
		var e openaisim.ErrorResponse
		require.NoError(t, json.Unmarshal(r.body, &e))
		assert.Equal(t, "rate_limit_exceeded", *e.Error.Code)
		assert.Equal(t, http.StatusOK, fetch(t, ctx, base, nil).status, "count defaults to 1")
	})
	t.Run("429 without Retry-After", func(t *testing.T) {
		require.NoError(t, sim.ScheduleFault(openaisim.Fault{Kind: openaisim.FaultRateLimit}))
		r := fetch(t, ctx, base, nil)
		assert.Equal(t, http.StatusTooManyRequests, r.status)
		assert.Empty(t, r.header.Values("Retry-After"))
	})
	for _, status := range []int{500, 502, 503} {
		t.Run("server error "+itoa(status), func(t *testing.T) {
			require.NoError(t, sim.ScheduleFault(openaisim.Fault{Kind: openaisim.FaultServerError, Status: status, Count: 2}))
			for range 2 {
				r := fetch(t, ctx, base, nil)
				require.NoError(t, r.err)
				assert.Equal(t, status, r.status)
				assert.NotEmpty(t, r.header.Get("x-request-id"))
			}
			assert.Equal(t, http.StatusOK, fetch(t, ctx, base, nil).status)
		})
	}
	t.Run("slow", func(t *testing.T) {
		require.NoError(t, sim.ScheduleFault(openaisim.Fault{Kind: openaisim.FaultSlow, Delay: 150 * time.Millisecond}))
		start := time.Now()
		r := fetch(t, ctx, base, nil)
		assert.Equal(t, http.StatusOK, r.status)
		assert.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond)
	})
	t.Run("timeout until the client gives up", func(t *testing.T) {
		require.NoError(t, sim.ScheduleFault(openaisim.Fault{Kind: openaisim.FaultTimeout}))
		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		r := fetch(t, cctx, base, nil)
		require.Error(t, r.err)
		assert.True(t, errors.Is(r.err, context.DeadlineExceeded), r.err)
	})
	t.Run("timeout with a bound drops the connection", func(t *testing.T) {
		require.NoError(t, sim.ScheduleFault(openaisim.Fault{Kind: openaisim.FaultTimeout, Delay: 50 * time.Millisecond}))
		r := fetch(t, ctx, base, nil)
		require.Error(t, r.err)
	})
	t.Run("truncated", func(t *testing.T) {
		require.NoError(t, sim.ScheduleFault(openaisim.Fault{Kind: openaisim.FaultTruncated}))
		r := fetch(t, ctx, base, nil)
		require.NoError(t, r.err)
		assert.Equal(t, http.StatusOK, r.status)
		var resp openaisim.ListResponse
		require.Error(t, json.Unmarshal(r.body, &resp))
	})
	t.Run("truncated with abort", func(t *testing.T) {
		require.NoError(t, sim.ScheduleFault(openaisim.Fault{Kind: openaisim.FaultTruncated, Abort: true}))
		r := fetch(t, ctx, base, nil)
		require.Error(t, r.err, "the body ends before Content-Length")
		assert.ErrorIs(t, r.err, io.ErrUnexpectedEOF)
	})
	t.Run("concatenated", func(t *testing.T) {
		require.NoError(t, sim.ScheduleFault(openaisim.Fault{Kind: openaisim.FaultConcatenated, Documents: 3}))
		r := fetch(t, ctx, base, nil)
		require.NoError(t, r.err)
		var resp openaisim.ListResponse
		require.Error(t, json.Unmarshal(r.body, &resp), "strict decoding fails on extra data")
		dec := json.NewDecoder(bytes.NewReader(r.body))
		n := 0
		for dec.More() {
			require.NoError(t, dec.Decode(&resp))
			assert.Len(t, resp.Data, 20)
			n++
		}
		assert.Equal(t, 3, n)
	})
	t.Run("invalid cursor only on paged requests", func(t *testing.T) {
		require.NoError(t, sim.ScheduleFault(openaisim.Fault{Kind: openaisim.FaultInvalidCursor, Match: openaisim.Match{Param: "after"}}))
		assert.Equal(t, http.StatusOK, fetch(t, ctx, base, nil).status, "no after: not matched")
		first := fetch(t, ctx, base, nil)
		var resp openaisim.ListResponse
		require.NoError(t, json.Unmarshal(first.body, &resp))
		r := fetch(t, ctx, base, url.Values{"after": {*resp.LastID}})
		assert.Equal(t, http.StatusBadRequest, r.status)
		var e openaisim.ErrorResponse
		require.NoError(t, json.Unmarshal(r.body, &e))
		assert.Equal(t, "after", *e.Error.Param)
		assert.Equal(t, http.StatusOK, fetch(t, ctx, base, url.Values{"after": {*resp.LastID}}).status)
	})
	t.Run("match by request number and every", func(t *testing.T) {
		n := len(sim.Requests())
		require.NoError(t, sim.ScheduleFault(openaisim.Fault{Kind: openaisim.FaultServerError, Match: openaisim.Match{Request: n + 2}}))
		assert.Equal(t, http.StatusOK, fetch(t, ctx, base, nil).status)
		assert.Equal(t, http.StatusInternalServerError, fetch(t, ctx, base, nil).status)

		require.NoError(t, sim.ScheduleFault(openaisim.Fault{Kind: openaisim.FaultRateLimit, Count: -1, Match: openaisim.Match{Every: 2}}))
		var limited int
		for range 6 {
			if fetch(t, ctx, base, nil).status == http.StatusTooManyRequests {
				limited++
			}
		}
		assert.Equal(t, 3, limited)
		assert.Len(t, sim.Faults(), 1, "unlimited faults stay scheduled")
		sim.ClearFaults()
		assert.Empty(t, sim.Faults())
	})
	t.Run("request log records faults", func(t *testing.T) {
		var kinds []openaisim.FaultKind
		for _, r := range sim.Requests() {
			if r.Fault != "" {
				kinds = append(kinds, r.Fault)
			}
			assert.Equal(t, "sk-admin-…", r.Key, "a key no longer than prefix+4 is fully hidden")
		}
		assert.Contains(t, kinds, openaisim.FaultTimeout)
		assert.Contains(t, kinds, openaisim.FaultConcatenated)
	})
	t.Run("invalid faults rejected", func(t *testing.T) {
		require.Error(t, sim.ScheduleFault(openaisim.Fault{Kind: "meteor"}))
		require.Error(t, sim.ScheduleFault(openaisim.Fault{Kind: openaisim.FaultServerError, Status: 404}))
		require.Error(t, sim.ScheduleFault(openaisim.Fault{Kind: openaisim.FaultSlow, Match: openaisim.Match{Probability: 2}}))
	})
}

// TestCloseReleasesHeldRequests checks that a request held by a timeout
// fault does not outlive the simulator (goleak would catch it).
func TestCloseReleasesHeldRequests(t *testing.T) {
	t.Parallel()
	done := make(chan response, 1)
	t.Run("serve", func(t *testing.T) {
		sim := openaisimtest.Start(t, openaisim.Config{Now: clock})
		require.NoError(t, sim.ScheduleFault(openaisim.Fault{Kind: openaisim.FaultTimeout}))
		go func() { done <- fetch(t, context.Background(), sim.URL(), nil) }()
		require.Eventually(t, func() bool { return len(sim.Faults()) == 0 }, 5*time.Second, 5*time.Millisecond)
	})
	r := <-done
	require.Error(t, r.err)
}
