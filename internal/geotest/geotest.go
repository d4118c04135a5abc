// Package geotest builds small GeoIP2 databases (.mmdb files) with
// github.com/maxmind/mmdbwriter, so that no test needs MaxMind's files, and
// fakes MaxMind's download endpoint (MaxMind). It serves the tests of every
// package that shows locations or downloads databases, and the demo
// command's made-up database of six cities: one builder for all of them.
package geotest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// TB is the part of testing.TB the helpers use. Naming it here keeps the
// testing package out of the demo binary, which uses Encode.
type TB interface {
	Helper()
	Fatal(args ...any)
	Cleanup(func())
}

// Entry is one network's record in a database built by Encode. Names are
// English unless CityNames, RegionNames, CountryNames or ContinentNames
// give translations (language code → name), which replace the English one
// when they have an "en" key and add to it otherwise.
type Entry struct {
	City, Region, Country, CountryCode, Continent, ContinentCode, TimeZone string
	Latitude, Longitude                                                    float64

	CityNames, RegionNames, CountryNames, ContinentNames map[string]string

	// Raw, when set, is stored instead of the record built from the fields
	// above: a way to write records of the wrong shape.
	Raw mmdbtype.DataType
}

// Languages are the languages a database declares unless its options say
// otherwise.
var Languages = []string{"en", "de", "nl", "pt-BR", "zh-CN"}

// Encode returns the bytes of a database holding one record per entry,
// keyed by CIDR ("192.0.2.0/24", "2001:db8::/32"). Records lack city,
// region, time zone and coordinates when opts.DatabaseType names a Country
// database, as MaxMind's do. Languages default to Languages, the record
// size to 28 and the description to a fixed text (Reader.Verify insists on
// one, as every MaxMind file has). Reserved networks are always allowed, so
// tests can use documentation ranges and can also prove that private
// addresses are never looked up.
func Encode(opts mmdbwriter.Options, entries map[string]Entry) ([]byte, error) {
	if opts.Languages == nil {
		opts.Languages = Languages
	}
	if opts.RecordSize == 0 {
		opts.RecordSize = 28
	}
	if opts.Description == nil {
		opts.Description = map[string]string{"en": "usersessions test database"}
	}
	opts.IncludeReservedNetworks = true
	w, err := mmdbwriter.New(opts)
	if err != nil {
		return nil, fmt.Errorf("build %s database: %w", opts.DatabaseType, err)
	}
	city := !strings.Contains(opts.DatabaseType, "Country")
	for cidr, e := range entries {
		_, network, err := net.ParseCIDR(cidr)
		if err != nil {
			return nil, fmt.Errorf("build %s database: %w", opts.DatabaseType, err)
		}
		rec := e.Raw
		if rec == nil {
			rec = e.record(city)
		}
		if err := w.Insert(network, rec); err != nil {
			return nil, fmt.Errorf("build %s database: insert %s: %w", opts.DatabaseType, cidr, err)
		}
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("build %s database: %w", opts.DatabaseType, err)
	}
	return buf.Bytes(), nil
}

// Build is Encode for a test, with only the database type set
// ("GeoIP2-City", "GeoLite2-Country", "GeoLite2-ASN", ...).
func Build(tb TB, dbType string, entries map[string]Entry) []byte {
	tb.Helper()
	return BuildWith(tb, mmdbwriter.Options{DatabaseType: dbType}, entries)
}

// BuildWith is Encode for a test: it fails the test on an error.
func BuildWith(tb TB, opts mmdbwriter.Options, entries map[string]Entry) []byte {
	tb.Helper()
	data, err := Encode(opts, entries)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// Write writes data to path through a rename, as a database updater would,
// so a watcher never sees it half-written.
func Write(tb TB, path string, data []byte) {
	tb.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		tb.Fatal(err)
	}
}

// record shapes e like a GeoIP2 record.
func (e Entry) record(city bool) mmdbtype.Map {
	rec := mmdbtype.Map{}
	if e.Country != "" || len(e.CountryNames) > 0 {
		rec["country"] = mmdbtype.Map{
			"iso_code": mmdbtype.String(e.CountryCode),
			"names":    names(e.Country, e.CountryNames),
		}
	}
	if e.Continent != "" || len(e.ContinentNames) > 0 {
		rec["continent"] = mmdbtype.Map{
			"code":  mmdbtype.String(e.ContinentCode),
			"names": names(e.Continent, e.ContinentNames),
		}
	}
	if !city {
		return rec
	}
	if e.City != "" || len(e.CityNames) > 0 {
		rec["city"] = mmdbtype.Map{"names": names(e.City, e.CityNames)}
	}
	if e.Region != "" || len(e.RegionNames) > 0 {
		rec["subdivisions"] = mmdbtype.Slice{mmdbtype.Map{"names": names(e.Region, e.RegionNames)}}
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

// names is a record's "names" map: en in English, then the translations.
func names(en string, translations map[string]string) mmdbtype.Map {
	m := mmdbtype.Map{}
	if en != "" {
		m["en"] = mmdbtype.String(en)
	}
	for lang, name := range translations {
		m[mmdbtype.String(lang)] = mmdbtype.String(name)
	}
	return m
}
