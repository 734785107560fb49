package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestAttacksFlag(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", addr, "-backlog", "0", "-rate", "0", "-attacks", "scim_changed,mass_deletion"}, io.Discard)
	}()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var truth []openaisim.Event
	require.Eventually(t, func() bool {
		resp, err := client.Get("http://" + addr + "/_sim/truth")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(&truth) == nil && len(truth) == 7
	}, 10*time.Second, 20*time.Millisecond, "the scenarios' events are served")
	types := map[string]int{}
	for _, e := range truth {
		types[e.Type]++
	}
	assert.Equal(t, map[string]int{"scim.disabled": 1, "user.deleted": 2, "api_key.deleted": 2, "project.deleted": 1, "service_account.deleted": 1}, types)
	cancel()
	require.NoError(t, <-done)

	err = run(t.Context(), []string{"-attacks", "nope"}, io.Discard)
	require.ErrorContains(t, err, `parsing -attacks: unknown attack scenario "nope"`)
}
