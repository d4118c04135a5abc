package httpx

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/usersessions/usersessions"
)

// Suspicious sign-ins on the sessions page: the mark the Store's sign-in
// check left on a session (usersessions.SignInCheck), and "This wasn't me",
// which ends that session with reason usersessions.EndReported.

// SuspiciousInfo is a session's sign-in mark as the views show it.
type SuspiciousInfo struct {
	// Reasons are usersessions.SignInReason values: "new_device",
	// "new_country", "impossible_travel".
	Reasons     []string  `json:"reasons"`
	SignedInAt  time.Time `json:"signed_in_at"`
	Place       string    `json:"place,omitempty"` // "Lisbon, Portugal"
	CountryCode string    `json:"country_code,omitempty"`
	// Previous is the place of the user's last earlier session,
	// DistanceKm the distance to it, Since the time between its latest
	// activity and the sign-in in seconds.
	Previous     string  `json:"previous_place,omitempty"`
	DistanceKm   float64 `json:"distance_km,omitempty"`
	SinceSeconds int64   `json:"since_seconds,omitempty"`

	// ReasonText lists the reasons in the page's language, Text says
	// where the sign-in came from and how far from the previous session.
	ReasonText string `json:"-"`
	Text       string `json:"-"`
}

// suspiciousInfo is the view of s's mark, or nil.
func suspiciousInfo(s *usersessions.Session, loc localizer) *SuspiciousInfo {
	m, ok := s.Suspicious()
	if !ok {
		return nil
	}
	si := &SuspiciousInfo{SignedInAt: m.At.UTC(), Place: m.Place, CountryCode: m.CountryCode,
		Previous: m.Previous, DistanceKm: float64(int64(m.DistanceKm + 0.5)), SinceSeconds: int64(m.Since / time.Second)}
	texts := make([]string, 0, len(m.Reasons))
	for _, r := range m.Reasons {
		si.Reasons = append(si.Reasons, string(r))
		texts = append(texts, loc.T("signin."+string(r)))
	}
	si.ReasonText = strings.Join(texts, " · ")
	var parts []string
	if m.Place != "" {
		parts = append(parts, loc.F("signin.from", "place", m.Place))
	}
	if m.Previous != "" {
		parts = append(parts, loc.F("signin.travel", "km", strconv.FormatInt(int64(si.DistanceKm), 10),
			"previous", m.Previous, "duration", duration(loc, m.Since)))
	}
	si.Text = strings.Join(parts, " ")
	return si
}

// duration says d in whole days, hours or minutes ("1 hour").
func duration(loc localizer, d time.Duration) string {
	switch {
	case d >= 24*time.Hour:
		return loc.N("dur.day", int(d/(24*time.Hour)))
	case d >= time.Hour:
		return loc.N("dur.hour", int(d/time.Hour))
	}
	return loc.N("dur.minute", int(d/time.Minute))
}

// reportRoute parses "{id}/report", where id has the form of a session ID.
func reportRoute(rel string) (string, bool) {
	id, ok := strings.CutSuffix(rel, "/report")
	return id, ok && isID(id)
}

// confirmReport asks before "This wasn't me".
func (v *views) confirmReport(w http.ResponseWriter, r *http.Request, id string) {
	if sess := FromContext(r.Context()); sess != nil && sess.UserID != "" && id == sess.ID {
		v.fail(w, r, http.StatusBadRequest) // see report
		return
	}
	v.confirmEndOne(w, r, id, func(loc localizer, page *ConfirmPage) {
		page.Action = "report"
		page.Title, page.Button = loc.T("confirm.report.title"), loc.T("confirm.report.button")
		page.Message = loc.T("confirm.report.message")
	})
}

// report ends another session of the user with reason "reported". The
// current session is not one to report: it is the person asking.
func (v *views) report(w http.ResponseWriter, r *http.Request, id string) {
	sess, ok := v.user(w, r)
	if !ok {
		return
	}
	noStore(w)
	if id == sess.ID {
		v.fail(w, r, http.StatusBadRequest)
		return
	}
	err := v.m.store.EndForUser(r.Context(), sess.UserID, id, usersessions.EndOptions{Reason: usersessions.EndReported, By: sess.ID})
	v.answerEnd(w, r, err)
}

// reportURL is the link to a session's "This wasn't me" page, relative to
// the list; "" for a session without a mark, or the current one.
func reportURL(si *SessionInfo) string {
	if si.Suspicious == nil || si.Current {
		return ""
	}
	return url.PathEscape(si.ID) + "/report"
}
