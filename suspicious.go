package usersessions

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/usersessions/usersessions/backend"
)

// Suspicious sign-ins: with Options.SignInCheck, every sign-in is compared
// with the user's earlier sessions, live and in History, and one that looks
// like a takeover (a device or a country never seen for the user, or a
// place too far from the last session's for the time between them) is
// marked: the mark is stored with the session, so every instance and the
// sessions page see it, and Hooks.Suspicious is called once.
//
// What the check knows of a user is derived from those sessions alone: the
// stored, privacy-truncated address and user agent. Nothing else is kept,
// so a device or place is forgotten once no live session and no History
// entry (kept for Options.History) shows it.

// Defaults of SignInCheck's zero fields.
const (
	defaultMaxSpeedKmh   = 1000 // a little faster than an airliner
	defaultMinDistanceKm = 500  // GeoIP places are approximate, often by hundreds of km
)

// SignInCheck turns on the check of new sign-ins (Options.SignInCheck). Its
// zero value checks devices only.
type SignInCheck struct {
	// Geo locates addresses, for the country and travel checks; nil
	// leaves only the device check.
	Geo *Geo
	// MaxSpeedKmh is the fastest believable travel between the place of
	// the user's last active session and the new one. 0 (or less) means
	// 1000 km/h, a little faster than an airliner.
	MaxSpeedKmh float64
	// MinDistanceKm is the distance under which two places never count
	// as travel, however short the time. 0 (or less) means 500 km:
	// GeoIP places are approximate, often by hundreds of km.
	MinDistanceKm float64
}

// SignInReason says why a sign-in was marked.
type SignInReason string

// The reasons of a SignInMark.
const (
	// SignInNewDevice: no earlier session of the user had this device
	// name ("Chrome on Windows", see Device).
	SignInNewDevice SignInReason = "new_device"
	// SignInNewCountry: no earlier located session of the user was in
	// this country.
	SignInNewCountry SignInReason = "new_country"
	// SignInImpossibleTravel: the place is at least MinDistanceKm from
	// that of the user's last active session, and reaching it in the time
	// between them needs more than MaxSpeedKmh.
	SignInImpossibleTravel SignInReason = "impossible_travel"
)

// SignInMark is what the check found about a suspicious sign-in. It is
// stored in the session under SignInMarkKey; read it with
// Session.Suspicious.
type SignInMark struct {
	Reasons []SignInReason
	// At is the moment of the sign-in.
	At time.Time
	// Place is where the sign-in came from ("Lisbon, Portugal"), and
	// CountryCode its ISO 3166-1 code; "" when unknown.
	Place, CountryCode string
	// Previous is the place of the user's last active earlier session
	// that has one, Since the time from that session's latest activity
	// to the sign-in, and DistanceKm the distance between both places;
	// "" and 0 when there is none.
	Previous   string
	Since      time.Duration
	DistanceKm float64
}

// SignInMarkKey is the session value that holds a SignInMark: reserved for
// the Store.
const SignInMarkKey = "usersessions.signin"

func init() { RegisterType[SignInMark]("usersessions.SignInMark") }

// Has reports whether reason is one of m's.
func (m SignInMark) Has(reason SignInReason) bool { return slices.Contains(m.Reasons, reason) }

// Suspicious returns the mark the sign-in check left on s, and whether
// there is one.
func (s *Session) Suspicious() (SignInMark, bool) { return Value[SignInMark](s, SignInMarkKey) }

// checkSignIn runs the sign-in check on sess, durable as a session of its
// user since at, given what its earlier sessions tell (known, or the error
// reading them), and marks it when it looks suspicious. A failure is
// logged: it never undoes the sign-in.
func (s *Store) checkSignIn(ctx context.Context, check *SignInCheck, sess *Session, at int64, known knownPlaces, err error) {
	var mark SignInMark
	var suspicious bool
	if err == nil {
		mark, suspicious = s.judgeSignIn(check, sess, at, known)
	}
	if err == nil && suspicious {
		err = s.storeMark(ctx, sess, mark)
	}
	if err != nil {
		s.log.Error("usersessions: sign-in check", "user", sess.UserID, "session", sess.ID, "err", err)
		return
	}
	if hook := s.opts.Hooks.Suspicious; hook != nil && suspicious {
		c := *sess
		c.Token = "" // hooks never see the secret
		s.runHook("Suspicious", func() { hook(ctx, &c, mark) })
	}
}

// knownPlaces is what a user's earlier sessions tell about a sign-in.
type knownPlaces struct {
	any       bool            // there was an earlier session at all
	device    bool            // one had the sign-in's device name
	countries map[string]bool // the countries of the located ones
	last      LocationInfo    // the place of the most recently active located one
	lastSeen  int64           // and its latest activity; 0: none
}

