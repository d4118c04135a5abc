// Package geotest builds tiny GeoIP2 City databases for the tests of the
// packages that show locations (httpx, the command line), so that no test
// needs MaxMind's files. Only tests import it.
package geotest

import (
	"bytes"
	"net"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// City returns a GeoIP2-City database, in memory, that places the network
// cidr in city, country (ISO code isoCode), with English names.
func City(tb testing.TB, cidr, city, country, isoCode string) []byte {
	tb.Helper()
	w, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            "GeoIP2-City",
		Languages:               []string{"en"},
		Description:             map[string]string{"en": "usersessions test City database"},
		RecordSize:              24,
		IncludeReservedNetworks: true, // tests use documentation ranges
	})
	if err != nil {
		tb.Fatal(err)
	}
	_, network, err := net.ParseCIDR(cidr)
	if err != nil {
		tb.Fatal(err)
	}
	err = w.Insert(network, mmdbtype.Map{
		"city":    mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(city)}},
		"country": mmdbtype.Map{"iso_code": mmdbtype.String(isoCode), "names": mmdbtype.Map{"en": mmdbtype.String(country)}},
	})
	if err != nil {
		tb.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}
