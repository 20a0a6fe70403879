// Package display holds the one rule for showing times to people, used by
// the CLI and the dashboard alike: a wall-clock time always carries its zone,
// so two screens (or a screen and a log) can be compared without guessing.
//
// The rule: "2006-01-02 15:04:05 -07:00" in the viewer's zone (the CLI's
// local zone, or UTC under --utc; the dashboard's browser zone, UTC before
// its script runs), with the offset always printed; UTC prints "+00:00".
package display

import "time"

// Layout is the rule's layout: to the second, with the offset.
const Layout = "2006-01-02 15:04:05 -07:00"

// ClockLayout is the rule for a time of day alone (a timeline within one
// recording), still with the offset.
const ClockLayout = "15:04:05.000 -07:00"

// Time shows a Unix-millisecond time in loc under the rule.
func Time(ms int64, loc *time.Location) string {
	return time.UnixMilli(ms).In(loc).Format(Layout)
}

// Clock shows a Unix-millisecond time of day in loc, to the millisecond.
func Clock(ms int64, loc *time.Location) string {
	return time.UnixMilli(ms).In(loc).Format(ClockLayout)
}
