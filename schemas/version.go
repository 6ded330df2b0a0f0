package schemas

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is a ClickHouse server version. Only the first three numbers of a
// version string are kept; the fourth (the build number) does not change the
// SQL a server accepts.
type Version struct{ Major, Minor, Patch int }

// String returns the version as "major.minor.patch".
func (v Version) String() string {
	return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
}

// Less reports whether v is an older version than w.
func (v Version) Less(w Version) bool {
	if v.Major != w.Major {
		return v.Major < w.Major
	}
	if v.Minor != w.Minor {
		return v.Minor < w.Minor
	}
	return v.Patch < w.Patch
}

// ParseVersion reads a server version such as "18.16.1", "24.8.4.13" or
// "25.3.1.2703", as returned by SELECT version(). It accepts two to four
// dot-separated numbers and ignores a suffix that starts with "-" or "+"
// (as in "23.8.2.7-lts" or a package version such as "18.16.1+ds-7").
func ParseVersion(s string) (Version, error) {
	raw := s
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "-+"); i >= 0 {
		s = s[:i]
	}
	parts := strings.Split(s, ".")
	if len(parts) < 2 || len(parts) > 4 {
		return Version{}, fmt.Errorf("parse version %q: %w: want 2 to 4 dot-separated numbers", raw, ErrInvalidVersion)
	}
	var nums [3]int
	for i, p := range parts {
		if p == "" || strings.TrimLeft(p, "0123456789") != "" {
			return Version{}, fmt.Errorf("parse version %q: %w: %q is not a number", raw, ErrInvalidVersion, p)
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			return Version{}, fmt.Errorf("parse version %q: %w: %w", raw, ErrInvalidVersion, err)
		}
		if i < len(nums) {
			nums[i] = n
		}
	}
	return Version{Major: nums[0], Minor: nums[1], Patch: nums[2]}, nil
}

// Dialect selects the DDL and query variant for a server generation.
type Dialect int

// Dialects. The zero Dialect is not valid: Options.Validate rejects it, so a
// caller has to choose one, normally with DialectFor.
const (
	// DialectLegacy targets servers before 22.3, such as 18.16: no CODEC,
	// TTL, LowCardinality, DateTime64, Map or insert deduplication tokens.
	DialectLegacy Dialect = iota + 1
	// DialectModern targets servers from 22.3 on.
	DialectModern
)

// modernSince returns the first server version that gets DialectModern.
func modernSince() Version { return Version{Major: 22, Minor: 3} }

// DialectFor returns the dialect for a server version: DialectModern from
// 22.3 on, DialectLegacy before.
func DialectFor(v Version) Dialect {
	if v.Less(modernSince()) {
		return DialectLegacy
	}
	return DialectModern
}

// String returns "legacy", "modern" or "Dialect(n)" for other values.
func (d Dialect) String() string {
	switch d {
	case DialectLegacy:
		return "legacy"
	case DialectModern:
		return "modern"
	}
	return "Dialect(" + strconv.Itoa(int(d)) + ")"
}
