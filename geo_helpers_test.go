package usersessions

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// testGeoEntry is one network's record in a database built by
// writeTestCityDB or writeTestCountryDB. Names are English unless CityNames
// or CountryNames give translations (language code → name), which replace
// the English one when they have an "en" key and add to it otherwise.
type testGeoEntry struct {
	City, Region, Country, CountryCode, Continent, ContinentCode, TimeZone string
	Latitude, Longitude                                                    float64

	CityNames, CountryNames map[string]string

	// Raw, when set, is stored instead of the record built from the fields
	// above: a way to write records of the wrong shape.
	Raw mmdbtype.DataType
}

// testGeoLanguages are the languages the test databases declare.
var testGeoLanguages = []string{"en", "de", "nl", "pt-BR", "zh-CN"}

// writeTestCityDB writes a GeoIP2-City database to path with one record per
// entry, keyed by CIDR ("192.0.2.0/24", "2001:db8::/32"). Reserved networks
// are allowed, so tests can use documentation ranges and can also prove that
// private addresses are never looked up.
func writeTestCityDB(t testing.TB, path string, entries map[string]testGeoEntry) {
	t.Helper()
	writeGeoTestFile(t, path, buildTestGeoDB(t, "GeoIP2-City", entries))
}

// writeTestCountryDB writes a GeoIP2-Country database: like writeTestCityDB
// but without cities, regions, time zones or coordinates, as MaxMind's are.
func writeTestCountryDB(t testing.TB, path string, entries map[string]testGeoEntry) {
	t.Helper()
	writeGeoTestFile(t, path, buildTestGeoDB(t, "GeoIP2-Country", entries))
}

// buildTestGeoDB returns the bytes of a database of type dbType.
func buildTestGeoDB(t testing.TB, dbType string, entries map[string]testGeoEntry) []byte {
	t.Helper()
	return buildTestGeoDBWith(t, mmdbwriter.Options{DatabaseType: dbType}, entries)
}

// buildTestGeoDBWith is buildTestGeoDB with full control of the writer's
// options; records lack city data when the type names a Country database.
// Languages default to testGeoLanguages, the record size to 28, the
// description to a fixed text, and reserved networks are always allowed.
func buildTestGeoDBWith(t testing.TB, opts mmdbwriter.Options, entries map[string]testGeoEntry) []byte {
	t.Helper()
	if opts.Languages == nil {
		opts.Languages = testGeoLanguages
	}
	if opts.RecordSize == 0 {
		opts.RecordSize = 28
	}
	if opts.Description == nil {
		// Reader.Verify insists on one, as every MaxMind file has.
		opts.Description = map[string]string{"en": "usersessions test database"}
	}
	opts.IncludeReservedNetworks = true
	w, err := mmdbwriter.New(opts)
	if err != nil {
		t.Fatalf("build %s database: %v", opts.DatabaseType, err)
	}
	city := !strings.Contains(opts.DatabaseType, "Country")
	for cidr, e := range entries {
		_, network, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatalf("build %s database: %v", opts.DatabaseType, err)
		}
		rec := e.Raw
		if rec == nil {
			rec = e.record(city)
		}
		if err := w.Insert(network, rec); err != nil {
			t.Fatalf("build %s database: insert %s: %v", opts.DatabaseType, cidr, err)
		}
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatalf("build %s database: %v", opts.DatabaseType, err)
	}
	return buf.Bytes()
}

// record shapes e like a GeoIP2 record.
func (e testGeoEntry) record(city bool) mmdbtype.Map {
	names := func(en string, extra map[string]string) mmdbtype.Map {
		m := mmdbtype.Map{}
		if en != "" {
			m["en"] = mmdbtype.String(en)
		}
		for k, v := range extra {
			m[mmdbtype.String(k)] = mmdbtype.String(v)
		}
		return m
	}
	rec := mmdbtype.Map{}
	if e.Country != "" || len(e.CountryNames) > 0 {
		rec["country"] = mmdbtype.Map{
			"iso_code": mmdbtype.String(e.CountryCode),
			"names":    names(e.Country, e.CountryNames),
		}
	}
	if e.Continent != "" {
		rec["continent"] = mmdbtype.Map{
			"code":  mmdbtype.String(e.ContinentCode),
			"names": names(e.Continent, nil),
		}
	}
	if !city {
		return rec
	}
	if e.City != "" || len(e.CityNames) > 0 {
		rec["city"] = mmdbtype.Map{"names": names(e.City, e.CityNames)}
	}
	if e.Region != "" {
		rec["subdivisions"] = mmdbtype.Slice{mmdbtype.Map{"names": names(e.Region, nil)}}
	}
	if e.TimeZone != "" || e.Latitude != 0 || e.Longitude != 0 {
		rec["location"] = mmdbtype.Map{
			"time_zone": mmdbtype.String(e.TimeZone),
			"latitude":  mmdbtype.Float64(e.Latitude),
			"longitude": mmdbtype.Float64(e.Longitude),
		}
	}
	return rec
}

// writeGeoTestFile writes data to path through a rename, as a database updater
// would, so a watcher never sees it half-written.
func writeGeoTestFile(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
