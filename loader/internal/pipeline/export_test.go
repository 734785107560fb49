package pipeline

// RealisticRow is realisticRow for the benchmarks of package pipeline_test.
var RealisticRow = realisticRow
