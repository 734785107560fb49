package pipeline

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

// MaxUnmappedTypes bounds the event_type label of
// auditpipe_enricher_unmapped_events_total: the first MaxUnmappedTypes
// unmapped types a process sees get a series of their own, later ones are
// counted under UnmappedOther. Event types come from upstream data, so an
// unbounded label could grow the metric without limit; a few dozen new
// types at once is already far beyond what OpenAI ships in a release.
const MaxUnmappedTypes = 32

// UnmappedOther is the event_type label of the unmapped types beyond
// MaxUnmappedTypes.
const UnmappedOther = "other"

// unmappedCounter counts committed records whose event type normalize has
// no category for, by type, with a bounded label set. It is used by the
// pipeline's loop only (not safe for concurrent use); the metric itself
// may be scraped at any time.
type unmappedCounter struct {
	vec    *prometheus.CounterVec
	byType map[string]prometheus.Counter
	other  prometheus.Counter
	capped bool // the label bound was reached (and logged)
	logger *slog.Logger
}

func newUnmappedCounter(reg prometheus.Registerer, logger *slog.Logger) (*unmappedCounter, error) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "auditpipe", Subsystem: "enricher", Name: "unmapped_events_total",
		Help: fmt.Sprintf("Enriched records (in committed transactions) whose event type has no category mapping, so that only the generic normalization applied (category other), by type; the first %d types seen get their own label, later ones count as %q.", MaxUnmappedTypes, UnmappedOther),
	}, []string{"event_type"})
	if reg != nil {
		if err := reg.Register(vec); err != nil {
			return nil, fmt.Errorf("registering the unmapped-events metric: %w", err)
		}
	}
	// "other" exists from the start, so the metric is there to alert on.
	return &unmappedCounter{vec: vec, byType: map[string]prometheus.Counter{}, other: vec.WithLabelValues(UnmappedOther), logger: logger}, nil
}

// add counts n records of event type typ.
func (c *unmappedCounter) add(typ string, n int) {
	ctr, ok := c.byType[typ]
	switch {
	case ok:
	case typ == UnmappedOther || len(c.byType) >= MaxUnmappedTypes:
		ctr = c.other
		if !c.capped && typ != UnmappedOther {
			c.capped = true
			c.logger.Warn("more unmapped event types than the metric's label bound; this one and further ones count as other",
				slog.String("event_type", typ), slog.Int("bound", MaxUnmappedTypes))
		}
	default:
		ctr = c.vec.WithLabelValues(typ)
		c.byType[typ] = ctr
		c.logger.Warn("event type without a category mapping: normalized by the generic path only (rawLog kept, resources from the generic walk, category other); map its family in the enricher's normalize package",
			slog.String("event_type", typ))
	}
	ctr.Add(float64(n))
}
