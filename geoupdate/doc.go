// Package geoupdate downloads MaxMind GeoIP databases for usersessions.Geo:
// an operator's job, run from cron or a command line ("usersessions geoip
// download" wraps it), not part of serving requests.
//
// Download fetches an edition's archive and the SHA-256 MaxMind publishes
// for it, checks one against the other, extracts EDITION.mmdb, checks it
// with usersessions.OpenGeo and only then renames it over the old file. A
// running Geo with GeoOptions.WatchInterval, or one told to Reload, picks
// the new file up. On any failure the old file stays as it was.
//
//	file, err := geoupdate.Download(ctx, os.Getenv("MAXMIND_LICENSE_KEY"),
//		"GeoLite2-City", "/var/lib/GeoIP", nil)
//
// A free GeoLite2 license key comes with a MaxMind account. The key never
// appears in returned errors.
package geoupdate
