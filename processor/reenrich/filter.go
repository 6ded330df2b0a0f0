package reenrich

import (
	"sort"
	"strconv"
	"strings"
	"time"
)

// Filter selects stored rows. A row is selected when it matches any of the
// reasons (Partial, FailedStages, StaleModels; with none given, every row)
// and every one of the bounds (Since, Until, Topic, Partitions, Where).
type Filter struct {
	// Partial selects rows with status partial.
	Partial bool
	// FailedStages selects rows that list any of these stages in
	// failed_stages.
	FailedStages []string
	// StaleModels maps a stage to its configured model: it selects rows
	// whose <stage>_model column holds another model (or none).
	StaleModels map[string]string
	// Since and Until bound created_at (Since inclusive, Until exclusive);
	// zero leaves an end open.
	Since, Until time.Time
	// Topic and Partitions bound the Kafka coordinates; empty is all.
	Topic      string
	Partitions []int32
	// Where is an SQL condition over the main table's columns, ANDed with
	// the rest.
	Where string
}

// SQL returns the condition of the filter over the main table; "" selects
// every row.
func (f Filter) SQL() string {
	var reasons []string
	if f.Partial {
		reasons = append(reasons, "status = 'partial'")
	}
	for _, s := range f.FailedStages {
		reasons = append(reasons, "has(failed_stages, "+quote(s)+")")
	}
	stages := make([]string, 0, len(f.StaleModels))
	for s := range f.StaleModels {
		stages = append(stages, s)
	}
	sort.Strings(stages)
	for _, s := range stages {
		reasons = append(reasons, s+"_model != "+quote(f.StaleModels[s]))
	}
	var all []string
	if len(reasons) > 0 {
		all = append(all, "("+strings.Join(reasons, " OR ")+")")
	}
	if !f.Since.IsZero() {
		all = append(all, "created_at >= toDateTime("+strconv.FormatInt(f.Since.Unix(), 10)+")")
	}
	if !f.Until.IsZero() {
		all = append(all, "created_at < toDateTime("+strconv.FormatInt(f.Until.Unix(), 10)+")")
	}
	if f.Topic != "" {
		all = append(all, "kafka_topic = "+quote(f.Topic))
	}
	if len(f.Partitions) > 0 {
		ps := make([]string, len(f.Partitions))
		for i, p := range f.Partitions {
			ps[i] = strconv.Itoa(int(p))
		}
		all = append(all, "kafka_partition IN ("+strings.Join(ps, ", ")+")")
	}
	if strings.TrimSpace(f.Where) != "" {
		all = append(all, "("+f.Where+")")
	}
	return strings.Join(all, " AND ")
}

// quote renders s as an SQL string literal.
func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
