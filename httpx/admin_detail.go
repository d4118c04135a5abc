package httpx

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/usersessions/usersessions"
)

// detailTemplate is the admin detail page; data: *AdminDetailPage.
const detailTemplate = "detail.html"

// reservedPrefix starts the keys this package keeps in sessions
// (authKey, noticeKey, rememberKey): its own bookkeeping, which the
// detail page does not list as the app's session data.
const reservedPrefix = "httpx."

// maxShownValue bounds the text of one session value on the detail page.
const maxShownValue = 2000

// AdminDetailPage is the data of the detail.html template: one session,
// everything the store and the user agent say about it.
type AdminDetailPage struct {
	Session AdminSession
	// Device is the parsed user agent: browser and OS with versions.
	Device usersessions.DeviceInfo
	// Place is what the GeoIP database knows of the address (names in the
	// page's language when GeoByLanguage has it); HasPlace is false when
	// it knows nothing.
	Place    usersessions.LocationInfo
	HasPlace bool
	// Zone is the time zone of Place, nil when unknown, for showing the
	// times as they were at the session's location.
	Zone *time.Location
	// AuthenticatedAt is when the person last signed in or proved who
	// they are again (MarkAuthenticated, see AuthenticatedAt); zero when
	// unknown.
	AuthenticatedAt time.Time
	// Values are the app's values in the session; the package's own
	// bookkeeping (keys starting with "httpx.") is not among them.
	Values []SessionValue
	// EndURL leads to the confirmation of ending the session, ListURL back
	// to the list (with its filter); both relative to the page.
	EndURL  string
	ListURL string
	Now     time.Time
	// Recent lists the user's recently ended sessions (usersessions
	// Options.History), most recent first, with why and by whom.
	Recent []EndedInfo
}

// SessionValue is one value stored in a session, as the detail page shows
// it: its key, Go type and text (cut to 2,000 bytes). In JSON, Value is
// the value's JSON encoding, or its text when it has none.
type SessionValue struct {
	Key   string          `json:"key"`
	Type  string          `json:"type"`
	Text  string          `json:"-"`
	Value json.RawMessage `json:"value"`
}

// detailJSON is the JSON answer of the detail page.
type detailJSON struct {
	Session  AdminSession   `json:"session"`
	AuthAt   time.Time      `json:"authenticated_at,omitzero"`
	Device   deviceJSON     `json:"device"`
	Location *locationJSON  `json:"location,omitempty"`
	Values   []SessionValue `json:"values"`
	Recent   []EndedInfo    `json:"recently_ended,omitempty"`
}

type deviceJSON struct {
	Browser        string `json:"browser"`
	BrowserVersion string `json:"browser_version"`
	Platform       string `json:"platform"`
	OSVersion      string `json:"os_version"`
	Mobile         bool   `json:"mobile"`
	Bot            bool   `json:"bot"`
}

type locationJSON struct {
	City          string  `json:"city,omitempty"`
	Region        string  `json:"region,omitempty"`
	Country       string  `json:"country,omitempty"`
	CountryCode   string  `json:"country_code,omitempty"`
	Continent     string  `json:"continent,omitempty"`
	ContinentCode string  `json:"continent_code,omitempty"`
	TimeZone      string  `json:"time_zone,omitempty"`
	Latitude      float64 `json:"latitude,omitempty"`
	Longitude     float64 `json:"longitude,omitempty"`
}

// detail serves GET {prefix}{id}/.
func (a *admin) detail(w http.ResponseWriter, r *http.Request, id string) {
	ctx := r.Context()
	s, err := a.m.store.Get(ctx, id)
	if errors.Is(err, usersessions.ErrNotFound) {
		a.fail(w, r, http.StatusNotFound)
		return
	}
	if err != nil {
		a.serverError(w, r, "reading a session", err)
		return
	}
	asJSON := wantsJSON(r)
	loc := a.localizer(r)
	if asJSON {
		loc = a.geos.localizer(catalogEN)
	}
	page := a.detailPage(r, s, loc)
	if s.UserID != "" {
		if page.Recent, err = a.recentEnded(r, s.UserID, loc); err != nil {
			a.serverError(w, r, "reading the history", err)
			return
		}
	}
	noStore(w)
	w.Header().Add("Vary", "Accept")
	if asJSON {
		writeJSON(w, http.StatusOK, page.json())
		return
	}
	a.page(w, r, loc, detailTemplate, page)
}

