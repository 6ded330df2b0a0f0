// Package reenrich fills in what enrichment skipped and moves stored rows to
// new model versions: it reads the stored rows that a Filter selects, page
// by page in key order, runs the stages each row needs (a stage listed in
// its failed_stages, a stage whose model is not the configured one, or a
// stage asked for every row), and writes every row that changed as a new
// version with the same key, so that the ReplacingMergeTree keeps it and
// the per-minute rollup moves its count. A checkpoint file makes a killed
// run resume where it stopped without enriching a row twice.
package reenrich
