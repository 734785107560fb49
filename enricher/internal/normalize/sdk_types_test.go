package normalize_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/enricher/internal/normalize"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
)

// sdkEnumType is the openai-go type whose constants are the audit log's
// event types.
const sdkEnumType = "AdminOrganizationAuditLogListResponseType"

// sdkEventTypes reads every constant of sdkEnumType from the source of the
// pinned openai-go module (go.mod), so that bumping the SDK brings its new
// types into this test.
func sdkEventTypes(t *testing.T) []string {
	t.Helper()
	_ = openai.AdminOrganizationAuditLogListResponseTypeAPIKeyCreated // the pinned module is the one compiled in
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/openai/openai-go/v3").Output()
	require.NoError(t, err, "locating the openai-go module (go mod download)")
	file := filepath.Join(strings.TrimSpace(string(out)), "adminorganizationauditlog.go")
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	require.NoError(t, err)
	var types []string
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != sdkEnumType {
				continue
			}
			for _, v := range vs.Values {
				lit, ok := v.(*ast.BasicLit)
				require.True(t, ok)
				s, err := strconv.Unquote(lit.Value)
				require.NoError(t, err)
				types = append(types, s)
			}
		}
	}
	slices.Sort(types)
	return types
}

// TestEveryEventTypeOfTheSDKIsMapped compares the audit-log event types of
// the openai-go SDK (a test-only dependency, pinned in go.mod) with the
// simulator's list and with the enricher's mapping: every SDK type must be
// known to the simulator and categorized by the enricher (not the generic
// "other"), and the simulator must know no type the SDK lacks. Bumping the
// SDK to a version with a new type fails here until the type is mapped.
func TestEveryEventTypeOfTheSDKIsMapped(t *testing.T) {
	sdk := sdkEventTypes(t)
	require.Len(t, sdk, 147, "the pinned SDK (v3.63.1) has 147 types")
	var sim []string
	for _, et := range openaisim.EventTypes() {
		sim = append(sim, et.Name)
	}
	slices.Sort(sim)
	assert.Equal(t, sdk, sim, "the simulator's types are the SDK's")
	for _, typ := range sdk {
		assert.NotEqual(t, normalize.CategoryOther, normalize.Category(typ), "event type %s of the SDK falls to the generic path: map its family in families.go", typ)
	}
}