// detailPage gathers what the detail page shows of s from the session
// itself, its user agent and the GeoIP database; Recent is left to
// recentEnded, the one part that reads the store again.
func (a *admin) detailPage(r *http.Request, s *usersessions.Session, loc localizer) *AdminDetailPage {
	now := a.now()
	current := FromContext(r.Context())
	page := &AdminDetailPage{
		Session: AdminSession{SessionInfo: info(s, current.ID, loc), UserID: s.UserID, Active: s.Active(now)},
		Device:  usersessions.ParseDevice(s.UserAgent),
		EndURL:  "end",
		ListURL: listURL("../", r.URL.Query()),
		Now:     now,
		Values:  appValues(s),
	}
	if enc := readFilter(r.URL.Query()).values().Encode(); enc != "" {
		page.EndURL += "?" + enc
	}
	if s.IP.IsValid() {
		page.setPlace(loc.geo.LocationInfo(s.IP))
	}
	if at, ok := usersessions.Value[time.Time](s, authKey); ok {
		page.AuthenticatedAt = at.UTC()
	}
	return page
}

// setPlace records what the GeoIP database knows of the session's
// address, and the time zone of that place when Go knows it.
func (page *AdminDetailPage) setPlace(place usersessions.LocationInfo, ok bool) {
	page.Place, page.HasPlace = place, ok
	if page.Place.TimeZone != "" {
		if z, err := time.LoadLocation(page.Place.TimeZone); err == nil {
			page.Zone = z
		}
	}
}

// appValues lists the app's values in s, leaving out this package's own
// bookkeeping (keys starting with reservedPrefix).
func appValues(s *usersessions.Session) []SessionValue {
	var values []SessionValue
	for _, k := range s.Keys() {
		if strings.HasPrefix(k, reservedPrefix) {
			continue
		}
		v, _ := s.Get(k)
		values = append(values, sessionValue(k, v))
	}
	return values
}

// recentEnded reads the user's recently ended sessions, at most
// recentMax, most recent first.
func (a *admin) recentEnded(r *http.Request, userID string, loc localizer) ([]EndedInfo, error) {
	past, err := a.m.store.History(r.Context(), userID)
	if err != nil {
		return nil, err
	}
	var recent []EndedInfo
	for _, e := range past[:min(len(past), recentMax)] {
		recent = append(recent, endedInfo(e, loc))
	}
	return recent, nil
}

// json is the detail page's JSON answer: the same facts, with Values an
// empty list rather than null when the session holds none.
func (page *AdminDetailPage) json() detailJSON {
	out := detailJSON{Session: page.Session, AuthAt: page.AuthenticatedAt, Values: page.Values, Recent: page.Recent}
	d := page.Device
	out.Device = deviceJSON{d.Browser, d.BrowserVersion, d.Platform, d.OSVersion, d.Mobile, d.Bot}
	if page.HasPlace {
		p := page.Place
		out.Location = &locationJSON{p.City, p.Region, p.Country, p.CountryCode, p.Continent, p.ContinentCode, p.TimeZone, p.Latitude, p.Longitude}
	}
	if out.Values == nil {
		out.Values = []SessionValue{}
	}
	return out
}

// sessionValue describes one stored value. The text is for an HTML
// template, which escapes it; the JSON is the value's own encoding when
// it has one.
func sessionValue(key string, v any) SessionValue {
	sv := SessionValue{Key: key, Type: fmt.Sprintf("%T", v)}
	if v == nil {
		sv.Type = "nil"
	}
	text := fmt.Sprintf("%v", v)
	if s, ok := v.(string); ok {
		text = s
	}
	if len(text) > maxShownValue {
		cut := maxShownValue
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut] + "…"
	}
	sv.Text = text
	if b, err := json.Marshal(v); err == nil && len(b) <= 4*maxShownValue {
		sv.Value = b
	} else {
		b, _ := json.Marshal(text) // a string always encodes
		sv.Value = b
	}
	return sv
}

// adminScript progressively enhances the admin list: it shows the
// select-all box of the table header (hidden without JavaScript, where
// the "Select all on this page" link does the same) and keeps it in step
// with the row boxes. The CSP of the embedded page allows exactly this
// script, by hash.
const adminScript = `(function () {
  var all = document.getElementById("select-all");
  if (!all) return;
  var boxes = Array.prototype.slice.call(document.querySelectorAll("#bulk input[name=id]"));
  if (!boxes.length) return;
  all.hidden = false;
  function sync() {
    var n = boxes.filter(function (b) { return b.checked; }).length;
    all.checked = n === boxes.length;
    all.indeterminate = n > 0 && n < boxes.length;
  }
  all.addEventListener("change", function () {
    boxes.forEach(function (b) { b.checked = all.checked; });
    sync();
  });
  boxes.forEach(function (b) { b.addEventListener("change", sync); });
  sync();
})();`

// adminScriptHash is the CSP source allowing adminScript.
var adminScriptHash = func() string {
	sum := sha256.Sum256([]byte(adminScript))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}()
