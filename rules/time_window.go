package rules

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
)

// TimeWindowConfig is the time-window rule's `config`.
type TimeWindowConfig struct {
	// TimeZone is an IANA zone such as Europe/Amsterdam (default UTC).
	TimeZone string `json:"time_zone"`
	// Days are the allowed weekdays: mon tue wed thu fri sat sun (default
	// all).
	Days []string `json:"days"`
	// Hours is the allowed time of day, "HH:MM-HH:MM", start included and
	// end excluded; an end before the start wraps past midnight (the day
	// is the day the login happens). Default: all day.
	Hours string `json:"hours"`
	// Clients limits the rule to these client_ids (default: every client).
	Clients []string `json:"clients"`
	// Message is the deny reason.
	Message string `json:"message"`
}

// TimeWindow denies logins outside the configured days and hours in a time
// zone (the Rules gallery's "allow access during weekdays"). Its clock is
// injected, so tests and dry runs can pin the time.
type TimeWindow struct {
	now        func() time.Time
	loc        *time.Location
	days       [7]bool
	start, end int // minutes since midnight; start == end == 0: all day
	allDay     bool
	clients    []string
	msg        string
}

var weekdays = [...]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// NewTimeWindow builds the rule; now is its clock.
func NewTimeWindow(now func() time.Time, decode runtime.Decoder) (*TimeWindow, error) {
	cfg := TimeWindowConfig{TimeZone: "UTC"}
	if err := decode(&cfg); err != nil {
		return nil, err
	}
	r := &TimeWindow{now: now, clients: cfg.Clients, msg: cfg.Message}
	if r.now == nil {
		r.now = time.Now
	}
	var err error
	if r.loc, err = time.LoadLocation(cfg.TimeZone); err != nil || cfg.TimeZone == "" || cfg.TimeZone == "Local" {
		return nil, &runtime.SettingError{Key: "time_zone", Reason: fmt.Sprintf("%q is not an IANA time zone such as Europe/Amsterdam", cfg.TimeZone)}
	}
	if len(cfg.Days) == 0 {
		r.days = [7]bool{true, true, true, true, true, true, true}
	}
	for i, d := range cfg.Days {
		idx := slices.Index(weekdays[:], strings.ToLower(d))
		if idx < 0 {
			return nil, &runtime.SettingError{Key: fmt.Sprintf("days[%d]", i), Reason: fmt.Sprintf("%q is not one of %s", d, strings.Join(weekdays[:], ", "))}
		}
		r.days[idx] = true
	}
	if cfg.Hours == "" {
		r.allDay = true
	} else if r.start, r.end, err = parseHours(cfg.Hours); err != nil {
		return nil, &runtime.SettingError{Key: "hours", Reason: err.Error()}
	}
	if r.msg == "" {
		r.msg = "Logins are not allowed at this time"
	}
	return r, nil
}

func parseHours(s string) (start, end int, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("%q is not a range such as 08:00-18:00", s)
	}
	if start, err = parseClock(strings.TrimSpace(a)); err == nil {
		end, err = parseClock(strings.TrimSpace(b))
	}
	if err != nil {
		return 0, 0, fmt.Errorf("%q: %v", s, err)
	}
	if start == end {
		return 0, 0, fmt.Errorf("%q is an empty range", s)
	}
	return start, end, nil
}

func parseClock(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		if s == "24:00" {
			return 24 * 60, nil
		}
		return 0, fmt.Errorf("%q is not a time such as 08:30", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}

// Run implements runtime.Rule.
func (r *TimeWindow) Run(_ context.Context, ev *runtime.Event, out *runtime.Commands) error {
	if len(r.clients) > 0 && !slices.Contains(r.clients, ev.Client.ClientID) {
		return nil
	}
	now := r.now().In(r.loc)
	if !r.days[now.Weekday()] || !r.inHours(now.Hour()*60+now.Minute()) {
		out.Logf("info", "login at %s is outside the allowed window", now.Format("Mon 15:04 MST"))
		out.Deny(r.msg, runtime.CodeAccessDenied)
	}
	return nil
}

func (r *TimeWindow) inHours(m int) bool {
	switch {
	case r.allDay:
		return true
	case r.start < r.end:
		return m >= r.start && m < r.end
	default: // wraps past midnight
		return m >= r.start || m < r.end
	}
}
