package usersessions

import (
	"log/slog"
	"net/netip"
	"testing"

	"github.com/usersessions/usersessions/internal/geotest"
)

// discardGeoLogger keeps the fuzzer's many broken records out of the output.
var discardGeoLogger = slog.New(slog.DiscardHandler)

// FuzzOpenGeoBytes feeds arbitrary bytes to OpenGeoBytes: it must return an
// error or a Geo whose lookups answer without panicking.
func FuzzOpenGeoBytes(f *testing.F) {
	valid := geotest.Build(f, "GeoIP2-City", testCities)
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add(valid[len(valid)/2:])
	f.Add([]byte{})
	f.Add([]byte("\xAB\xCD\xEFMaxMind.com"))
	ips := []netip.Addr{ipLondon, ipZwolle, ipHague, ipJapan, ipUnknown, netip.MustParseAddr("::ffff:192.0.2.1")}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, verify := range []bool{false, true} {
			g, err := OpenGeoBytes(data, &GeoOptions{Verify: verify, Logger: discardGeoLogger})
			if err != nil {
				if g != nil {
					t.Fatal("OpenGeoBytes returned a Geo with an error")
				}
				continue
			}
			for _, ip := range ips {
				loc := g.Location(ip)
				info, ok := g.LocationInfo(ip)
				if loc != info.String() || !ok && loc != "" {
					t.Fatalf("Location(%v) = %q, LocationInfo = %+v, %v", ip, loc, info, ok)
				}
			}
			g.Close()
		}
	})
}
