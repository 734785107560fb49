// Package health decides whether a source makes progress: a Source records
// what its collector reports (started, committed, completed a poll cycle,
// failed) and gives a Verdict, and Readiness summarises the verdicts of
// many sources in a bounded text for /readyz.
//
// Ownership: a Source is written only by the goroutine that runs its
// source (the collector and the session loop around it) and read by the
// readiness check and the metrics scrape; its mutex guards that hand-over
// and nothing else.
package health