// earlierOf reads what sess's user's earlier sessions (see eachEarlier)
// tell about sess, in one walk: whether one had its device, and with a
// check that has a Geo, their places. Without a check the walk stops at
// the first session with the device.
func (s *Store) earlierOf(ctx context.Context, sess *Session, at int64, check *SignInCheck) (knownPlaces, error) {
	stored := s.opts.Privacy.NoUserAgent
	device := deviceKey(sess.UserAgent, stored)
	known := knownPlaces{countries: map[string]bool{}}
	var geo *Geo
	if check != nil {
		geo = check.Geo
	}
	err := s.eachEarlier(ctx, sess, at, func(r *backend.Record) bool {
		known.any = true
		known.device = known.device || deviceKey(r.UserAgent, stored) == device
		if place, ok := locate(geo, r); ok {
			known.countries[countryOf(place)] = true
			if seen := s.recency(r); seen > known.lastSeen {
				known.last, known.lastSeen = place, seen
			}
		}
		return check != nil || !known.device
	})
	return known, err
}

// judgeSignIn compares sess with what its user's earlier sessions tell
// (known). A user without any is not judged: there is nothing to compare
// with, and every first sign-in would look suspicious.
func (s *Store) judgeSignIn(check *SignInCheck, sess *Session, at int64, known knownPlaces) (SignInMark, bool) {
	if !known.any {
		return SignInMark{}, false
	}
	mark := SignInMark{At: unixNano(at)}
	if !known.device {
		mark.Reasons = append(mark.Reasons, SignInNewDevice)
	}
	place, located := check.Geo.LocationInfo(sess.IP)
	located = located && countryOf(place) != ""
	if located {
		mark.Place, mark.CountryCode = place.String(), place.CountryCode
		if len(known.countries) > 0 && !known.countries[countryOf(place)] {
			mark.Reasons = append(mark.Reasons, SignInNewCountry)
		}
	}
	if located && known.lastSeen != 0 && hasCoordinates(place) && hasCoordinates(known.last) {
		mark.Previous = known.last.String()
		mark.Since = time.Duration(max(at-known.lastSeen, 0))
		mark.DistanceKm = distanceKm(known.last, place)
		if check.impossible(mark.DistanceKm, mark.Since) {
			mark.Reasons = append(mark.Reasons, SignInImpossibleTravel)
		}
	}
	return mark, len(mark.Reasons) > 0
}

// impossible reports whether covering km in d is travel too fast to be
// one person's.
func (c *SignInCheck) impossible(km float64, d time.Duration) bool {
	minKm, speed := float64(defaultMinDistanceKm), float64(defaultMaxSpeedKmh)
	if c.MinDistanceKm > 0 {
		minKm = c.MinDistanceKm
	}
	if c.MaxSpeedKmh > 0 {
		speed = c.MaxSpeedKmh
	}
	return km >= minKm && km > speed*d.Hours()
}

// locate is the place of a stored record's (truncated) address, when the
// database knows its country.
func locate(g *Geo, r *backend.Record) (LocationInfo, bool) {
	place, ok := g.LocationInfo(r.IP)
	return place, ok && countryOf(place) != ""
}

// countryOf identifies a place's country: its code, or its name in a
// database without codes.
func countryOf(l LocationInfo) string {
	if l.CountryCode != "" {
		return l.CountryCode
	}
	return l.Country
}

// hasCoordinates reports whether the database gave l a position (a
// Country database gives none: both are 0).
func hasCoordinates(l LocationInfo) bool { return l.Latitude != 0 || l.Longitude != 0 }

// earthRadiusKm is the Earth's mean radius.
const earthRadiusKm = 6371.0

// distanceKm is the great-circle distance between two places (haversine).
func distanceKm(a, b LocationInfo) float64 {
	rad := func(deg float64) float64 { return deg * math.Pi / 180 }
	dLat, dLon := rad(b.Latitude-a.Latitude), rad(b.Longitude-a.Longitude)
	h := math.Pow(math.Sin(dLat/2), 2) + math.Cos(rad(a.Latitude))*math.Cos(rad(b.Latitude))*math.Pow(math.Sin(dLon/2), 2)
	return 2 * earthRadiusKm * math.Asin(math.Sqrt(min(h, 1)))
}

// storeMark writes mark into sess's stored values, and into sess itself
// (without marking it modified), so a later Save of sess keeps it. It
// fails with ErrConflict when another sign-in or sign-out changed the
// session meanwhile: the mark was about a user it no longer has.
func (s *Store) storeMark(ctx context.Context, sess *Session, mark SignInMark) error {
	id, ok := backend.ParseID(sess.ID)
	if !ok {
		return ErrNotFound
	}
	identity := sess.identity
	_, err := s.b.Update(ctx, id, func(r *backend.Record) error {
		if r.Identity != identity {
			return ErrConflict
		}
		values, err := decodeValues(r.Values)
		if err != nil {
			return err
		}
		if i := values.index(SignInMarkKey); i >= 0 {
			values[i].v = mark
		} else {
			values = append(values, keyValue{SignInMarkKey, mark})
		}
		r.Values, err = encodeValues(nil, values)
		return err
	}, nil)
	if err != nil {
		return fmt.Errorf("storing the mark: %w", s.closedErr(err))
	}
	if s.cache != nil {
		s.cache.invalidate(id)
	}
	modified := sess.modified
	sess.Set(SignInMarkKey, mark)
	sess.modified = modified
	return nil
}
